import { createInterface } from 'node:readline'
import { request } from 'undici'
import { RemoteError, UnreachableError } from '../sync/index.ts'

/** What a non-2xx answer's JSON body may hold. */
interface ErrorBody {
  error?: unknown
  code?: unknown
}

/**
 * A streaming route's lines (the audit and janitor clients): one request, its NDJSON body line by line.
 * Nothing answering is an UnreachableError; a non-2xx answer, or an `error` line mid-stream, a
 * RemoteError with the daemon's code (`onStatus` may throw its own error first, from the parsed body).
 */
export async function* ndjsonLines<L extends { type: string }>(
  url: string,
  init: { method: 'GET' | 'POST'; headers: Record<string, string>; body?: string; idleMs: number },
  onStatus?: (body: ErrorBody) => void,
): AsyncGenerator<Exclude<L, { type: 'error' }>> {
  let res: Awaited<ReturnType<typeof request>>
  try {
    res = await request(url, {
      method: init.method,
      headers: init.headers,
      ...(init.body !== undefined ? { body: init.body } : {}),
      headersTimeout: init.idleMs,
      bodyTimeout: init.idleMs,
    })
  } catch (err) {
    const e = err as { code?: string; message?: string }
    throw new UnreachableError(url, e.code ?? e.message ?? String(err), { cause: err })
  }
  if (res.statusCode < 200 || res.statusCode > 299) {
    const text = await res.body.text()
    let b: ErrorBody = {}
    try {
      b = JSON.parse(text) as ErrorBody
    } catch {}
    onStatus?.(b)
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
      const line = JSON.parse(text) as L
      if (line.type === 'error') {
        const e = line as unknown as { error: string; code: string }
        throw new RemoteError(url, 500, e.code, e.error)
      }
      yield line as Exclude<L, { type: 'error' }>
    }
  } finally {
    lines.close()
    res.body.destroy()
  }
}
