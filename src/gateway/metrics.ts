/**
 * The gateway's Prometheus metrics, in a registry of its own (the daemon merges it with the
 * replicator's at `/metrics`). The hot path only adds to plain numbers; prom-client reads them at
 * scrape time, so a request pays no label hashing.
 */
import { Counter, Gauge, Histogram, Registry } from 'prom-client'

export class GatewayMetrics {
  readonly registry = new Registry()
  readonly #byStatus = new Map<number, number>()
  #bytes = 0
  open = 0
  readonly #duration: Histogram
  /** Fetch-backs by source and outcome (`ok`, `failed`, `aborted`). */
  readonly #fetches = new Map<string, number>()

  constructor(extra?: { cacheStats: () => { entries: number; bytes: number } }) {
    const self = this
    new Counter({
      name: 'cidmirror_gateway_requests_total',
      help: 'Requests answered by the gateway, by status code',
      labelNames: ['status'],
      registers: [this.registry],
      collect() {
        this.reset()
        for (const [status, n] of self.#byStatus) this.inc({ status: String(status) }, n)
      },
    })
    new Counter({
      name: 'cidmirror_gateway_sent_bytes_total',
      help: 'Body bytes the gateway sent',
      registers: [this.registry],
      collect() {
        this.reset()
        this.inc(self.#bytes)
      },
    })
    new Gauge({
      name: 'cidmirror_gateway_open_connections',
      help: 'Client connections open now',
      registers: [this.registry],
      collect() {
        this.set(self.open)
      },
    })
    this.#duration = new Histogram({
      name: 'cidmirror_gateway_request_duration_seconds',
      help: 'Time from a request to its last byte handed to the socket',
      buckets: [0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 30, 120, 600],
      registers: [this.registry],
    })
    new Counter({
      name: 'cidmirror_gateway_fetch_backs_total',
      help: 'Fetch-backs of evicted files, by source and outcome',
      labelNames: ['source', 'outcome'],
      registers: [this.registry],
      collect() {
        this.reset()
        for (const [k, n] of self.#fetches) {
          const [source, outcome] = k.split('\0') as [string, string]
          this.inc({ source, outcome }, n)
        }
      },
    })
    if (extra) {
      new Gauge({
        name: 'cidmirror_gateway_cache_bytes',
        help: 'Bytes of small files held in the memory cache',
        registers: [this.registry],
        collect() {
          this.set(extra.cacheStats().bytes)
        },
      })
    }
  }

  done(status: number, bytes: number, seconds: number): void {
    this.#byStatus.set(status, (this.#byStatus.get(status) ?? 0) + 1)
    this.#bytes += bytes
    this.#duration.observe(seconds)
  }

  fetchBack(source: string, outcome: 'ok' | 'failed' | 'aborted'): void {
    const k = `${source}\0${outcome}`
    this.#fetches.set(k, (this.#fetches.get(k) ?? 0) + 1)
  }
}
