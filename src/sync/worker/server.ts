import type { FastifyInstance } from 'fastify'
import type { Logger } from 'pino'
import { createApiServer, type ExtraRoutes, type ServerTls } from '../http.ts'
import { isObject } from '../http-client.ts'
import { toWire } from '../status.ts'
import { BadRequestError } from './errors.ts'
import type { Worker } from './worker.ts'

/**
 * The worker's control API (tunasync's worker HTTP server): `POST /` with a WorkerCmd
 * `{cmd, mirror_id, options}` (token required) answers `{"msg": "OK"}`, 404 for a mirror it does not
 * have; `GET /ping` and `GET /jobs` (its jobs' statuses) are public.
 */
export function createWorkerServer(opts: {
  worker: Worker
  /** The token, or a function giving the current one. */
  token: string | (() => string)
  log: Logger
  tls?: ServerTls | undefined
  /** Further routes on the same listener (the daemon's read API, when no manager runs here). */
  routes?: ExtraRoutes | undefined
}): FastifyInstance {
  const app = createApiServer({ log: opts.log, token: opts.token, ...(opts.tls ? { tls: opts.tls } : {}) })
  app.get('/ping', async () => ({ message: 'pong', worker: opts.worker.name }))
  app.get('/jobs', async () => opts.worker.statuses().map(toWire))
  app.post('/', { preHandler: app.auth }, async (req) => {
    if (!isObject(req.body)) throw new BadRequestError('expected a JSON object {cmd, mirror_id, options}')
    await opts.worker.command(req.body)
    return { msg: 'OK' }
  })
  opts.routes?.(app)
  return app
}
