import { Readable } from 'node:stream'
import type { FastifyInstance, FastifyRequest, RouteShorthandOptions } from 'fastify'
import type { Database } from '../db.ts'
import { errorCode } from '../error-codes.ts'
import { checkMirrorName } from '../index/index.ts'
import {
  type AuditLine,
  auditStream,
  type PolicySource,
  type ReplicationPolicy,
  type ReplicationQueue,
} from '../replicator/index.ts'
import { BadRequestError } from '../sync/index.ts'
import { NoReplicatorError } from './errors.ts'
import type { ReadAccess } from './routes.ts'

/** What the check route needs of a running replicator (src/replicator's Replicator). */
export interface CheckingReplicator {
  readonly queue: ReplicationQueue
  checkNow(keys?: string[]): Promise<number>
}

export interface AuditRoutesOptions {
  db: Database
  /**
   * Asked at each request: each mirror's policy (n, freshness, per-kind minimums) as the replicator
   * stores by it, `nFlag` (the query's `n=`) first. The daemon's src/daemon policyOf.
   */
  policyOf: (nFlag?: number) => (mirror: string) => { policy: ReplicationPolicy; from: PolicySource }
  /** Asked at each request: CIDs the local node reprovides per cycle, when it announces (the provide budget). */
  provideCapacity?: () => number | undefined
  access: ReadAccess | (() => ReadAccess)
  auth: (req: FastifyRequest) => Promise<void>
  /** The replicator running in this process, if any (asked at each request). */
  replicator?: () => CheckingReplicator | undefined
}

type Query = Record<string, string | string[] | undefined>

const AUDIT_KEYS = ['mirror', 'path', 'cid', 'under', 'n', 'progress', 'archive'] as const

/** How long `POST /replication/check` waits for the re-checks by default, and at most (seconds). */
const WAIT_DEFAULT_S = 60
const WAIT_MAX_S = 600

/**
 * The audit over HTTP (docs/audit.md): `GET /replication/audit` streams the audit's lines as NDJSON,
 * read as the index routes are (same access rule); `POST /replication/check` (token) makes the
 * replicator re-check now and waits for it. A bad name, path, CID or number is a 400 before anything
 * is streamed; an unknown mirror a 404.
 */
