import type { Logger } from 'pino'
import type { Database } from '../../db.ts'
import type { ListenSource } from '../config/types.ts'
import { type ExtraRoutes, listenApi, type ServerTls } from '../http.ts'
import { TokenMissingError } from './errors.ts'
import { createManagerServer } from './server.ts'
import { ManagerStore } from './store.ts'

export { ManagerClient } from './client.ts'
export * from './errors.ts'
export { createManagerServer } from './server.ts'
export { ManagerStore, type WorkerRecord } from './store.ts'

export interface ManagerOptions {
  db: Database
  token: string | undefined
  listenAddr: string
  /** 0 picks a free port. */
  listenPort: number
  log: Logger
  tls?: ServerTls
  /** Further routes on the manager's listener (the daemon's read API). */
  routes?: ExtraRoutes
  /** The config keys of the listen address and port, named when the manager cannot listen. */
  listenSource?: ListenSource
}

export interface ManagerHandle {
  /** Base URL it listens on, e.g. `http://127.0.0.1:14242`. */
  url: string
  port: number
  /** Replaces the token every write and control call must carry (a reload changed it). */
  setToken(token: string): void
  close(): Promise<void>
}

/** Starts the manager's HTTP API on the given address. */
export async function startManager(opts: ManagerOptions): Promise<ManagerHandle> {
  if (!opts.token) throw new TokenMissingError('the manager')
  const log = opts.log.child({ role: 'manager' })
  const store = await ManagerStore.open(opts.db, log)
  let token = opts.token
  const app = createManagerServer({
    store,
    token: () => token,
    log,
    routes: opts.routes,
    ...(opts.tls ? { tls: opts.tls } : {}),
  })
  try {
    await listenApi(app, opts.listenAddr, opts.listenPort, opts.listenSource)
  } catch (err) {
    await store.close()
    throw err
  }
  const addr = app.server.address()
  const port = typeof addr === 'object' && addr ? addr.port : opts.listenPort
  const host = opts.listenAddr.includes(':') ? `[${opts.listenAddr}]` : opts.listenAddr
  const url = `${opts.tls ? 'https' : 'http'}://${host}:${port}`
  log.info({ url }, 'manager listening')
  return {
    url,
    port,
    setToken: (t) => {
      token = t
    },
    close: async () => {
      await app.close()
      await store.close()
    },
  }
}
