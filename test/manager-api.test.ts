import { execFileSync } from 'node:child_process'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import type { Database } from '../src/db.ts'
import { ManagerClient } from '../src/sync/manager/client.ts'
import { type ManagerHandle, startManager } from '../src/sync/manager/index.ts'
import type { Worker } from '../src/sync/worker/worker.ts'
import type { Backoff } from '../src/util/backoff.ts'
import {
  commandMirror,
  configAndSpecs,
  freePort,
  openDb,
  quietLog,
  startWorker,
  TOKEN,
  tempDir,
  waitFor,
} from './jobs-helpers.ts'

let tmp: ReturnType<typeof tempDir>
let db: Database
let manager: ManagerHandle | undefined
let workers: Worker[] = []
let workerDbs: Database[] = []

beforeEach(async () => {
  tmp = tempDir()
  db = await openDb(tmp.dir, 'manager-db')
})
afterEach(async () => {
  for (const w of workers) await w.stop({ graceMs: 0 })
  for (const d of workerDbs) await d.close()
  workers = []
  workerDbs = []
  await manager?.close()
  manager = undefined
  await db.close()
  tmp.cleanup()
})

async function startMgr(port = 0): Promise<ManagerHandle> {
  manager = await startManager({
    db,
    token: TOKEN,
    listenAddr: '127.0.0.1',
    listenPort: port,
    log: quietLog(),
  })
  return manager
}

async function worker(
  name: string,
  mirrors: string,
  managers: string[],
  extra: { concurrent?: number; retryBackoff?: Backoff } = {},
) {
  const wdb = await openDb(tmp.dir, `db-${name}`)
  workerDbs.push(wdb)
  const { specs } = await configAndSpecs({ dir: `${tmp.dir}`, name, mirrors }, wdb)
  const w = await startWorker(specs, wdb, { name, managers, ...extra })
  workers.push(w)
  return w
}

async function http(method: string, url: string, body?: string, token?: string) {
  const headers: Record<string, string> = {}
  if (body !== undefined) headers['content-type'] = 'application/json'
  if (token) headers.authorization = `Bearer ${token}`
  const res = await fetch(url, { method, headers, ...(body !== undefined ? { body } : {}) })
  const text = await res.text()
  return { status: res.status, body: text ? JSON.parse(text) : undefined }
}

const GO_TIME = /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d [+-]\d{4}$/
const FIELDS = [
  'name',
  'is_master',
  'status',
  'last_update',
  'last_update_ts',
  'last_started',
  'last_started_ts',
  'last_ended',
  'last_ended_ts',
  'next_schedule',
  'next_schedule_ts',
  'upstream',
  'size',
]

