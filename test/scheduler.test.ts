import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import type { Database } from '../src/db.ts'
import { firstRunAt, nextRunAfterFailure, Scheduler } from '../src/sync/scheduler.ts'
import type { Worker } from '../src/sync/worker/worker.ts'
import { backoffDelay } from '../src/util/backoff.ts'
import {
  commandMirror,
  configAndSpecs,
  FAST_BACKOFF,
  openDb,
  startWorker,
  tempDir,
  waitFor,
} from './jobs-helpers.ts'

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

const trace = (name: string, sleep = 0) =>
  `echo start ${name} $(date +%s%N) >> ../../trace; sleep ${sleep}; echo end ${name} $(date +%s%N) >> ../../trace`

function readTrace(dir: string): { name: string; start: number; end: number }[] {
  const runs = new Map<string, { name: string; start: number; end: number }[]>()
  const out: { name: string; start: number; end: number }[] = []
  for (const line of readFileSync(join(dir, 'trace'), 'utf8').trim().split('\n')) {
    const [kind, name, ns] = line.split(' ') as [string, string, string]
    const t = Number(BigInt(ns) / 1_000_000n)
    if (kind === 'start') {
      const r = { name, start: t, end: Number.POSITIVE_INFINITY }
      out.push(r)
      runs.set(name, [...(runs.get(name) ?? []), r])
    } else {
      const open = runs.get(name)?.find((r) => r.end === Number.POSITIVE_INFINITY)
      if (open) open.end = t
    }
  }
  return out
}

function maxOverlap(runs: { start: number; end: number }[]): number {
  const points = runs.flatMap((r) => [
    { t: r.start, d: 1 },
    { t: r.end, d: -1 },
  ])
  points.sort((a, b) => a.t - b.t || a.d - b.d)
  let cur = 0
  let max = 0
  for (const p of points) {
    cur += p.d
    max = Math.max(max, cur)
  }
  return max
}

describe('scheduler (unit)', () => {
  it('fires every entry due at the same instant in one go', async () => {
    const fired: string[][] = []
    const s = new Scheduler((names) => fired.push(names))
    const at = Date.now() + 30
    s.add('a', at)
    s.add('b', at)
    s.add('c', at + 60_000)
    await waitFor(() => fired.length > 0, 'the timer')
    expect(fired[0]!.sort()).toEqual(['a', 'b'])
    expect(s.entries().map((e) => e.name)).toEqual(['c'])
    s.stop()
  })

  it('next run: last success + interval, now for a new job; failures back off, capped by the interval', () => {
    expect(firstRunAt(null, 60_000, 1000)).toBe(1000)
    expect(firstRunAt(5000, 60_000, 1000)).toBe(65_000)
    expect(firstRunAt(5000, 60_000, 100_000)).toBe(100_000)
    const b = { baseMs: 1000, maxMs: 1_000_000, jitter: 0 }
    expect(backoffDelay(b, 0)).toBe(1000)
    expect(backoffDelay(b, 3)).toBe(8000)
    expect(nextRunAfterFailure(b, 2, 1, 3_600_000, 0)).toBe(2000)
    expect(nextRunAfterFailure(b, 2, 3, 3_600_000, 0)).toBe(8000)
    expect(nextRunAfterFailure(b, 2, 30, 60_000, 0)).toBe(60_000)
    const jittered = backoffDelay({ baseMs: 1000, maxMs: 10_000, jitter: 0.5 }, 0)
    expect(jittered).toBeGreaterThanOrEqual(500)
    expect(jittered).toBeLessThanOrEqual(1500)
  })
})

