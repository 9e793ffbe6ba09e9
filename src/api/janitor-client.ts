import { joinUrl } from '../sync/index.ts'
import type { JanitorLine } from './janitor-routes.ts'
import { ndjsonLines } from './ndjson.ts'

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
    yield* ndjsonLines<JanitorLine>(url, {
      method: 'POST',
      headers,
      body: JSON.stringify({
        ...(opts.mirror !== undefined ? { mirror: opts.mirror } : {}),
        dryRun: opts.dryRun ?? false,
      }),
      idleMs: STREAM_IDLE_MS,
    })
  }
}
