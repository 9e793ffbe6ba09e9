import type { FastifyInstance, FastifyRequest, RouteShorthandOptions } from 'fastify'
import { type IndexReader, PAGE_LIMITS, PathNotIndexedError, UnknownScanError } from '../index/index.ts'
import { BadRequestError } from '../sync/index.ts'

/** Who may read the index over HTTP: token holders only (the default), or anyone. */
export type ReadAccess = 'token' | 'public'

export interface IndexRoutesOptions {
  reader: IndexReader
  /** Read at each request, so that a config reload applies a new `read_access`. */
  access: ReadAccess | (() => ReadAccess)
  /** The server's token check (a preHandler), used unless `access` is `public`. */
  auth: (req: FastifyRequest) => Promise<void>
}

type Query = Record<string, string | string[] | undefined>

/**
 * The daemon's read API over the index: `GET /index/...` (docs/api.md lists each route, its JSON and
 * its errors). Answers are the IndexReader's objects as they are, so the CLI's client gives back
 * exactly what the database would. Every parameter is checked: malformed input is a 400, an unknown
 * mirror, path, scan or CID a 404, never a 500.
 */
export function registerIndexRoutes(app: FastifyInstance, opts: IndexRoutesOptions): void {
  const { reader } = opts
  const access = typeof opts.access === 'function' ? opts.access : () => opts.access as ReadAccess
  const guard: RouteShorthandOptions = {
    preHandler: async (req) => {
      if (access() !== 'public') await opts.auth(req)
    },
  }
  const get = <P>(
    url: string,
    keys: readonly string[],
    handler: (params: P, q: Record<string, string>) => Promise<unknown>,
  ): void => {
    // The index's errors are answered with their table status (src/error-codes.ts).
    app.get<{ Params: P; Querystring: Query }>(url, guard, async (req) => {
      return handler(req.params as P, query(req.query, keys))
    })
  }

  get('/index/mirrors', [], async () => ({ mirrors: await reader.mirrors() }))

  get<{ mirror: string }>('/index/mirrors/:mirror', [], (p) => reader.summary(p.mirror))

  const record = async (mirror: string, path: string): Promise<unknown> => {
    const rec = await reader.record(mirror, path)
    if (!rec) throw new PathNotIndexedError(path === '' ? '.' : path, `the index of mirror ${mirror}`)
    return { mirror, ...rec }
  }
  get<{ mirror: string }>('/index/mirrors/:mirror/path', [], (p) => record(p.mirror, ''))
  get<{ mirror: string; '*': string }>('/index/mirrors/:mirror/path/*', [], (p) => record(p.mirror, p['*']))

  get<{ mirror: string }>('/index/mirrors/:mirror/records', ['under', 'after', 'limit'], (p, q) =>
    reader.records(p.mirror, {
      ...(q.under !== undefined ? { under: q.under } : {}),
      ...(q.after !== undefined ? { after: q.after } : {}),
      ...limitOf(q, PAGE_LIMITS.records.max),
    }),
  )

  get<{ mirror: string }>('/index/mirrors/:mirror/children', ['dir', 'after', 'limit'], (p, q) =>
    reader.children(p.mirror, q.dir ?? '', {
      ...(q.after !== undefined ? { after: q.after } : {}),
      ...limitOf(q, PAGE_LIMITS.children.max),
    }),
  )

  get<{ mirror: string }>('/index/mirrors/:mirror/scans', ['before', 'limit'], (p, q) =>
    reader.scans(p.mirror, {
      ...(q.before !== undefined ? { before: integer('before', q.before, 1) } : {}),
      ...limitOf(q, PAGE_LIMITS.scans.max),
    }),
  )

  get<{ mirror: string; id: string }>('/index/mirrors/:mirror/scans/:id', [], async (p) => {
    const id = integer('id', p.id, 1)
    const scan = await reader.scan(p.mirror, id)
    if (!scan) throw new UnknownScanError(p.mirror, id)
    return scan
  })

  get<{ cid: string }>('/index/cids/:cid', ['mirror', 'after', 'limit'], (p, q) =>
    reader.pathsOf(p.cid, {
      ...(q.mirror !== undefined ? { mirror: q.mirror } : {}),
      ...(q.after !== undefined ? { after: q.after } : {}),
      ...limitOf(q, PAGE_LIMITS.paths.max),
    }),
  )
}

/** The query's parameters, each at most once, none but `keys`. */
function query(raw: Query, keys: readonly string[]): Record<string, string> {
  const out: Record<string, string> = {}
  for (const [k, v] of Object.entries(raw ?? {})) {
    if (!keys.includes(k))
      throw new BadRequestError(
        `unknown query parameter ${JSON.stringify(k)}${keys.length ? ` (this route takes ${keys.join(', ')})` : ''}`,
      )
    if (typeof v !== 'string') throw new BadRequestError(`query parameter ${k} given more than once`)
    out[k] = v
  }
  return out
}

function integer(name: string, text: string, min: number, max = Number.MAX_SAFE_INTEGER): number {
  const n = /^\d{1,16}$/.test(text) ? Number(text) : Number.NaN
  if (!Number.isSafeInteger(n) || n < min || n > max)
    throw new BadRequestError(
      `${name}: expected an integer from ${min} to ${max}, got ${JSON.stringify(text)}`,
    )
  return n
}

function limitOf(q: Record<string, string>, max: number): { limit?: number } {
  return q.limit === undefined ? {} : { limit: integer('limit', q.limit, 1, max) }
}
