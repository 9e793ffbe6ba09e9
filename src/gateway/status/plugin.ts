/**
 * `GET /_status` (HTML for a person) and `GET /_status.json` (the same data), a fastify plugin:
 * `app.register(statusPage, { jobs, index, replication, recent })`. The mirrors' part is gathered at
 * most once per `maxAgeMs` (an audit summary reads every file's copies: a page reload must not redo it
 * each time), shared by concurrent requests; the recent requests are read live.
 */
import type { FastifyInstance } from 'fastify'
import { collectStatus, type StatusData, type StatusSources } from './data.ts'
import { statusPage as render } from './page.ts'

export interface StatusPageOptions extends StatusSources {
  /** The page's heading. Default "cidmirror status". */
  title?: string
  /** Recent requests listed at most. Default 50. */
  recentLimit?: number
  /** How long the mirrors' data is reused. Default 5000 ms. */
  maxAgeMs?: number
  /**
   * How long a mirror's replication health is reused while its last scan stays the same (an audit reads
   * every file's copies). Default 60 s.
   */
  replicationMaxAgeMs?: number
}

/**
 * `fn` per mirror, each answer reused for `maxAgeMs` while the mirror's last committed scan stays the
 * one it judged (shared by concurrent callers): a commit is audited again at the next gathering, so a
 * new tree never shows the health of the one before it (or of none). A failure or an undefined answer
 * (nothing to show yet) is not kept.
 */
function memo<T>(
  fn: (mirror: string, scan: number | null) => Promise<T>,
  maxAgeMs: number,
): (mirror: string, scan: number | null) => Promise<T> {
  const kept = new Map<string, { at: number; scan: number | null; value: Promise<T> }>()
  return (mirror, scan) => {
    const now = Date.now()
    const hit = kept.get(mirror)
    if (hit && hit.scan === scan && now - hit.at <= maxAgeMs) return hit.value
    const value = fn(mirror, scan)
    kept.set(mirror, { at: now, scan, value })
    const forget = (): void => {
      if (kept.get(mirror)?.value === value) kept.delete(mirror)
    }
    value.then((v) => v === undefined && forget(), forget)
    return value
  }
}

export async function statusPage(app: FastifyInstance, opts: StatusPageOptions): Promise<void> {
  const title = opts.title ?? 'cidmirror status'
  const recentLimit = opts.recentLimit ?? 50
  const maxAgeMs = opts.maxAgeMs ?? 5000
  let cached: { at: number; data: Promise<StatusData> } | undefined
  const replication = opts.replication && memo(opts.replication, opts.replicationMaxAgeMs ?? 60_000)

  const current = async (): Promise<StatusData> => {
    const now = Date.now()
    if (!cached || now - cached.at > maxAgeMs) {
      const data = collectStatus({ ...opts, replication, recent: undefined }, recentLimit)
      cached = { at: now, data }
      data.catch(() => {
        if (cached?.data === data) cached = undefined
      })
    }
    const data = await cached.data
    return {
      ...data,
      recent: (opts.recent?.() ?? []).slice(0, recentLimit),
      fetchBack: opts.fetchBack?.() ?? null,
      janitor: opts.janitor?.() ?? null,
    }
  }

  app.get('/_status', async (_req, reply) => {
    const data = await current()
    return reply
      .header('cache-control', 'no-cache')
      .header('x-content-type-options', 'nosniff')
      .header('content-security-policy', "default-src 'none'; style-src 'unsafe-inline'")
      .type('text/html; charset=utf-8')
      .send(render(data, title))
  })
  app.get('/_status.json', async (_req, reply) => {
    return reply.header('cache-control', 'no-cache').send(await current())
  })
}
