/**
 * The janitor as the daemon (and `cidmirror janitor`) runs it: built from `[cache]`, one pass at a
 * time over the configured mirrors, on a schedule and after replication passes; counters for
 * `/metrics`.
 */
import type { Logger } from 'pino'
import { type FileDecision, type JanitorReport, runJanitor } from '../cache/index.ts'
import type { Database } from '../db.ts'
import { CopyStore, openMirrorIndex } from '../index/index.ts'
import type { IpfsNode } from '../ipfs/index.ts'
import type { Config } from '../sync/index.ts'
import { setLongTimeout } from '../util/long-timer.ts'
import type { CacheSettings } from './cache-config.ts'

export interface JanitorServiceOptions {
  db: Database
  config: () => Config
  cache: CacheSettings
  /** The local IPFS node (its references follow evictions). */
  node?: IpfsNode | undefined
  log: Logger
  /** When the gateway last served a path (the gateway fills it once it runs). */
  lastRequested?: (mirror: string, path: string) => number | undefined
  /**
   * A mirror whose sync runs now: left out of the pass, since its exclude list was written before the
   * sync began and rsync would fetch a file evicted meanwhile again.
   */
  busy?: (mirror: string) => boolean
}

export interface JanitorRunOptions {
  mirror?: string
  dryRun?: boolean
  onFile?: (d: FileDecision) => void
  now?: number
  signal?: AbortSignal
}

export interface JanitorCounters {
  runs: number
  evictions: number
  bytesFreed: number
  failures: number
  lastRun?: JanitorReport
}

export class JanitorService {
  readonly #o: JanitorServiceOptions
  readonly #copies: CopyStore
  #chain: Promise<unknown> = Promise.resolve()
  #timer: { clear(): void } | undefined
  #pending = false
  #closed = false
  readonly counters: JanitorCounters = { runs: 0, evictions: 0, bytesFreed: 0, failures: 0 }

  constructor(o: JanitorServiceOptions) {
    this.#o = o
    this.#copies = new CopyStore(o.db)
  }

  /** The mirrors the janitor looks after (`[cache] mirrors`). */
  get mirrors(): readonly string[] {
    return this.#o.cache.mirrors
  }

  /** The mirrors a pass looks after: `[cache] mirrors` (or `mirror` alone) among the configured ones. */
  #mirrors(only: string | undefined) {
    const config = this.#o.config()
    const cache = this.#o.cache
    return config.mirrors
      .filter((m) => cache.mirrors.includes(m.name) && (only === undefined || m.name === only))
      .filter((m) => {
        if (!this.#o.busy?.(m.name)) return true
        this.#o.log.info({ mirror: m.name }, 'janitor skips a mirror while it syncs')
        return false
      })
      .map((m) => ({ index: openMirrorIndex(this.#o.db, m.name, m.mirrorDir), copies: cache.copies(m.name) }))
  }

  /** One pass; passes never overlap (a second waits for the first). */
  run(opts: JanitorRunOptions = {}): Promise<JanitorReport> {
    const next = this.#chain.then(async () => {
      const report = await runJanitor({
        copies: this.#copies,
        policy: this.#o.cache.policy,
        mirrors: this.#mirrors(opts.mirror),
        dryRun: opts.dryRun ?? false,
        ...(opts.now !== undefined ? { now: opts.now } : {}),
        ...(this.#o.lastRequested ? { lastRequested: this.#o.lastRequested } : {}),
        node: opts.dryRun ? undefined : this.#o.node,
        ...(opts.onFile ? { onFile: opts.onFile } : {}),
        ...(opts.signal ? { signal: opts.signal } : {}),
      })
      if (!report.dryRun) {
        this.counters.runs++
        this.counters.evictions += report.evicted
        this.counters.bytesFreed += report.bytesFreed
        this.counters.lastRun = report
        if (report.evicted > 0)
          this.#o.log.info(
            { evicted: report.evicted, bytesFreed: report.bytesFreed, eligible: report.eligible },
            'janitor evicted files',
          )
      }
      return report
    })
    this.#chain = next.catch(() => {})
    return next
  }

  /** A pass soon (after a replication pass); requests made while one waits are one pass. */
  request(): void {
    if (this.#pending || this.#closed) return
    this.#pending = true
    void this.#chain.then(() => {
      this.#pending = false
      if (this.#closed) return
      return this.run().catch((err) => this.#failed(err))
    })
  }

  #failed(err: unknown): void {
    this.counters.failures++
    this.#o.log.error({ err: (err as Error).message }, 'janitor pass failed')
  }

  /** Runs a pass every `[cache] interval`, the first one interval from now. */
  start(): void {
    const arm = (): void => {
      this.#timer = setLongTimeout(() => {
        if (this.#closed) return
        this.run()
          .catch((err) => this.#failed(err))
          .finally(() => {
            if (!this.#closed) arm()
          })
      }, this.#o.cache.intervalMs)
    }
    arm()
  }

  async close(): Promise<void> {
    this.#closed = true
    this.#timer?.clear()
    await this.#chain
  }
}
