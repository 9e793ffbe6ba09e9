import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import type { Database } from '../src/db.ts'
import { loadConfig } from '../src/sync/config/index.ts'
import { ConfigError } from '../src/sync/errors.ts'
import { ManagerClient } from '../src/sync/manager/client.ts'
import { type ManagerHandle, ManagerStore, startManager } from '../src/sync/manager/index.ts'
import { createProvider } from '../src/sync/providers/index.ts'
import { emptyStatus } from '../src/sync/status.ts'
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

const DAY = 86_400_000
const YEAR = 365 * DAY

let tmp: ReturnType<typeof tempDir>
let db: Database
let mdb: Database
let manager: ManagerHandle | undefined
let workers: Worker[] = []
beforeEach(async () => {
  tmp = tempDir('cidmirror-long-')
  db = await openDb(tmp.dir)
  mdb = await openDb(tmp.dir, 'manager-db')
})
afterEach(async () => {
  for (const w of workers) await w.stop({ graceMs: 0 })
  workers = []
  await manager?.close()
  manager = undefined
  await db.close()
  await mdb.close()
  tmp.cleanup()
})

async function refusal(toml: string): Promise<ConfigError> {
  const f = join(tmp.dir, 'bad.toml')
  writeFileSync(f, toml)
  const err = await loadConfig(f).then(
    () => undefined,
    (e: unknown) => e,
  )
  expect(err).toBeInstanceOf(ConfigError)
  expect((err as ConfigError).file).toBe(f)
  return err as ConfigError
}

describe('durations no timer or time format can hold are refused at load', () => {
  const mirror = '[[mirrors]]\nname = "a"\nprovider = "command"\ncommand = "true"\n'
  const cases: [string, string][] = [
    [
      `[global]\nmirror_dir = "/srv/m"\ninterval = "1000000y"\n`,
      'global.interval: "1000000y" is out of range: must be at most "100y"',
    ],
    [
      `[global]\nmirror_dir = "/srv/m"\n${mirror}timeout = "101y"\n`,
      'mirrors[0].timeout: "101y" is out of range: must be at most "100y"',
    ],
    [
      `[global]\ntimeout = 99999999999\n`,
      'global.timeout: 99999999999 is out of range: must be at most "100y"',
    ],
    [
      `[global]\nretry_backoff_max = "${'9'.repeat(400)}y"\n`,
      `global.retry_backoff_max: "${'9'.repeat(400)}y" is out of range: must be at most "100y"`,
    ],
    [`[global]\nkill_grace = "200y"\n`, 'global.kill_grace: "200y" is out of range: must be at most "100y"'],
    [
      `[global]\nmirror_dir = "/srv/m"\n${mirror}rsync_timeout = "69y"\n`,
      'mirrors[0].rsync_timeout: "69y" is out of range: must be at most "68y"',
    ],
  ]
  for (const [toml, message] of cases) {
    it(message.slice(0, message.indexOf(':')), async () => {
      const err = await refusal(toml)
      expect(err.code).toBe('CIDMIRROR_ERR_CONFIG_BAD_VALUE')
      expect(err.message).toBe(`config ${join(tmp.dir, 'bad.toml')}: ${message}`)
    })
  }

  it('the longest ones load', async () => {
    const f = join(tmp.dir, 'ok.toml')
    writeFileSync(
      f,
      `[global]\nmirror_dir = "m"\ninterval = "100y"\ntimeout = "30d"\n${mirror}rsync_timeout = "68y"\n`,
    )
    const c = await loadConfig(f)
    expect(c.global).toMatchObject({ intervalMs: 100 * YEAR, timeoutMs: 30 * DAY })
  })
})

