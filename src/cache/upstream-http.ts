/**
 * The upstream check of evicted paths for a command provider whose upstream is an http(s) URL: an
 * excluded path is invisible to the sync, so each one is asked about with a HEAD of
 * `<upstream>/<path>` (redirects followed), a few at a time, each within a time limit and all within
 * one. 404 or 410: gone upstream. 200 with a Content-Length other than the record's size, or a
 * Last-Modified later than the record's mtime: changed. 200 whose headers match: the same. Anything
 * else (another status, no such header, an error, a time-out) says nothing: the path is left as it is
 * (still excluded) and reported, so the caller logs it.
 *
 * Why "later" and not "different" for Last-Modified: a mirror script that does not keep the server's
 * dates (`curl` without `-R`, `wget` without `-N`) records the download time, later than the server's
 * date; taking that for a change would download every evicted file again at each sync.
 */
import pLimit from 'p-limit'
import { Agent, type Dispatcher, interceptors, request } from 'undici'
import type { EvictedRecord } from '../index/index.ts'
import type { UpstreamCheck } from './exclude.ts'

/** The check's bounds (`[cache] upstream_check_concurrency`, `_timeout`, `_deadline`). */
export interface HttpCheckLimits {
  /** HEAD requests at once (default 8). */
  concurrency: number
  /** Time limit of one HEAD, to its status line (default 10 s). */
  requestTimeoutMs: number
  /** Time limit of the whole check (default 2 min): paths not asked by then are left as they are. */
  deadlineMs: number
}

export interface HttpUpstream extends Partial<HttpCheckLimits> {
  /** The upstream's URL of the mirror's root (`https://host/debian/`); a path is appended to it. */
  base: string
  /**
   * Ask in a random order (default true), so that when the time limit cuts a long list short, the next
   * syncs ask the others: every path is asked within a few syncs, not the same first ones each time.
   */
  shuffle?: boolean
  /** undici dispatcher (default an agent of this check's own that follows up to 5 redirects). */
  dispatcher?: Dispatcher
  signal?: AbortSignal
}

export const HTTP_CHECK_DEFAULTS: HttpCheckLimits = {
  concurrency: 8,
  requestTimeoutMs: 10_000,
  deadlineMs: 120_000,
}

/** Is `upstream` an http(s) URL the HTTP check can ask? */
export function isHttpUpstream(upstream: string): boolean {
  return /^https?:\/\/[^/]/i.test(upstream)
}

/** `base` + the path, each segment percent-encoded (a `?`, `#` or space in a file name stays a name). */
export function upstreamUrl(base: string, path: string): string {
  const root = base.endsWith('/') ? base : `${base}/`
  return root + path.split('/').map(encodeURIComponent).join('/')
}

/** Asks the upstream about each of `evicted` with a HEAD; never throws (a failure leaves a path as it is). */
export async function checkHttpUpstream(evicted: EvictedRecord[], src: HttpUpstream): Promise<UpstreamCheck> {
  const out: UpstreamCheck = { same: 0, deleted: [], changed: [], unchecked: [] }
  if (evicted.length === 0) return out
  const D = HTTP_CHECK_DEFAULTS
  const deadlineMs = src.deadlineMs ?? D.deadlineMs
  const timeoutMs = src.requestTimeoutMs ?? D.requestTimeoutMs
  const own = src.dispatcher ? undefined : new Agent({ connections: src.concurrency ?? D.concurrency })
  const dispatcher = src.dispatcher ?? own!.compose(interceptors.redirect({ maxRedirections: 5 }))
  const deadline = AbortSignal.timeout(deadlineMs)
  const stop = src.signal ? AbortSignal.any([src.signal, deadline]) : deadline
  const limit = pLimit(src.concurrency ?? D.concurrency)
  const leave = (path: string, why: string) => out.unchecked!.push({ path, why })
  const order = src.shuffle === false ? evicted : shuffled(evicted)
  try {
    await Promise.all(
      order.map((e) =>
        limit(async () => {
          if (stop.aborted) {
            const why = deadline.aborted ? `the check's time limit (${deadlineMs} ms) passed` : 'stopped'
            return leave(e.path, why)
          }
          const late = AbortSignal.timeout(timeoutMs)
          try {
            const r = await request(upstreamUrl(src.base, e.path), {
              method: 'HEAD',
              dispatcher,
              signal: AbortSignal.any([stop, late]),
              headersTimeout: timeoutMs,
            })
            await r.body.dump()
            if (r.statusCode === 404 || r.statusCode === 410) return void out.deleted.push(e.path)
            if (r.statusCode !== 200) return leave(e.path, `HTTP ${r.statusCode}`)
            const length = header(r.headers['content-length'])
            const modified = header(r.headers['last-modified'])
            const at = modified === undefined ? Number.NaN : Date.parse(modified)
            if (length === undefined && Number.isNaN(at))
              return leave(e.path, 'no Content-Length or Last-Modified in the answer')
            const sizeDiffers = length !== undefined && Number(length) !== e.size
            const newer = !Number.isNaN(at) && Math.floor(at / 1000) > Math.floor(e.mtimeMs / 1000)
            if (sizeDiffers || newer) out.changed.push(e.path)
            else out.same++
          } catch (err) {
            if (deadline.aborted) leave(e.path, `the check's time limit (${deadlineMs} ms) passed`)
            else if (late.aborted || (err as Error).name === 'HeadersTimeoutError')
              leave(e.path, `no answer within ${timeoutMs} ms`)
            else leave(e.path, (err as Error).message)
          }
        }),
      ),
    )
  } finally {
    await own?.close()
  }
  return out
}

/** A copy of `xs` in random order (Fisher-Yates). */
function shuffled<T>(xs: T[]): T[] {
  const out = [...xs]
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1))
    ;[out[i], out[j]] = [out[j]!, out[i]!]
  }
  return out
}

function header(v: string | string[] | undefined): string | undefined {
  return Array.isArray(v) ? v[0] : v
}
