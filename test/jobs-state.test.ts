import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import type { Database } from '../src/db.ts'
import { KILLED_BY_HALT } from '../src/sync/job.ts'
import type { SyncStatus } from '../src/sync/status.ts'
import type { Worker } from '../src/sync/worker/worker.ts'
import { commandMirror, configAndSpecs, openDb, startWorker, tempDir, waitFor } from './jobs-helpers.ts'

let tmp: ReturnType<typeof tempDir>
let db: Database
let workers: Worker[] = []
beforeEach(async () => {
  tmp = tempDir()
  db = await openDb(tmp.dir)
})
afterEach(async () => {
  for (const w of workers) await w.stop({ graceMs: 0 })
  workers = []
  await db.close()
  tmp.cleanup()
})

/** Records every status a job goes through. */
function watch(w: Worker, name: string): SyncStatus[] {
  const seen: SyncStatus[] = []
  w.onStatus((s) => {
    if (s.name === name && seen.at(-1) !== s.status) seen.push(s.status)
  })
  return seen
}

describe('job states and transitions', () => {
  it('none -> pre-syncing -> syncing -> success, with tunasync time semantics', async () => {
    const { specs } = await configAndSpecs(
      {
        dir: tmp.dir,
        mirrors: commandMirror('m', 'sleep 0.2; echo size 5.2M', 'size_pattern = "size (\\\\S+)"'),
      },
      db,
    )
    const w = await startWorker(specs, db)
    workers.push(w)
    expect(w.status('m')).toMatchObject({ lastStarted: null, lastUpdate: null, size: 'unknown' })
    const seen = watch(w, 'm')
    const s = await waitFor(
      () => (w.status('m')?.status === 'success' ? w.status('m') : undefined),
      'success',
    )
    expect(seen.filter((x) => x !== 'none')).toEqual(['pre-syncing', 'syncing', 'success'])
    expect(s.lastStarted).not.toBeNull()
    expect(s.lastUpdate).toBe(s.lastEnded)
    expect(s.lastEnded! - s.lastStarted!).toBeGreaterThanOrEqual(150)
    expect(s.size).toBe('5.2M')
    expect(s.errorMsg).toBe('')
  })

  it('a failure sets last_ended but not last_update, and keeps the known size', async () => {
    const flag = `${tmp.dir}/fail-now`
    const cmd = `if [ -e ${flag} ]; then echo boom; exit 5; fi; echo size 1.0G`
    const { specs } = await configAndSpecs(
      { dir: tmp.dir, mirrors: commandMirror('m', cmd, 'size_pattern = "size (\\\\S+)"') },
      db,
    )
    const w = await startWorker(specs, db)
    workers.push(w)
    const ok = await waitFor(
      () => (w.status('m')?.status === 'success' ? w.status('m') : undefined),
      'success',
    )
    await import('node:fs').then((fs) => fs.writeFileSync(flag, ''))
    await w.command({ cmd: 'start', mirror_id: 'm' })
    const bad = await waitFor(
      () => (w.status('m')?.status === 'failed' ? w.status('m') : undefined),
      'failure',
    )
    expect(bad.lastUpdate).toBe(ok.lastUpdate)
    expect(bad.lastEnded).toBeGreaterThan(ok.lastEnded!)
    expect(bad.size).toBe('1.0G')
    expect(bad.errorMsg).not.toBe('')
  })

  it('stop pauses at once and kills the run; a paused job never runs by itself; start runs it', async () => {
    // `tick` has the same interval: two of its runs after the stop show that more than an interval
    // went by with the scheduler at work.
    const { specs } = await configAndSpecs(
      {
        dir: tmp.dir,
        interval: '1s',
        mirrors: commandMirror('m', 'sleep 30') + commandMirror('tick', 'true'),
      },
      db,
    )
    const w = await startWorker(specs, db)
    workers.push(w)
    await waitFor(() => w.status('m')?.status === 'syncing', 'syncing')
    await w.command({ cmd: 'stop', mirror_id: 'm' })
    expect(w.status('m')).toMatchObject({ status: 'paused', nextSchedule: null })
    expect(w.job('m')!.running).toBe(false)
    const stopped = Date.now()
    let ticks = 0
    const off = w.onStatus((s) => {
      if (s.name === 'tick' && s.status === 'success' && s.lastStarted! > stopped) ticks++
    })
    await waitFor(() => ticks >= 2, 'two runs of tick')
    off()
    expect(w.status('m')!.status).toBe('paused')
    expect(w.job('m')!.running).toBe(false)
    await w.command({ cmd: 'start', mirror_id: 'm' })
    await waitFor(() => w.status('m')?.status === 'syncing', 'syncing again')
    await w.command({ cmd: 'disable', mirror_id: 'm' })
    expect(w.status('m')!.status).toBe('disabled')
    expect(w.job('m')!.state).toBe('disabled')
  })

  it('restart kills the running sync and starts a new one', async () => {
    const { specs } = await configAndSpecs({ dir: tmp.dir, mirrors: commandMirror('m', 'sleep 30') }, db)
    const w = await startWorker(specs, db)
    workers.push(w)
    const first = await waitFor(
      () => (w.status('m')?.status === 'syncing' ? w.status('m') : undefined),
      'syncing',
    )
    await waitFor(() => Date.now() > first.lastStarted!, 'the clock to pass the first start')
    await w.command({ cmd: 'restart', mirror_id: 'm' })
    const second = await waitFor(
      () =>
        w.status('m')?.status === 'syncing' && w.status('m')!.lastStarted! > first.lastStarted!
          ? w.status('m')
          : undefined,
      'the new run',
    )
    expect(second.lastEnded).not.toBeNull() // the killed run ended
  })

  it('unknown mirrors and commands are refused', async () => {
    const { specs } = await configAndSpecs({ dir: tmp.dir, mirrors: commandMirror('m', 'true') }, db)
    const w = await startWorker(specs, db)
    workers.push(w)
    await expect(w.command({ cmd: 'start', mirror_id: 'nope' })).rejects.toMatchObject({
      statusCode: 404,
      code: 'CIDMIRROR_ERR_UNKNOWN_MIRROR',
    })
    await expect(w.command({ cmd: 'explode', mirror_id: 'm' })).rejects.toMatchObject({ statusCode: 400 })
  })

  it('a worker restart keeps paused and disabled jobs as they were', async () => {
    const mirrors = commandMirror('p', 'true') + commandMirror('d', 'true') + commandMirror('x', 'true')
    const { specs } = await configAndSpecs({ dir: tmp.dir, interval: '1s', mirrors }, db)
    const w = await startWorker(specs, db)
    await waitFor(() => ['p', 'd', 'x'].every((n) => w.status(n)?.status === 'success'), 'first runs')
    await w.command({ cmd: 'stop', mirror_id: 'p' })
    await w.command({ cmd: 'disable', mirror_id: 'd' })
    await w.stop()
    const again = await startWorker(specs, db)
    workers.push(again)
    expect(again.job('p')!.state).toBe('paused')
    expect(again.job('d')!.state).toBe('disabled')
    expect(again.status('p')).toMatchObject({ status: 'paused', nextSchedule: null })
    expect(again.status('d')).toMatchObject({ status: 'disabled', nextSchedule: null })
    // x keeps running on its 1 s interval; p and d do not.
    const xBefore = again.status('x')!.lastUpdate!
    await waitFor(() => again.status('x')!.lastUpdate! > xBefore, 'x to run again', 10_000)
    expect(again.status('p')!.status).toBe('paused')
    expect(again.status('d')!.status).toBe('disabled')
  })

  it('a sync interrupted by the worker stopping is reported, and reruns at the next start', async () => {
    const { specs } = await configAndSpecs({ dir: tmp.dir, mirrors: commandMirror('m', 'sleep 30') }, db)
    const w = await startWorker(specs, db)
    await waitFor(() => w.status('m')?.status === 'syncing', 'syncing')
    await w.stop()
    expect(w.status('m')).toMatchObject({ status: 'failed', errorMsg: KILLED_BY_HALT })
    const again = await startWorker(specs, db)
    workers.push(again)
    await waitFor(() => again.status('m')?.status === 'syncing', 'the rerun')
  })
})