describe('long durations are honoured', () => {
  it('a 30-day timeout does not end the run at once (Node fired a 2^31 ms timer after 1 ms)', async () => {
    const f = join(tmp.dir, 'c.toml')
    writeFileSync(
      f,
      `[global]\nmirror_dir = "m"\nlog_dir = "l/{{.Name}}"\ntimeout = "30d"\nkill_grace = "40d"\n[[mirrors]]\nname = "slow"\nprovider = "command"\ncommand = "sleep 0.5; echo finished"\n`,
    )
    const config = await loadConfig(f)
    const provider = createProvider(config.mirrors[0]!, config)
    const logFile = join(tmp.dir, 'run.log')
    writeFileSync(logFile, '')
    await expect(
      provider.run({ logFile, signal: new AbortController().signal, env: {}, extraArgs: [] }),
    ).resolves.toEqual({})
  })

  it('a 100-year interval: the run succeeds, the next one is 100 years on, and every status reaches the manager', async () => {
    manager = await startManager({
      db: mdb,
      token: TOKEN,
      listenAddr: '127.0.0.1',
      listenPort: 0,
      log: quietLog(),
    })
    const { specs } = await configAndSpecs(
      {
        dir: tmp.dir,
        interval: '100y',
        mirrors: commandMirror('far', 'echo ok') + commandMirror('near', 'echo ok', 'interval = "30d"'),
      },
      db,
    )
    const w = await startWorker(specs, db, { managers: [manager.url] })
    workers.push(w)
    const client = new ManagerClient(manager.url)
    const jobs = await waitFor(async () => {
      const l = await client.listJobs()
      return l.length === 2 && l.every((j) => j.status === 'success') ? l : undefined
    }, 'both jobs succeeded on the manager')
    const far = jobs.find((j) => j.name === 'far')!
    const near = jobs.find((j) => j.name === 'near')!
    expect(far.next_schedule_ts - far.last_ended_ts).toBeGreaterThanOrEqual(100 * 365 * 86_400 - 1)
    expect(far.next_schedule_ts - far.last_ended_ts).toBeLessThanOrEqual(100 * 365 * 86_400 + 1)
    expect(near.next_schedule_ts - near.last_ended_ts).toBeGreaterThanOrEqual(30 * 86_400 - 1)
    // The worker's own API answers too (it failed with `Invalid time value` for 1000000y).
    const res = await fetch(`${w.url}jobs`)
    expect(res.status).toBe(200)
  })

  it('one stored status with a time no format can write does not take /jobs down, nor the pushes of the others', async () => {
    const store = await ManagerStore.open(mdb, quietLog())
    await store.putWorker({
      id: 'w1',
      url: 'http://127.0.0.1:1/',
      token: TOKEN,
      lastOnline: 0,
      lastRegister: 0,
    })
    // A record from before durations were bounded: next run at 1000000 years from now.
    await store.putJob({
      ...emptyStatus('poisoned', 'w1', 'https://u/'),
      status: 'success',
      lastUpdate: Date.now(),
      lastEnded: Date.now(),
      nextSchedule: Date.now() + 1_000_000 * YEAR,
    })
    await store.close()
    manager = await startManager({
      db: mdb,
      token: TOKEN,
      listenAddr: '127.0.0.1',
      listenPort: 0,
      log: quietLog(),
    })
    const { specs } = await configAndSpecs({ dir: tmp.dir, mirrors: commandMirror('fine', 'echo ok') }, db)
    const w = await startWorker(specs, db, { managers: [manager.url] })
    workers.push(w)
    const client = new ManagerClient(manager.url)
    const jobs = await waitFor(async () => {
      const l = await client.listJobs()
      return l.find((j) => j.name === 'fine')?.status === 'success' ? l : undefined
    }, 'the healthy job on the manager')
    const bad = jobs.find((j) => j.name === 'poisoned')!
    expect(bad).toMatchObject({ status: 'success', next_schedule: '0001-01-01 00:00:00 +0000' })
    const detail = await fetch(`${manager.url}/workers/w1/jobs`)
    expect(detail.status).toBe(200)
    // A worker posting such a time is told so (400), and nothing is stored.
    const post = await fetch(`${manager.url}/workers/w1/jobs/fine`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${TOKEN}` },
      body: JSON.stringify({
        name: 'fine',
        status: 'success',
        last_update: '2026-01-01T00:00:00Z',
        next_schedule: '+275760-09-13T00:00:00.000Z',
      }),
    })
    expect(post.status).toBe(400)
    expect((await client.listJobs()).find((j) => j.name === 'fine')?.status).toBe('success')
  })
})
