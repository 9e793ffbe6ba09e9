/**
 * Fetch-back figures by source, for the gateway's `/metrics` (Prometheus, through `collect`) and
 * `/_status` (the plain snapshot): bytes, fetches, failures, time to first verified byte.
 */
import { Counter, Gauge, type Registry } from 'prom-client'
import type { PastCacheFigures } from './past-cache.ts'
import type { SourceKind } from './sources.ts'

export interface SourceFigures {
  source: string
  kind: SourceKind
  /** Verified bytes this source gave. */
  bytes: number
  /** Fetches it completed (the file's last byte came from it). */
  fetches: number
  /** Times it failed (error, wrong or truncated answer, time-out). */
  failures: number
  timeouts: number
  /** Time to its first verified byte: the last one seen, and the mean, in ms. */
  lastTtfbMs?: number
  meanTtfbMs?: number
  lastError?: string
}

export interface FetchBackFigures {
  /** Network fetches running now, and waiting for a slot. */
  active: number
  queued: number
  bytesInFlight: number
  /** Files fetched back and cached, and fetches that failed everywhere. */
  completed: number
  failed: number
  /** Requests that joined a fetch already running (no second network fetch). */
  joined: number
  sources: SourceFigures[]
  /** The cache of past fetches (past-cache.ts), when there is one. */
  pastCache?: PastCacheFigures
}

interface Row extends SourceFigures {
  ttfbSum: number
  ttfbCount: number
}

export class FetchBackMetrics {
  readonly #rows = new Map<string, Row>()
  completed = 0
  failed = 0
  joined = 0

  #row(source: string, kind: SourceKind): Row {
    let r = this.#rows.get(source)
    if (!r) {
      r = { source, kind, bytes: 0, fetches: 0, failures: 0, timeouts: 0, ttfbSum: 0, ttfbCount: 0 }
      this.#rows.set(source, r)
    }
    return r
  }

  firstByte(source: string, kind: SourceKind, ms: number): void {
    const r = this.#row(source, kind)
    r.lastTtfbMs = ms
    r.ttfbSum += ms
    r.ttfbCount++
  }

  bytes(source: string, kind: SourceKind, n: number): void {
    this.#row(source, kind).bytes += n
  }

  done(source: string, kind: SourceKind): void {
    this.#row(source, kind).fetches++
  }

  failure(source: string, kind: SourceKind, error: string, timeout: boolean): void {
    const r = this.#row(source, kind)
    r.failures++
    if (timeout) r.timeouts++
    r.lastError = error
  }

  sources(): SourceFigures[] {
    return [...this.#rows.values()].map(({ ttfbSum, ttfbCount, ...rest }) => ({
      ...rest,
      ...(ttfbCount > 0 ? { meanTtfbMs: ttfbSum / ttfbCount } : {}),
    }))
  }

  /** Registers `cidmirror_fetchback_*` in `registry`, read from `figures()` at each scrape. */
  register(registry: Registry, figures: () => FetchBackFigures): void {
    const bySource = (name: string, help: string, pick: (s: SourceFigures) => number | undefined) =>
      new Counter({
        name,
        help,
        labelNames: ['source', 'kind'],
        registers: [registry],
        collect() {
          this.reset()
          for (const s of figures().sources) {
            const v = pick(s)
            if (v !== undefined) this.inc({ source: s.source, kind: s.kind }, v)
          }
        },
      })
    bySource('cidmirror_fetchback_bytes_total', 'Verified bytes fetched back, by source', (s) => s.bytes)
    bySource(
      'cidmirror_fetchback_fetches_total',
      'Evicted files fetched back, by the source that finished them',
      (s) => s.fetches,
    )
    bySource(
      'cidmirror_fetchback_failures_total',
      'Fetch-back sources that failed (error, bad or truncated answer, time-out)',
      (s) => s.failures,
    )
    new Gauge({
      name: 'cidmirror_fetchback_ttfb_seconds',
      help: 'Mean time to the first verified byte, by source',
      labelNames: ['source', 'kind'],
      registers: [registry],
      collect() {
        this.reset()
        for (const s of figures().sources)
          if (s.meanTtfbMs !== undefined) this.set({ source: s.source, kind: s.kind }, s.meanTtfbMs / 1000)
      },
    })
    new Gauge({
      name: 'cidmirror_fetchback_active',
      help: 'Network fetches running (state=running) and waiting for a slot (state=queued)',
      labelNames: ['state'],
      registers: [registry],
      collect() {
        const f = figures()
        this.set({ state: 'running' }, f.active)
        this.set({ state: 'queued' }, f.queued)
      },
    })
    new Gauge({
      name: 'cidmirror_fetchback_bytes_in_flight',
      help: 'Bytes of the files being fetched back now',
      registers: [registry],
      collect() {
        this.set(figures().bytesInFlight)
      },
    })
  }
}
