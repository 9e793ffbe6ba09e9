import { errorCode } from '../error-codes.ts'
import { MirrorNotIndexedError } from '../index/index.ts'
import { type AuditQuery, checkAuditQuery } from '../replicator/index.ts'
import { joinUrl, requestJson } from '../sync/index.ts'
import type { AuditWireLine } from './audit-routes.ts'
import { ndjsonLines } from './ndjson.ts'

/** Longest silence allowed inside an audit stream (the daemon sends a progress line every 1000 files). */
const STREAM_IDLE_MS = 300_000

/**
 * The audit routes' client (audit-routes.ts): the daemon's audit as the same lines `auditStream`
 * gives offline. Input is checked with the same rules before it is sent; the daemon's errors are
 * RemoteError with the daemon's code, nothing answering an UnreachableError.
 */
export class AuditClient {
  readonly base: string
  readonly #token: string | undefined

  constructor(base: string, token?: string) {
    this.base = base
    this.#token = token
  }

  async *audit(
    query: AuditQuery,
    opts: { n?: number; progress?: boolean } = {},
  ): AsyncGenerator<AuditWireLine> {
    const q = checkAuditQuery(query)
    const params = new URLSearchParams()
    if (q.mirror !== undefined) params.set('mirror', q.mirror)
    if (q.path !== undefined) params.set('path', q.path)
    if (q.cid !== undefined) params.set('cid', q.cid)
    if (q.under !== undefined) params.set('under', String(q.under))
    if (q.archive) params.set('archive', '1')
    if (opts.n !== undefined) params.set('n', String(opts.n))
    if (opts.progress) params.set('progress', '1')
    const url = `${joinUrl(this.base, '/replication/audit')}${params.size > 0 ? `?${params}` : ''}`
    const headers: Record<string, string> = { accept: 'application/x-ndjson, application/json' }
    if (this.#token) headers.authorization = `Bearer ${this.#token}`
    yield* ndjsonLines<AuditWireLine>(url, { method: 'GET', headers, idleMs: STREAM_IDLE_MS }, (b) => {
      // As IndexClient does: an unknown mirror is the index's own error, worded as offline.
      if (b.code === errorCode('MIRROR_NOT_INDEXED') && q.mirror !== undefined)
        throw new MirrorNotIndexedError(q.mirror)
    })
  }

  /** Asks the replicator to re-check now (one mirror's tree, or everything) and waits up to `wait` s. */
  check(
    opts: { mirror?: string; wait?: number } = {},
  ): Promise<{ queued: number; checked: number; pending: string[] }> {
    return requestJson('POST', joinUrl(this.base, '/replication/check'), {
      ...(this.#token ? { token: this.#token } : {}),
      body: {
        ...(opts.mirror !== undefined ? { mirror: opts.mirror } : {}),
        ...(opts.wait !== undefined ? { wait: opts.wait } : {}),
      },
      timeoutMs: ((opts.wait ?? 60) + 30) * 1000,
    })
  }
}
