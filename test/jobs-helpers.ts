import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { pino } from 'pino'
import { buildJobSpecs } from '../src/daemon/jobs.ts'
import { type Database, openDatabase } from '../src/db.ts'
import { loadConfig } from '../src/sync/config/index.ts'
import type { Config } from '../src/sync/config/types.ts'
import type { JobSpec } from '../src/sync/job.ts'
import type { Backoff } from '../src/util/backoff.ts'

/** Shared set-up of the jobs, scheduler, manager and daemon tests. */

export const TOKEN = 'test-token-0123456789'
export const FAST_BACKOFF: Backoff = { baseMs: 100, maxMs: 2000, jitter: 0.2 }
export const FAST_LINK: Backoff = { baseMs: 50, maxMs: 300, jitter: 0 }

export const quietLog = () => pino({ level: process.env.CIDMIRROR_TEST_LOG ?? 'silent' })

export function tempDir(prefix = 'cidmirror-jobs-'): { dir: string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), prefix))
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) }
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer()
    srv.on('error', reject)
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address()
      const port = typeof addr === 'object' && addr ? addr.port : 0
      srv.close(() => resolve(port))
    })
  })
}

export async function waitFor<T>(
  fn: () => T | Promise<T>,
  what: string,
  timeoutMs = 20_000,
  everyMs = 25,
): Promise<NonNullable<T>> {
  const until = Date.now() + timeoutMs
  let last: unknown
  for (;;) {
    try {
      const v = await fn()
      if (v) return v as NonNullable<T>
    } catch (err) {
      last = err
    }
    if (Date.now() > until)
      throw new Error(`timed out waiting for ${what}${last ? `: ${(last as Error).message}` : ''}`)
    await new Promise((r) => setTimeout(r, everyMs))
  }
}

export interface TomlOptions {
  dir: string
  name?: string
  managerPort?: number
  /** The worker's `[server] listen_port`; default 0 (a free port). */
  workerPort?: number
  concurrent?: number
  retry?: number
  interval?: string
  globalExtra?: string
  /** `[[mirrors]]` sections. */
  mirrors: string
}

/** Writes a config in `dir` (mirrors, logs and db under it) and returns its path. */
export function writeToml(o: TomlOptions): string {
  const file = join(o.dir, 'cidmirror.toml')
  writeFileSync(
    file,
    `[global]
name = "${o.name ?? 'w1'}"
mirror_dir = "${o.dir}/mirrors"
log_dir = "${o.dir}/log/{{.Name}}"
concurrent = ${o.concurrent ?? 4}
interval = "${o.interval ?? '1h'}"
retry = ${o.retry ?? 1}
${o.globalExtra ?? ''}

[manager]
api_base = "http://127.0.0.1:${o.managerPort ?? 1}"
token = "${TOKEN}"

[server]
hostname = "127.0.0.1"
listen_addr = "127.0.0.1"
listen_port = ${o.workerPort ?? 0}

[database]
path = "${o.dir}/db"

${o.mirrors}
`,
  )
  return file
}

/** A `[[mirrors]]` command job. */
export function commandMirror(name: string, command: string, extra = ''): string {
  return `[[mirrors]]
name = "${name}"
provider = "command"
upstream = "https://upstream.example/${name}/"
command = ${JSON.stringify(command)}
${extra}
`
}

/** `_db`: the database the specs' jobs will use (index hooks are not registered here). */
export async function configAndSpecs(
  o: TomlOptions,
  _db: Database,
): Promise<{ config: Config; specs: JobSpec[] }> {
  const config = await loadConfig(writeToml(o))
  return { config, specs: buildJobSpecs(config, {}) }
}

export async function openDb(dir: string, name = 'db'): Promise<Database> {
  return openDatabase(join(dir, name))
}

import { Worker } from '../src/sync/worker/worker.ts'

export async function startWorker(
  specs: JobSpec[],
  db: Database,
  opts: { concurrent?: number; managers?: string[]; name?: string; retryBackoff?: Backoff } = {},
): Promise<Worker> {
  const w = new Worker({
    name: opts.name ?? 'w1',
    jobs: specs,
    db,
    managers: opts.managers ?? [],
    token: TOKEN,
    server: { listenAddr: '127.0.0.1', listenPort: 0, hostname: '127.0.0.1' },
    concurrent: opts.concurrent ?? 4,
    retryBackoff: opts.retryBackoff ?? FAST_BACKOFF,
    linkBackoff: FAST_LINK,
    log: quietLog(),
  })
  await w.start()
  return w
}
