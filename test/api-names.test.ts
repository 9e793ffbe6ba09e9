import { request } from 'node:http'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import type { Database } from '../src/db.ts'
import { ManagerClient } from '../src/sync/manager/client.ts'
import { type ManagerHandle, startManager } from '../src/sync/manager/index.ts'
import type { Worker } from '../src/sync/worker/worker.ts'
import {
  commandMirror,
  configAndSpecs,
  openDb,
  quietLog,
  startWorker,
  TOKEN,
  tempDir,
  waitFor,
} from './jobs-helpers.ts'

let tmp: ReturnType<typeof tempDir>
let mdb: Database
let wdb: Database
let manager: ManagerHandle | undefined
let worker: Worker | undefined

beforeEach(async () => {
  tmp = tempDir('cidmirror-names-')
  mdb = await openDb(tmp.dir, 'manager-db')
  wdb = await openDb(tmp.dir, 'worker-db')
})
afterEach(async () => {
  await worker?.stop({ graceMs: 0 })
  worker = undefined
  await manager?.close()
  manager = undefined
  await wdb.close()
  await mdb.close()
  tmp.cleanup()
})

/** A request with its path sent as written (fetch would resolve `%2E%2E` segments away). */
function http(
  method: string,
  url: string,
  body?: unknown,
): Promise<{ status: number; body: { error?: string; code?: string } | undefined }> {
  const u = new URL(url)
  const path = url.slice(u.origin.length) || '/'
  const data = body === undefined ? undefined : JSON.stringify(body)
  const headers: Record<string, string> = { authorization: `Bearer ${TOKEN}` }
  if (data !== undefined) headers['content-type'] = 'application/json'
  return new Promise((resolve, reject) => {
    const req = request({ host: u.hostname, port: u.port, path, method, headers }, (res) => {
      let text = ''
      res.setEncoding('utf8')
      res.on('data', (c: string) => {
        text += c
      })
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text ? JSON.parse(text) : undefined }))
    })
    req.on('error', reject)
    req.end(data)
  })
}

/** Names the config refuses (mirror names and worker ids alike), and why. */
const BAD: [string, RegExp][] = [
  ['..', /it cannot be a folder name/],
  ['.', /it cannot be a folder name/],
  ['../x', /it contains "\/"/],
  ['a/b', /it contains "\/"/],
  ['a\r\nb', /it contains a control character/],
  ['tab\there', /it contains a control character/],
  ['nul\0', /it contains a control character/],
  ['', /it is empty/],
  ['x'.repeat(101), /it has 101 bytes, at most 100 are allowed/],
  ['é'.repeat(51), /it has 102 bytes, at most 100 are allowed/],
  ['x'.repeat(100_000), /it has 100000 bytes, at most 100 are allowed/],
]

describe('the API holds names to the config rules, at every route', () => {
  it('manager and worker refuse every bad mirror name and worker id with 400 and store nothing', async () => {
    manager = await startManager({
      db: mdb,
      token: TOKEN,
      listenAddr: '127.0.0.1',
      listenPort: 0,
      log: quietLog(),
    })
    const { specs } = await configAndSpecs({ dir: tmp.dir, mirrors: commandMirror('good', 'echo ok') }, wdb)
    worker = await startWorker(specs, wdb, { managers: [manager.url] })
    const w = worker
    await waitFor(
      () => w.status('good')?.status === 'success' && w.links[0]!.backlog === 0,
      'first run pushed',
    )
    const m = manager.url
    const client = new ManagerClient(m)
    const before = { jobs: await client.listJobs(), workers: await client.listWorkers() }

    const status = (name: string) => ({ name, status: 'success' })
    for (const [bad, why] of BAD) {
      const seg = encodeURIComponent(bad).replaceAll('.', '%2E')
      // An empty mirror_id or worker_id means "not given" there (tunasync's meaning).
      const calls: [string, string, unknown][] = [
        ['POST', `${m}/workers`, { id: bad, url: 'http://127.0.0.1:9/' }],
        [
          'POST',
          `${m}/workers/w1/schedules`,
          { schedules: [{ name: bad, next_schedule: '2030-01-01T00:00:00Z' }] },
        ],
      ]
      if (bad !== '') {
        calls.push(
          ['POST', `${m}/cmd`, { cmd: 'start', mirror_id: bad }],
          ['POST', `${m}/cmd`, { cmd: 'start', mirror_id: 'good', worker_id: bad }],
          ['POST', w.url, { cmd: 'start', mirror_id: bad }],
        )
      }
      // In a path the name is percent-encoded; an empty segment is another route, and 100,000
      // characters do not fit a request line (431): only a name that fits can be refused there.
      if (bad !== '' && bad.length < 1000) {
        calls.push(
          ['DELETE', `${m}/workers/${seg}`, undefined],
          ['GET', `${m}/workers/${seg}/jobs`, undefined],
          ['POST', `${m}/workers/${seg}/jobs/good`, status('good')],
          ['POST', `${m}/workers/w1/jobs/${seg}`, status(bad)],
          ['POST', `${m}/workers/${seg}/jobs/good/size`, { name: 'good', size: '1G' }],
          ['POST', `${m}/workers/w1/jobs/${seg}/size`, { name: bad, size: '1G' }],
          ['POST', `${m}/workers/${seg}/schedules`, { schedules: [] }],
        )
      }
      for (const [method, url, body] of calls) {
        const r = await http(method, url, body)
        const what = `${method} ${url.slice(0, 80)} ${JSON.stringify(body)?.slice(0, 80)}`
        expect(r.status, what).toBe(400)
        expect(r.body?.code, what).toBe('CIDMIRROR_ERR_BAD_NAME')
        expect(r.body?.error, what).toMatch(why)
        expect(r.body?.error?.length, what).toBeLessThan(200)
      }
    }
    expect(await client.listJobs()).toEqual(before.jobs)
    expect(await client.listWorkers()).toEqual(before.workers)
  })

  it('a name of 100 bytes works at every route, and its worker can be deleted', async () => {
    manager = await startManager({
      db: mdb,
      token: TOKEN,
      listenAddr: '127.0.0.1',
      listenPort: 0,
      log: quietLog(),
    })
    const m = manager.url
    const id = 'w'.repeat(100)
    const job = 'j'.repeat(100)
    expect((await http('POST', `${m}/workers`, { id, url: 'http://127.0.0.1:9/' })).status).toBe(200)
    expect(
      (await http('POST', `${m}/workers/${id}/jobs/${job}`, { name: job, status: 'success' })).status,
    ).toBe(200)
    expect(
      (await http('POST', `${m}/workers/${id}/jobs/${job}/size`, { name: job, size: '1G' })).status,
    ).toBe(200)
    expect((await http('GET', `${m}/workers/${id}/jobs`)).status).toBe(200)
    expect((await http('DELETE', `${m}/workers/${id}`)).status).toBe(200)
    expect(await new ManagerClient(m).listWorkers()).toEqual([])
  })
})
