import { createInterface } from 'node:readline'
import { request } from 'undici'
import { errorCode } from '../error-codes.ts'
import { MirrorNotIndexedError } from '../index/index.ts'
import { type AuditQuery, checkAuditQuery } from '../replicator/index.ts'
import { joinUrl, RemoteError, requestJson, UnreachableError } from '../sync/index.ts'
import type { AuditWireLine } from './audit-routes.ts'

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
    if (opts.n !== undefined) params.set('n', String(opts.n))
    if (opts.progress) params.set('progress', '1')
    const url = `${joinUrl(this.base, '/replication/audit')}${params.size > 0 ? `?${params}` : ''}`
    const headers: Record<string, string> = { accept: 'application/x-ndjson, application/json' }
    if (this.#token) headers.authorization = `Bearer ${this.#token}`
    let res: Awaited<ReturnType<typeof request>>
    try {
      res = await request(url, {
        method: 'GET',
        headers,
        headersTimeout: STREAM_IDLE_MS,
        bodyTimeout: STREAM_IDLE_MS,
      })
    } catch (err) {
      const e = err as { code?: string; message?: string }
      throw new UnreachableError(url, e.code ?? e.message ?? String(err), { cause: err })
    }
    if (res.statusCode < 200 || res.statusCode > 299) {
      const text = await res.body.text()
      let b: { error?: unknown; code?: unknown } = {}
      try {
        b = JSON.parse(text) as typeof b
      } catch {}
      // As IndexClient does: an unknown mirror is the index's own error, worded as offline.
      if (b.code === errorCode('MIRROR_NOT_INDEXED') && q.mirror !== undefined)
        throw new MirrorNotIndexedError(q.mirror)
      throw new RemoteError(
        url,
        res.statusCode,
        typeof b.code === 'string' ? b.code : undefined,
        typeof b.error === 'string' ? b.error : text.trim() || `HTTP ${res.statusCode}`,
      )
    }
    const lines = createInterface({ input: res.body, crlfDelay: Number.POSITIVE_INFINITY })
    try {
      for await (const text of lines) {
        if (text === '') continue
        const line = JSON.parse(text) as AuditWireLine
        if (line.type === 'error') throw new RemoteError(url, 500, line.code, line.error)
        yield line
      }
    } finally {
      lines.close()
      res.body.destroy()
    }
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