describe('manager API', () => {
  it("GET /jobs is public and has tunasync's 13 fields, formats and order; jobs show before their first run", async () => {
    const m = await startMgr()
    const w = await worker(
      'w1',
      commandMirror('zeta', 'echo size 5.24M', 'size_pattern = "size (\\\\S+)"') +
        commandMirror('alpha', 'echo nope; exit 1') +
        commandMirror('mid', 'sleep 30'),
      [m.url],
      // alpha fails once and stays failed: with the suite's fast retries it would run again (and
      // clear its error) between the two reads below.
      { concurrent: 2, retryBackoff: { baseMs: 3_600_000, maxMs: 3_600_000, jitter: 0 } },
    )
    const client = new ManagerClient(m.url)
    // zeta or alpha holds a slot and mid may wait: every job is listed at once anyway.
    const first = await waitFor(async () => {
      const l = await client.listJobs()
      return l.length === 3 ? l : undefined
    }, 'three jobs')
    expect(first.map((j) => j.name)).toEqual(['alpha', 'mid', 'zeta'])
    // mid may wait for a slot until zeta or alpha ends: wait for it to be syncing too (slow machines).
    await waitFor(
      () =>
        w.status('zeta')?.status === 'success' &&
        w.status('alpha')?.status === 'failed' &&
        w.status('mid')?.status === 'syncing',
      'runs',
    )
    await waitFor(() => w.links[0]!.backlog === 0, 'statuses pushed')
    const res = await fetch(`${m.url}/jobs`)
    expect(res.status).toBe(200)
    const jobs = (await res.json()) as Record<string, unknown>[]
    for (const j of jobs) {
      expect(Object.keys(j)).toEqual(FIELDS)
      for (const k of ['last_update', 'last_started', 'last_ended', 'next_schedule']) {
        expect(j[k]).toMatch(GO_TIME)
        const ts = j[`${k}_ts`] as number
        expect(Number.isInteger(ts)).toBe(true)
        if (ts === -62135596800) expect(j[k]).toBe('0001-01-01 00:00:00 +0000')
        else
          expect(
            Math.floor(
              Date.parse((j[k] as string).replace(' ', 'T').replace(/ ([+-]\d\d)(\d\d)$/, '$1:$2')) / 1000,
            ),
          ).toBe(ts)
      }
    }
    const byName = Object.fromEntries(jobs.map((j) => [j.name, j]))
    expect(byName.zeta).toMatchObject({
      status: 'success',
      size: '5.24M',
      is_master: true,
      upstream: 'https://upstream.example/zeta/',
    })
    expect(byName.zeta!.last_update).toBe(byName.zeta!.last_ended)
    // A failure: last_ended set, last_update never (zero time), size unknown.
    expect(byName.alpha).toMatchObject({
      status: 'failed',
      last_update: '0001-01-01 00:00:00 +0000',
      last_update_ts: -62135596800,
      size: 'unknown',
    })
    expect(byName.alpha!.last_ended_ts).toBeGreaterThan(0)
    // Running: next_schedule is zero.
    expect(byName.mid).toMatchObject({ status: 'syncing', next_schedule_ts: -62135596800 })
    // The details (worker, error) are in /workers/:id/jobs.
    const detailed = await client.workerJobs('w1')
    expect(detailed.find((j) => j.name === 'alpha')!.error_msg).not.toBe('')
    expect(detailed.every((j) => j.worker === 'w1')).toBe(true)
  })

  it('formats times in the local zone as Go does', () => {
    const out = execFileSync(
      process.execPath,
      [
        '--input-type=module',
        '-e',
        `import { formatGoTime } from ${JSON.stringify(new URL('../src/sync/status.ts', import.meta.url).href)}; console.log(formatGoTime(Date.UTC(2026, 10, 23, 18, 36, 39)) + '|' + formatGoTime(null))`,
      ],
      { env: { ...process.env, TZ: 'Asia/Shanghai' }, encoding: 'utf8' },
    )
    expect(out.trim()).toBe('2026-11-24 02:36:39 +0800|0001-01-01 00:00:00 +0000')
  })

  it('refuses every write and control call without the right token (401); reads are public', async () => {
    const m = await startMgr()
    const reg = JSON.stringify({ id: 'w9', url: 'http://127.0.0.1:9/' })
    const calls: [string, string, string?][] = [
      ['POST', '/workers', reg],
      ['DELETE', '/workers/w9'],
      ['POST', '/workers/w9/jobs/x', JSON.stringify({ name: 'x', status: 'success' })],
      ['POST', '/workers/w9/jobs/x/size', JSON.stringify({ name: 'x', size: '1G' })],
      ['POST', '/workers/w9/schedules', JSON.stringify({ schedules: [] })],
      ['POST', '/cmd', JSON.stringify({ cmd: 'start', mirror_id: 'x', worker_id: 'w9' })],
      ['DELETE', '/jobs/disabled'],
    ]
    for (const [method, path, body] of calls) {
      for (const token of [undefined, 'wrong-token', `${TOKEN}x`]) {
        const r = await http(method, `${m.url}${path}`, body, token)
        expect(r.status, `${method} ${path} with ${token}`).toBe(401)
        expect(r.body).toMatchObject({ code: 'CIDMIRROR_ERR_UNAUTHORIZED' })
      }
    }
    expect((await http('GET', `${m.url}/jobs`)).status).toBe(200)
    expect(await http('GET', `${m.url}/ping`)).toEqual({ status: 200, body: { message: 'pong' } })
    expect(await http('GET', `${m.url}/workers`)).toEqual({ status: 200, body: [] }) // never null
    expect((await http('POST', `${m.url}/workers`, reg, TOKEN)).status).toBe(200)
  })

  it('bad JSON, bad fields and unknown workers get 4xx with a JSON error, never 500', async () => {
    const m = await startMgr()
    expect(
      (
        await http(
          'POST',
          `${m.url}/workers`,
          JSON.stringify({ id: 'w1', url: 'http://127.0.0.1:9/' }),
          TOKEN,
        )
      ).status,
    ).toBe(200)
    const cases: [string, string, string | undefined, number][] = [
      ['POST', '/cmd', '{"cmd": "start", ', 400],
      ['POST', '/cmd', '', 400],
      ['POST', '/cmd', '[]', 400],
      ['POST', '/cmd', JSON.stringify({ cmd: 'explode', mirror_id: 'x' }), 400],
      ['POST', '/cmd', JSON.stringify({ cmd: 'start' }), 400],
      ['POST', '/cmd', JSON.stringify({ cmd: 'start', mirror_id: 'x' }), 404], // no worker has x
      ['POST', '/cmd', JSON.stringify({ cmd: 'start', mirror_id: 'x', worker_id: 'ghost' }), 404],
      ['POST', '/workers', JSON.stringify({ id: '', url: 'x' }), 400],
      ['POST', '/workers', JSON.stringify({ id: 'w2', url: 'not a url' }), 400],
      ['POST', '/workers', 'null', 400],
      ['POST', '/workers/ghost/jobs/x', JSON.stringify({ name: 'x', status: 'success' }), 404],
      ['POST', '/workers/w1/jobs/x', JSON.stringify({ name: 'x', status: 'exploded' }), 400],
      ['POST', '/workers/w1/jobs/x', JSON.stringify({ name: 'y', status: 'success' }), 400],
      [
        'POST',
        '/workers/w1/jobs/x',
        JSON.stringify({ name: 'x', status: 'success', last_update: 'yesterday' }),
        400,
      ],
      ['POST', '/workers/w1/jobs/x', '{oops', 400],
      ['POST', '/workers/w1/jobs/x/size', JSON.stringify({ name: 'x', size: '1G' }), 404],
      ['POST', '/workers/w1/jobs/x/size', JSON.stringify({ name: 'x' }), 400],
      ['POST', '/workers/ghost/schedules', JSON.stringify({ schedules: [] }), 404],
      ['POST', '/workers/w1/schedules', JSON.stringify({ schedules: [{ name: '' }] }), 400],
      ['DELETE', '/workers/ghost', undefined, 404],
      ['GET', '/workers/ghost/jobs', undefined, 404],
      ['GET', '/nothing-here', undefined, 404],
    ]
    for (const [method, path, body, want] of cases) {
      const r = await http(method, `${m.url}${path}`, body, TOKEN)
      expect(r.status, `${method} ${path} ${body}`).toBe(want)
      expect(typeof r.body?.error, `${method} ${path}`).toBe('string')
      expect(r.body?.code, `${method} ${path}`).toMatch(/^CIDMIRROR_ERR_/)
    }
    // A bad status value is not stored (tunasync answers 400 and stores it anyway).
    expect(await new ManagerClient(m.url).workerJobs('w1')).toEqual([])
  })

  it('keeps the size semantics: a new unknown size never overwrites a known one; set-size', async () => {
    const m = await startMgr()
    const c = new ManagerClient(m.url, TOKEN)
    await c.register({ id: 'w1', url: 'http://127.0.0.1:9/', token: 't' })
    const post = (status: string, size: string) =>
      http(
        'POST',
        `${m.url}/workers/w1/jobs/debian`,
        JSON.stringify({ name: 'debian', status, size, upstream: 'rsync://x/' }),
        TOKEN,
      )
    await post('pre-syncing', 'unknown')
    expect((await c.listJobs())[0]).toMatchObject({ status: 'pre-syncing', size: 'unknown' })
    expect((await c.listJobs())[0]!.last_started_ts).toBeGreaterThan(0)
    await post('success', '5.24M')
    await post('syncing', 'unknown')
    expect((await c.listJobs())[0]).toMatchObject({ status: 'syncing', size: '5.24M' })
    await post('failed', '')
    const j = (await c.listJobs())[0]!
    expect(j).toMatchObject({ status: 'failed', size: '5.24M' })
    expect(j.last_update_ts).toBeLessThanOrEqual(j.last_ended_ts)
    expect((await c.setSize('w1', 'debian', '6G')).size).toBe('6G')
    expect((await c.setSize('w1', 'debian', 'unknown')).size).toBe('6G')
    await c.flushDisabled()
    expect(await c.listJobs()).toHaveLength(1)
  })

  it('keeps statuses and workers across a manager restart', async () => {
    const port = await freePort()
    const m = await startMgr(port)
    const w = await worker('w1', commandMirror('m', 'echo size 3K', 'size_pattern = "size (\\\\S+)"'), [
      m.url,
    ])
    await waitFor(() => w.status('m')?.status === 'success' && w.links[0]!.backlog === 0, 'a pushed success')
    await w.stop()
    const before = await new ManagerClient(m.url).listJobs()
    await m.close()
    await db.close()
    db = await openDb(tmp.dir, 'manager-db')
    const m2 = await startMgr(port)
    const c = new ManagerClient(m2.url)
    expect(await c.listJobs()).toEqual(before)
    expect((await c.listWorkers()).map((x) => x.id)).toEqual(['w1'])
    expect(before[0]).toMatchObject({ name: 'm', status: 'success', size: '3K' })
  })

  it('a worker that starts before its manager registers once the manager is up', async () => {
    const port = await freePort()
    const url = `http://127.0.0.1:${port}`
    const w = await worker('early', commandMirror('m', 'true'), [url])
    await waitFor(() => w.status('m')?.status === 'success', 'the job to run without a manager')
    await waitFor(() => w.links[0]!.failures >= 3, 'a few failed registrations')
    expect(w.links[0]!.registered).toBe(false)
    const m = await startMgr(port)
    const c = new ManagerClient(m.url)
    await waitFor(
      async () => (await c.listWorkers()).some((x) => x.id === 'early'),
      'the registration',
      10_000,
    )
    const jobs = await waitFor(async () => {
      const l = await c.listJobs()
      return l[0]?.status === 'success' ? l : undefined
    }, 'the status queued while the manager was away')
    expect(jobs[0]!.last_update_ts).toBe(Math.floor(w.status('m')!.lastUpdate! / 1000))
  })

  it('forwards commands to the right worker and checks its answer; several workers, one manager', async () => {
    const m = await startMgr()
    const w1 = await worker('w1', commandMirror('shared', 'sleep 30') + commandMirror('one', 'true'), [m.url])
    const w2 = await worker('w2', commandMirror('shared', 'true') + commandMirror('two', 'true'), [m.url])
    const c = new ManagerClient(m.url, TOKEN)
    await waitFor(async () => (await c.listJobs()).length === 4, 'four jobs from two workers')
    expect((await c.listWorkers()).map((x) => x.id).sort()).toEqual(['w1', 'w2'])
    expect((await c.listJobs()).map((j) => j.name)).toEqual(['one', 'shared', 'shared', 'two'])

    await expect(c.cmd({ cmd: 'stop', mirror_id: 'shared' })).rejects.toMatchObject({ statusCode: 409 })
    await waitFor(() => w1.status('shared')?.status === 'syncing', 'w1 syncing')
    await c.cmd({ cmd: 'stop', mirror_id: 'shared', worker_id: 'w1' })
    expect(w1.status('shared')!.status).toBe('paused')
    const shared = (await c.workerJobs('w1')).find((j) => j.name === 'shared')!
    expect(shared.status).toBe('paused')
    await c.cmd({ cmd: 'disable', mirror_id: 'two' }) // found without worker_id
    expect(w2.job('two')!.state).toBe('disabled')
    // The worker's 404 reaches the caller (tunasync answers 200).
    await expect(c.cmd({ cmd: 'start', mirror_id: 'two', worker_id: 'w1' })).rejects.toMatchObject({
      statusCode: 404,
      remoteCode: 'CIDMIRROR_ERR_UNKNOWN_MIRROR',
    })
    await waitFor(
      async () => (await c.listJobs()).some((j) => j.name === 'two' && j.status === 'disabled'),
      'disabled',
    )
    await waitFor(() => w2.links[0]!.backlog === 0, 'w2 to report')
    expect((await c.flushDisabled()).message).toBe('flushed')
    expect((await c.listJobs()).map((j) => j.name)).toEqual(['one', 'shared', 'shared'])
    // The worker saying "disabled" again does not bring a flushed job back.
    await w2.command({ cmd: 'disable', mirror_id: 'two' })
    await waitFor(() => w2.links[0]!.backlog === 0, 'w2 to report')
    expect((await c.listJobs()).map((j) => j.name)).toEqual(['one', 'shared', 'shared'])
    // A worker's own refusal (a 4xx with a code) reaches the caller with that code.
    await expect(c.cmd({ cmd: 'reload', worker_id: 'w2' })).rejects.toMatchObject({
      statusCode: 409,
      remoteCode: 'CIDMIRROR_ERR_RELOAD_UNSUPPORTED',
    })
    await c.deleteWorker('w2')
    expect((await c.listWorkers()).map((x) => x.id)).toEqual(['w1'])
    // A worker that does not answer: 502.
    await w1.stop({ graceMs: 0 })
    await expect(c.cmd({ cmd: 'ping', mirror_id: 'one', worker_id: 'w1' })).rejects.toMatchObject({
      statusCode: 502,
      remoteCode: 'CIDMIRROR_ERR_WORKER_UNREACHABLE',
    })
  })

  it('answers a worker that fails a command with 502 WORKER_FAILED, naming the worker', async () => {
    const m = await startMgr()
    // A worker that answers every command with a 500 and a code of its own.
    const broken = createServer((_req, res) => {
      res.writeHead(500, { 'content-type': 'application/json' })
      res.end(JSON.stringify({ error: 'disk on fire', code: 'CIDMIRROR_ERR_SOMETHING_NEWER' }))
    })
    await new Promise<void>((r) => broken.listen(0, '127.0.0.1', r))
    try {
      const port = (broken.address() as AddressInfo).port
      const c = new ManagerClient(m.url, TOKEN)
      await c.register({ id: 'odd', url: `http://127.0.0.1:${port}/`, token: TOKEN })
      const err = await c.cmd({ cmd: 'reload', worker_id: 'odd' }).catch((e: unknown) => e)
      expect(err).toMatchObject({ statusCode: 502, remoteCode: 'CIDMIRROR_ERR_WORKER_FAILED' })
      expect((err as Error).message).toMatch(
        /^worker odd: disk on fire \(HTTP 500 from http:\/\/127\.0\.0\.1:/,
      )
    } finally {
      await new Promise((r) => broken.close(r))
    }
  })
})
