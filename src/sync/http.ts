import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest, LogController } from 'fastify'
import type { Logger } from 'pino'
import { errorCode, errorInfo, type HttpErrorKey, httpStatusOf } from '../error-codes.ts'
import { isCidmirrorError } from '../errors.ts'
import { BadNameError, BadRequestError, UnauthorizedError } from './api-errors.ts'
import { bearerMatches } from './auth.ts'
import type { ListenSource } from './config/types.ts'
import { ListenError } from './errors.ts'
import { invalidName } from './names.ts'

declare module 'fastify' {
  interface FastifyInstance {
    /**
     * A `preHandler` for write and control routes of a server from createApiServer: refuses a request
     * without `Authorization: Bearer <token>` with UNAUTHORIZED (401).
     */
    auth: (req: FastifyRequest) => Promise<void>
  }
}

/** Routes another room adds to a server before it listens (the daemon's read API over the index). */
export type ExtraRoutes = (app: FastifyInstance) => void

export interface ServerTls {
  cert: string
  key: string
}

/** fastify's own 4xx codes that get a code of ours; any other 4xx of fastify's is a BAD_REQUEST. */
const FASTIFY_CODES: Record<string, HttpErrorKey> = {
  FST_ERR_CTP_INVALID_MEDIA_TYPE: 'BAD_MEDIA_TYPE',
  FST_ERR_CTP_BODY_TOO_LARGE: 'BODY_TOO_LARGE',
}

/**
 * A fastify server with cidmirror's API conventions: JSON errors `{error, code}` with a 4xx status for
 * anything the caller got wrong (bad JSON, missing fields, unknown names) and never a 500 for those,
 * structured logs through the given pino logger, and `auth` to guard write and control routes with
 * `Authorization: Bearer <token>`.
 */
export function createApiServer(opts: {
  log: Logger
  /** The token, or a function giving the current one (a reload may change it). */
  token: string | (() => string)
  tls?: ServerTls
}): FastifyInstance {
  const token = typeof opts.token === 'function' ? opts.token : () => opts.token as string
  // Typed as a plain FastifyInstance: fastify's instance typed with pino's Logger does not widen to its
  // FastifyBaseLogger default, and every route module takes the default.
  const app = Fastify({
    loggerInstance: opts.log,
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: 1 << 20,
    // Long enough that an over-long name in a path reaches the name check (400) instead of
    // missing every route (find-my-way's default is 100 characters).
    routerOptions: { maxParamLength: 2048 },
    // A malformed URL (bad percent-encoding) gets cidmirror's error shape, not fastify's.
    frameworkErrors: (err: Error, _req: FastifyRequest, reply: FastifyReply) => {
      reply.code(httpStatusOf('BAD_REQUEST')).send({ error: err.message, code: errorCode('BAD_REQUEST') })
    },
    ...(opts.tls ? { https: { cert: opts.tls.cert, key: opts.tls.key } } : {}),
  }) as unknown as FastifyInstance
  app.setErrorHandler((err: Error & { statusCode?: number; code?: string }, req, reply: FastifyReply) => {
    // Any of our errors whose code has an HTTP status in the table is answered with it.
    const status = err.statusCode
    const http = isCidmirrorError(err) ? errorInfo(err.code)?.http : undefined
    if (isCidmirrorError(err) && http !== undefined) {
      return reply.code(http).send({ error: err.message, code: err.code })
    }
    if (status !== undefined && status >= 400 && status < 500) {
      const key = (err.code && FASTIFY_CODES[err.code]) || 'BAD_REQUEST'
      return reply.code(status).send({ error: err.message, code: errorCode(key) })
    }
    req.log.error({ err, url: req.url, method: req.method }, 'request failed')
    return reply.code(httpStatusOf('INTERNAL')).send({ error: err.message, code: errorCode('INTERNAL') })
  })
  app.setNotFoundHandler((req, reply) => {
    reply
      .code(httpStatusOf('NO_ROUTE'))
      .send({ error: `no route ${req.method} ${req.url}`, code: errorCode('NO_ROUTE') })
  })
  app.decorate('auth', async (req: FastifyRequest): Promise<void> => {
    if (!bearerMatches(req.headers.authorization, token())) throw new UnauthorizedError()
  })
  return app
}

/** A mirror name or worker id from a request (path or body); BadNameError when it breaks the rules. */
export function validName(value: unknown, what: string): string {
  if (typeof value !== 'string') throw new BadRequestError(`${what}: expected a string`)
  const problem = invalidName(value)
  if (problem !== undefined) throw new BadNameError(what, problem)
  return value
}

/** The listen errors an operator causes, in words; any other is a bug. */
const LISTEN_PROBLEMS: Record<string, string> = {
  EADDRINUSE: 'the port is in use (another process listens there: stop it or pick a free port)',
  EACCES: 'permission denied (ports below 1024 need root)',
  EADDRNOTAVAIL: "the address is not one of this machine's",
  ENOTFOUND: 'the host name does not resolve',
  EAI_AGAIN: 'the host name does not resolve',
}

/**
 * A listen error an operator causes (port in use, port needs root, address not here) as a ListenError
 * naming the config key that set it; any other error as it is.
 */
export function explainListenError(err: unknown, host: string, port: number, keys?: ListenSource): unknown {
  const errno = (err as NodeJS.ErrnoException).code
  const problem = errno ? LISTEN_PROBLEMS[errno] : undefined
  if (!problem) return err
  const address = `${host.includes(':') ? `[${host}]` : host}:${port}`
  return new ListenError(address, problem, { ...(keys ? { keys } : {}), errno, cause: err })
}

/** `app.listen()`, with an operator's listen error turned into a ListenError naming the config key. */
export async function listenApi(
  app: FastifyInstance,
  host: string,
  port: number,
  keys: ListenSource | undefined,
): Promise<void> {
  try {
    await app.listen({ host, port })
  } catch (err) {
    throw explainListenError(err, host, port, keys)
  }
}
