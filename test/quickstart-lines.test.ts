/**
 * The quick start's job lines (scripts/job-lines.ts) from a real worker's statuses: one line per
 * change a person follows, not one per status the worker emits (a `jobs stop` after a success used to
 * print the success a second time: the worker emits the status when the stop drops the schedule).
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { jobLines } from '../scripts/job-lines.ts'
import type { Database } from '../src/db.ts'
import type { Worker } from '../src/sync/worker/worker.ts'
import { commandMirror, configAndSpecs, openDb, startWorker, tempDir, waitFor } from './jobs-helpers.ts'

let tmp: ReturnType<typeof tempDir>
let db: Database
let worker: Worker | undefined
beforeEach(async () => {
  tmp = tempDir()
  db = await openDb(tmp.dir)
})
afterEach(async () => {
  await worker?.stop({ graceMs: 0 })
  worker = undefined
  await db.close()
  tmp.cleanup()
})

describe('the quick start prints each job change once', () => {
  it('a sync, a jobs start, then a jobs stop: syncing and success per run, then paused', async () => {
    const { specs } = await configAndSpecs(
      {
        dir: tmp.dir,
        interval: '6h',
        mirrors: commandMirror('sample', 'echo size 1.38K', 'size_pattern = "size (\\\\S+)"'),
      },
      db,
    )
    const lines = jobLines()
    const printed: string[] = []
    const emitted: string[] = []
    worker = await startWorker(specs, db)
    const w = worker
    w.onStatus((s) => {
      emitted.push(s.status)
      // The time of day is the line's prefix: compare what follows it.
      for (const l of lines(s)) printed.push(l.replace(/^\[[^\]]*\] /, ''))
    })
    const ended = async (after: number) =>
      waitFor(() => {
        const s = w.status('sample')
        return s?.status === 'success' && (s.lastEnded ?? 0) > after ? s : undefined
      }, 'a successful run')
    // The first run may be under way before this subscribes: follow from its end.
    const first = await ended(0)
    printed.length = 0
    emitted.length = 0
    await w.command({ cmd: 'start', mirror_id: 'sample' })
    await ended(first.lastEnded!)
    await w.command({ cmd: 'stop', mirror_id: 'sample' })
    await waitFor(() => (w.status('sample')?.status === 'paused' ? true : undefined), 'paused')
    // The worker emits "success" more often than runs end (the stop's schedule patch among them).
    expect(emitted.filter((s) => s === 'success').length).toBeGreaterThanOrEqual(2)
    expect(printed).toEqual([
      'sample: syncing',
      'sample: success, size 1.38K',
      'sample: paused (jobs start runs it again)',
    ])
  })
})