describe('scheduler with command jobs', () => {
  it('retries back off exponentially with jitter (tunasync retries at once)', async () => {
    const cmd = 'date +%s%N >> ../../attempts; exit 1'
    const { specs } = await configAndSpecs(
      { dir: tmp.dir, retry: 3, mirrors: commandMirror('flaky', cmd) },
      db,
    )
    const w = await startWorker(specs, db, { retryBackoff: FAST_BACKOFF })
    workers.push(w)
    const failed = await waitFor(() => {
      const s = w.status('flaky')
      return s?.status === 'failed' && s.nextSchedule !== null ? s : undefined
    }, 'the final failure')
    const times = readFileSync(join(tmp.dir, 'attempts'), 'utf8')
      .trim()
      .split('\n')
      .map((ns) => Number(BigInt(ns) / 1_000_000n))
    expect(times.length).toBeGreaterThanOrEqual(3)
    const gap1 = times[1]! - times[0]!
    const gap2 = times[2]! - times[1]!
    // Lower bounds only: process start-up on a loaded machine adds to either gap, so comparing the
    // two gaps with each other would test the machine, not the backoff.
    expect(gap1).toBeGreaterThanOrEqual(80) // 100 ms ± 20 %
    expect(gap2).toBeGreaterThanOrEqual(160) // 200 ms ± 20 %
    // The next run backs off further (400 ms ± 20 %), instead of a whole interval or at once.
    const wait = failed.nextSchedule! - failed.lastEnded!
    expect(wait).toBeGreaterThanOrEqual(320)
    expect(wait).toBeLessThanOrEqual(480)
    expect(failed.errorMsg).not.toBe('')
  })

  it('holds the concurrency limit, and two jobs due at the same instant both run', async () => {
    const mirrors = ['a', 'b', 'c', 'd'].map((n) => commandMirror(n, trace(n, 0.4))).join('')
    const { specs } = await configAndSpecs({ dir: tmp.dir, concurrent: 2, mirrors }, db)
    const w = await startWorker(specs, db, { concurrent: 2 })
    workers.push(w)
    await waitFor(
      () => ['a', 'b', 'c', 'd'].every((n) => w.status(n)?.status === 'success'),
      'all four jobs',
      30_000,
    )
    const runs = readTrace(tmp.dir)
    expect(runs.map((r) => r.name).sort()).toEqual(['a', 'b', 'c', 'd'])
    expect(maxOverlap(runs)).toBe(2)
  })

  it('a job waiting to retry gives its slot back: with concurrent = 1 a healthy job syncs during the backoff', async () => {
    // dead fails and backs off for 10 minutes; healthy, due at the same instant, waits for the one
    // slot only while dead's first attempt runs.
    const mirrors =
      commandMirror('dead', `${trace('dead')}; exit 1`) + commandMirror('healthy', trace('healthy'))
    const { specs } = await configAndSpecs({ dir: tmp.dir, concurrent: 1, retry: 3, mirrors }, db)
    const w = await startWorker(specs, db, {
      concurrent: 1,
      retryBackoff: { baseMs: 600_000, maxMs: 600_000, jitter: 0 },
    })
    workers.push(w)
    await waitFor(() => w.status('healthy')?.status === 'success', 'healthy to sync')
    // dead is still inside its run (in its backoff), one attempt made
    expect(w.job('dead')?.running).toBe(true)
    expect(w.status('dead')).toMatchObject({ status: 'failed', nextSchedule: null })
    expect(readTrace(tmp.dir).map((r) => r.name)).toEqual(['dead', 'healthy'])
  })

  it('after its backoff a retry waits for a slot again', async () => {
    const mirrors =
      commandMirror('dead', `${trace('dead')}; exit 1`) + commandMirror('healthy', trace('healthy', 1))
    const { specs } = await configAndSpecs({ dir: tmp.dir, concurrent: 1, retry: 2, mirrors }, db)
    const w = await startWorker(specs, db, { concurrent: 1, retryBackoff: FAST_BACKOFF })
    workers.push(w)
    await waitFor(
      () => w.status('healthy')?.status === 'success' && w.status('dead')?.nextSchedule != null,
      'both runs to end',
    )
    const runs = readTrace(tmp.dir)
    // dead's second attempt, due 100 ms after its first, waited for healthy's 1 s run to end
    expect(runs.map((r) => r.name)).toEqual(['dead', 'healthy', 'dead'])
    expect(maxOverlap(runs)).toBe(1)
  })

  it('the concurrency limit has a working default (tunasync: 0 lets nothing run)', async () => {
    const { specs } = await configAndSpecs({ dir: tmp.dir, mirrors: commandMirror('x', 'true') }, db)
    const w = await startWorker(specs, db, { concurrent: 0 })
    workers.push(w)
    expect(w.concurrency).toBe(4)
    await waitFor(() => w.status('x')?.status === 'success', 'the job')
  })

  it('start --force bypasses the concurrency limit', async () => {
    const mirrors = commandMirror('long', trace('long', 30)) + commandMirror('quick', trace('quick', 0))
    const { specs } = await configAndSpecs({ dir: tmp.dir, concurrent: 1, mirrors }, db)
    const w = await startWorker(specs, db, { concurrent: 1 })
    workers.push(w)
    await waitFor(() => w.status('long')?.status === 'syncing', 'long to sync')
    // quick's run is launched and has reported nothing: it waits for the slot long holds (a run
    // reports pre-syncing as soon as it has one), and the FIFO limit gives it none while long runs.
    expect(w.job('quick')?.running).toBe(true)
    expect(w.status('quick')?.status).toBe('none')
    const forced = Date.now()
    await w.command({ cmd: 'start', mirror_id: 'quick', options: { force: true } })
    await waitFor(() => w.status('quick')?.status === 'success', 'quick to finish while long runs')
    expect(w.status('long')?.status).toBe('syncing')
    const quick = readTrace(tmp.dir).filter((r) => r.name === 'quick')
    expect(quick.length).toBe(1)
    expect(quick[0]!.start).toBeGreaterThanOrEqual(forced)
    await w.command({ cmd: 'stop', mirror_id: 'long' })
    expect(w.status('long')?.status).toBe('paused')
  })

  it('a success schedules the next run one interval later; a restart keeps that schedule', async () => {
    const { specs } = await configAndSpecs(
      { dir: tmp.dir, interval: '2h', mirrors: commandMirror('m', 'true') },
      db,
    )
    const w = await startWorker(specs, db)
    const s = await waitFor(
      () => (w.status('m')?.status === 'success' ? w.status('m') : undefined),
      'success',
    )
    expect(s.nextSchedule).toBe(s.lastEnded! + 2 * 3_600_000)
    await w.stop()
    const again = await startWorker(specs, db)
    workers.push(again)
    expect(again.status('m')).toMatchObject({ status: 'success', lastUpdate: s.lastUpdate })
    expect(again.status('m')!.nextSchedule).toBe(s.lastUpdate! + 2 * 3_600_000)
    expect(again.job('m')!.running).toBe(false)
  })
})
