import { createInterface } from 'node:readline'
import { request } from 'undici'
import { joinUrl, RemoteError, UnreachableError } from '../sync/index.ts'
import type { JanitorLine } from './janitor-routes.ts'

/** Longest silence allowed inside a janitor stream (a pass judges files steadily). */
const STREAM_IDLE_MS = 600_000

/** The janitor route's client (janitor-routes.ts): the daemon's pass, line by line. */
export class JanitorClient {
  readonly base: string
  readonly #token: string | undefined

  constructor(base: string, token?: string) {
    this.base = base
    this.#token = token
  }

  async *run(
    opts: { mirror?: string; dryRun?: boolean } = {},
  ): AsyncGenerator<Exclude<JanitorLine, { type: 'error' }>> {
    const url = joinUrl(this.base, '/cache/janitor')
    const headers: Record<string, string> = {
      accept: 'application/x-ndjson, application/json',
      'content-type': 'application/json',
    }
    if (this.#token) headers.authorization = `Bearer ${this.#token}`
    let res: Awaited<ReturnType<typeof request>>
    try {
      res = await request(url, {
        method: 'POST',
        headers,
        body: JSON.stringify({
          ...(opts.mirror !== undefined ? { mirror: opts.mirror } : {}),
          dryRun: opts.dryRun ?? false,
        }),
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
        const line = JSON.parse(text) as JanitorLine
        if (line.type === 'error') throw new RemoteError(url, 500, line.code, line.error)
        yield line
      }
    } finally {
      lines.close()
      res.body.destroy()
    }
  }
}
