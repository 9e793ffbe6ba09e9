import { request } from 'undici'
import { RemoteError, UnreachableError } from './api-errors.ts'

export interface RequestOptions {
  token?: string
  body?: unknown
  /** Whole request, connect to last byte; default 30 s. */
  timeoutMs?: number
  signal?: AbortSignal
}

/** A JSON object (not an array, not null). */
export function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}

/** Why nothing answered, in the words an operator acts on. */
function reason(err: unknown, timeoutMs: number): string {
  const e = err as { name?: string; code?: string; message?: string; cause?: { code?: string } }
  if (e?.name === 'TimeoutError') return `no answer within ${timeoutMs / 1000} s`
  return e?.code ?? e?.cause?.code ?? e?.message ?? String(err)
}

/**
 * One JSON request. Non-2xx answers throw RemoteError (carrying the server's `code`), no answer
 * throws UnreachableError. undici's `request`, not `fetch`: fetch refuses the fetch standard's "bad
 * ports" (6000, tunasync's default worker port, among them), and manager, workers and the CLI must
 * reach any TCP port. `https` trusts the process's CAs (`[manager] ca_cert` joins them: trust.ts).
 */
export async function requestJson<T = unknown>(
  method: 'GET' | 'POST' | 'DELETE',
  url: string,
  opts: RequestOptions = {},
): Promise<T> {
  const headers: Record<string, string> = { accept: 'application/json' }
  if (opts.token) headers.authorization = `Bearer ${opts.token}`
  if (opts.body !== undefined) headers['content-type'] = 'application/json'
  const timeoutMs = opts.timeoutMs ?? 30_000
  const timeout = AbortSignal.timeout(timeoutMs)
  const signal = opts.signal ? AbortSignal.any([opts.signal, timeout]) : timeout
  let status: number
  let text: string
  try {
    const res = await request(url, {
      method,
      headers,
      body: opts.body === undefined ? null : JSON.stringify(opts.body),
      signal,
      // The signal bounds the whole call; undici's own 300 s defaults would only be later.
      headersTimeout: timeoutMs,
      bodyTimeout: timeoutMs,
    })
    status = res.statusCode
    text = await res.body.text()
  } catch (err) {
    throw new UnreachableError(url, reason(timeout.aborted ? timeout.reason : err, timeoutMs), { cause: err })
  }
  let body: unknown
  try {
    body = text === '' ? undefined : JSON.parse(text)
  } catch {
    body = undefined
  }
  if (status < 200 || status > 299) {
    const b = isObject(body) ? body : {}
    const message =
      typeof b.error === 'string'
        ? b.error
        : typeof b.msg === 'string'
          ? b.msg
          : text.trim() || `HTTP ${status}`
    throw new RemoteError(url, status, typeof b.code === 'string' ? b.code : undefined, message)
  }
  return body as T
}

/** `base` + `path`, with exactly one slash between. */
export function joinUrl(base: string, path: string): string {
  return `${base.replace(/\/+$/, '')}/${path.replace(/^\/+/, '')}`
}