export function registerAuditRoutes(app: FastifyInstance, opts: AuditRoutesOptions): void {
  const access = typeof opts.access === 'function' ? opts.access : () => opts.access as ReadAccess
  const guard: RouteShorthandOptions = {
    preHandler: async (req) => {
      if (access() !== 'public') await opts.auth(req)
    },
  }

  app.get<{ Querystring: Query }>('/replication/audit', guard, async (req, reply) => {
    const q = single(req.query, AUDIT_KEYS)
    if (q.path !== undefined && q.mirror === undefined)
      throw new BadRequestError('path needs mirror: a path is relative to one mirror root')
    const n = q.n === undefined ? undefined : integer('n', q.n, 0, 1000)
    const lines = auditStream(
      opts.db,
      {
        ...(q.mirror !== undefined ? { mirror: q.mirror } : {}),
        ...(q.path !== undefined ? { path: q.path } : {}),
        ...(q.cid !== undefined ? { cid: q.cid } : {}),
        ...(q.under !== undefined ? { under: integer('under', q.under, 0, 1000) } : {}),
        ...(flag('archive', q.archive) ? { archive: true } : {}),
      },
      {
        policyOf: opts.policyOf(n),
        progress: flag('progress', q.progress),
        ...capacity(opts.provideCapacity?.()),
      },
    )
    // The first line comes after the query is checked: a bad one is answered as an error, not a stream.
    const first = await lines.next()
    async function* ndjson(): AsyncGenerator<string> {
      if (!first.done) yield `${JSON.stringify(first.value)}\n`
      try {
        for await (const l of lines) yield `${JSON.stringify(l)}\n`
      } catch (err) {
        // Headers are sent: the failure ends the stream as its last line (the client raises it).
        req.log.error({ err }, 'audit failed while streaming')
        const e = err as { message?: string; code?: string }
        yield `${JSON.stringify({ type: 'error', error: e.message ?? String(err), code: e.code ?? errorCode('INTERNAL') } satisfies AuditErrorLine)}\n`
      }
    }
    return reply.type('application/x-ndjson').send(Readable.from(ndjson()))
  })

  app.post<{ Body: unknown }>('/replication/check', { preHandler: opts.auth }, async (req) => {
    const body = (req.body ?? {}) as Record<string, unknown>
    if (typeof body !== 'object' || Array.isArray(body)) throw new BadRequestError('expected a JSON object')
    for (const k of Object.keys(body))
      if (k !== 'mirror' && k !== 'wait')
        throw new BadRequestError(`unknown field ${JSON.stringify(k)} (this route takes mirror, wait)`)
    if (body.mirror !== undefined && typeof body.mirror !== 'string')
      throw new BadRequestError('mirror: expected a string')
    const mirror = body.mirror === undefined ? undefined : checkMirrorName(body.mirror)
    const wait = body.wait ?? WAIT_DEFAULT_S
    if (typeof wait !== 'number' || !Number.isInteger(wait) || wait < 0 || wait > WAIT_MAX_S)
      throw new BadRequestError(`wait: expected whole seconds from 0 to ${WAIT_MAX_S}`)
    const replicator = opts.replicator?.()
    if (!replicator) throw new NoReplicatorError()
    const started = Date.now()
    // A mirror's items: its tree, and its files' CIDs when an entity-scope target pins them.
    const keys =
      mirror === undefined
        ? undefined
        : (await replicator.queue.all()).filter((e) => e.item.mirror === mirror).map((e) => e.item.key)
    const queued = await replicator.checkNow(keys)
    const targetKeys = keys ?? (await replicator.queue.all()).map((e) => e.item.key)
    const deadline = started + wait * 1000
    let pending = targetKeys
    for (;;) {
      const entries = await Promise.all(pending.map((k) => replicator.queue.get(k)))
      pending = pending.filter((_k, i) => {
        const e = entries[i]
        return e !== undefined && (e.checkedAt ?? 0) < started
      })
      if (pending.length === 0 || Date.now() >= deadline) break
      await new Promise((r) => setTimeout(r, 200))
    }
    return { queued, checked: targetKeys.length - pending.length, pending }
  })
}

function capacity(c: number | undefined): { provideCapacity?: number } {
  return c === undefined ? {} : { provideCapacity: c }
}

/** The last line of a stream the daemon could not finish. */
export interface AuditErrorLine {
  type: 'error'
  error: string
  code: string
}

export type AuditWireLine = AuditLine | AuditErrorLine

function single(raw: Query, keys: readonly string[]): Record<string, string> {
  const out: Record<string, string> = {}
  for (const [k, v] of Object.entries(raw ?? {})) {
    if (!keys.includes(k))
      throw new BadRequestError(
        `unknown query parameter ${JSON.stringify(k)} (this route takes ${keys.join(', ')})`,
      )
    if (typeof v !== 'string') throw new BadRequestError(`query parameter ${k} given more than once`)
    out[k] = v
  }
  return out
}

function integer(name: string, text: string, min: number, max: number): number {
  const n = /^\d{1,6}$/.test(text) ? Number(text) : Number.NaN
  if (!Number.isSafeInteger(n) || n < min || n > max)
    throw new BadRequestError(
      `${name}: expected an integer from ${min} to ${max}, got ${JSON.stringify(text)}`,
    )
  return n
}

function flag(name: string, text: string | undefined): boolean {
  if (text === undefined || text === '0' || text === 'false') return false
  if (text === '1' || text === 'true') return true
  throw new BadRequestError(`${name}: expected 1 or 0, got ${JSON.stringify(text)}`)
}
