/**
 * Where a CLI command reads the index (`stat` today, `audit` next): the database itself when no
 * process holds it, else the read API of the daemon that does, found through the config (`-c FILE`:
 * `[manager] api_base` and token, then the worker's `[server]` address when the manager there runs
 * alone), or at `-m URL`. Both give an IndexReader, so the command prints the same either way.
 */

import type { Database } from '../db.ts'
import { errorCode } from '../error-codes.ts'
import type { IndexReader } from '../index/index.ts'
import type { Config } from '../sync/index.ts'

export interface IndexSourceOptions {
  db?: string
  config?: string
  /** A daemon's read API to ask, instead of any database. */
  manager?: string
  token?: string
}

export interface IndexSource {
  reader: IndexReader
  /** `database PATH` or `daemon URL`. */
  via: string
  /** The database, when it was opened here (no daemon holds it). */
  db?: Database
  /** The daemon asked, when one holds the database (`audit` uses its own routes there). */
  remote?: { base: string; token: string | undefined }
  /** The config read for `-c FILE`, if any. */
  config?: Config
  close(): Promise<void>
}

/** How long the first question to a daemon may take before it counts as not answering. */
const PROBE_TIMEOUT_MS = 10_000

export async function openIndexSource(o: IndexSourceOptions): Promise<IndexSource> {
  const { IndexClient } = await import('../api/index.ts')
  if (o.manager) {
    const token = o.token ?? process.env.CIDMIRROR_TOKEN
    return remote(new IndexClient(o.manager, token), token)
  }
  const { databaseTarget } = await import('./commands/index-cmd.ts')
  const target = await databaseTarget(o)
  const [{ openDatabase, DatabaseLockedError }, { openIndexReader }] = await Promise.all([
    import('../db.ts'),
    import('../index/index.ts'),
  ])
  try {
    const db = await openDatabase(target.db)
    return {
      reader: openIndexReader(db),
      via: `database ${target.db}`,
      db,
      ...(target.config ? { config: target.config } : {}),
      close: () => db.close(),
    }
  } catch (err) {
    if (!(err instanceof DatabaseLockedError) || !target.config) throw err
    return { ...(await daemonOf(target.config, target.db, o.token, err)), config: target.config }
  }
}

function remote(client: IndexReader & { base: string }, token: string | undefined): IndexSource {
  return {
    reader: client,
    via: `daemon ${client.base}`,
    remote: { base: client.base, token },
    close: async () => {},
  }
}

/** The daemon holding the database of `config`: its manager's listener, else its worker's. */
async function daemonOf(
  config: Config,
  dbPath: string,
  tokenFlag: string | undefined,
  locked: Error,
): Promise<IndexSource> {
  const [{ IndexClient, DaemonUnreachableError }, { RemoteError, UnreachableError }] = await Promise.all([
    import('../api/index.ts'),
    import('../sync/index.ts'),
  ])
  const token = tokenFlag ?? config.manager.token
  const reasons: string[] = []
  for (const url of [config.manager.apiBase, workerUrl(config)]) {
    const probe = new IndexClient(url, token, { timeoutMs: PROBE_TIMEOUT_MS })
    try {
      await probe.mirrors()
      return remote(new IndexClient(url, token), token)
    } catch (err) {
      // A manager that runs alone has no index: the worker beside it serves the read API.
      if (err instanceof RemoteError && err.code === errorCode('NO_ROUTE')) {
        reasons.push(`${url} has no read API (a manager running alone)`)
        continue
      }
      if (err instanceof UnreachableError) {
        reasons.push(err.message)
        continue
      }
      throw err
    }
  }
  throw new DaemonUnreachableError(dbPath, reasons, { cause: locked })
}

/** The worker's control API as seen from this host (a wildcard listen address means loopback). */
function workerUrl(config: Config): string {
  const s = config.server
  const host = s.listenAddr === '0.0.0.0' ? '127.0.0.1' : s.listenAddr === '::' ? '::1' : s.listenAddr
  return `${s.sslCert ? 'https' : 'http'}://${host.includes(':') ? `[${host}]` : host}:${s.listenPort}`
}
