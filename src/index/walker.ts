import { Worker } from 'node:worker_threads'
import { UnreadablePathError } from './errors.ts'
import { utf8Order } from './keys.ts'
import { STAT_CACHE_LAYOUT, type WalkPart } from './statcache.ts'
import {
  BATCH,
  Kind,
  NUMS_PER_ENTRY,
  REPLAY,
  type WalkCounts,
  type WalkerData,
  type WalkMessage,
  type WalkPartConfig,
} from './walk-protocol.ts'
import { walkerMain } from './walk-worker.ts'

export interface WalkBatch {
  keys: string[]
  nums: Float64Array
}

/**
 * The walker thread's program: its function's own text, run without a module loader, given the name
 * order's (keys.ts `utf8Order`, self-contained too).
 */
const WORKER_SOURCE = `(${walkerMain.toString()})(${utf8Order.toString()})`

export interface WalkerOptions {
  /** Walker threads (the walk is split into this many parts when the stat cache allows). */
  threads?: number
  /** Where to write the stat cache of this walk (statcache.ts `StatCacheFiles.temp`). */
  write?: string
  maxBatches?: number
}

interface Thread {
  worker: Worker
  queue: WalkMessage[]
  /** Set when the thread's part matched its run of the stat cache. */
  identical: WalkCounts | undefined
  replayed: boolean
  /** Something other than `identical` came first: this part differs. */
  differs: boolean
  failure: Error | undefined
  exited: boolean
}

/**
 * The main thread's end of the walker threads (one per part of the walk, see walk-worker.ts).
 * `settle()` tells whether every part matched the stat cache; otherwise `next()` yields batches in key
 * order (each thread's in turn), then null. At most `maxBatches` batches per thread wait unconsumed;
 * a walker sleeps until the scanner catches up.
 */
export class Walker {
  readonly #threads: Thread[] = []
  readonly #ctl: Int32Array
  readonly #parts: number
  #current = 0
  #merging = false
  #wake: (() => void) | undefined
  #cache: Promise<boolean>
  #cacheResult: ((v: boolean) => void) | undefined

  constructor(root: string, opts: WalkerOptions = {}) {
    const n = Math.max(1, opts.threads ?? 1)
    this.#parts = n
    const ctl = new SharedArrayBuffer(4 * (2 * n + 1))
    const stats = new SharedArrayBuffer(8 * 4 * n)
    this.#ctl = new Int32Array(ctl)
    this.#cache = new Promise<boolean>((resolve) => {
      this.#cacheResult = resolve
    })
    if (opts.write === undefined) this.#settleCache(false)
    for (let i = 0; i < n; i++) {
      const data: WalkerData = {
        root,
        index: i,
        parts: n,
        ctl,
        stats,
        maxBatches: opts.maxBatches ?? 8,
        batch: BATCH,
        kind: Kind,
        numsPerEntry: NUMS_PER_ENTRY,
        replay: REPLAY,
        layout: STAT_CACHE_LAYOUT,
      }
      if (opts.write !== undefined) data.write = opts.write
      const worker = new Worker(WORKER_SOURCE, {
        eval: true,
        workerData: data,
        // A small young generation: the walker's garbage is short-lived, and each MiB here is RSS.
        resourceLimits: { maxYoungGenerationSizeMb: 4 },
      })
      const t: Thread = {
        worker,
        queue: [],
        identical: undefined,
        replayed: false,
        differs: false,
        failure: undefined,
        exited: false,
      }
      worker.on('message', (m: WalkMessage) => {
        if (m.type === 'identical') {
          t.identical = m.counts
          if (this.#merging) this.#replay(t)
        } else if (m.type === 'cache') {
          this.#settleCache(m.written)
        } else {
          t.differs = true
          t.queue.push(m)
        }
        this.#notify()
      })
      worker.on('error', (err) => {
        t.failure = err
        this.#notify()
      })
      worker.on('exit', () => {
        t.exited = true
        if (i === 0) this.#settleCache(false)
        this.#notify()
      })
      this.#threads.push(t)
    }
  }

  /**
   * Gives the threads their parts: with a stat cache, its parts (statcache.ts `splitStatCache`), one
   * per thread (threads beyond them have none); without, thread 0 walks everything, `listed` when
   * nothing is stored to compare with (walk-protocol.ts `WalkPartConfig`).
   */
  start(compare?: { sab: SharedArrayBuffer; parts: WalkPart[] }, opts: { listed?: boolean } = {}): void {
    this.#threads.forEach((t, i) => {
      let cfg: WalkPartConfig = i === 0 ? (opts.listed ? { listed: true } : {}) : { skip: true }
      const part = compare?.parts[i]
      if (compare) {
        cfg = part ? { compare: { sab: compare.sab, start: part.start, end: part.end } } : { skip: true }
        if (part?.lo !== undefined) cfg.lo = part.lo
        if (part?.hi !== undefined) cfg.hi = part.hi
      }
      t.worker.postMessage(cfg)
    })
  }

  #settleCache(v: boolean): void {
    const r = this.#cacheResult
    this.#cacheResult = undefined
    r?.(v)
  }

  #notify(): void {
    const w = this.#wake
    this.#wake = undefined
    w?.()
  }

  #sleep(): Promise<void> {
    return new Promise<void>((resolve) => {
      this.#wake = resolve
    })
  }

  #replay(t: Thread): void {
    if (t.replayed) return
    t.replayed = true
    t.worker.postMessage(REPLAY)
  }

  /** The scan id to tag this walk's stat cache with (the walkers may finish writing it once known). */
  setToken(id: number): void {
    Atomics.store(this.#ctl, 2 * this.#parts, id)
    Atomics.notify(this.#ctl, 2 * this.#parts)
  }

  /**
   * Waits until every part matched the stat cache (their summed counts) or one did not (undefined).
   * In the first case nothing was sent; `next()` would have the threads send everything after all.
   */
  async settle(): Promise<WalkCounts | undefined> {
    for (;;) {
      let all = true
      for (const t of this.#threads) {
        if (t.differs || t.failure || (t.exited && !t.identical)) return undefined
        if (!t.identical) all = false
      }
      if (all) {
        const c: WalkCounts = { files: 0, dirs: 0, bytes: 0 }
        for (const t of this.#threads) {
          c.files += t.identical!.files
          c.dirs += t.identical!.dirs
          c.bytes += t.identical!.bytes
        }
        return c
      }
      await this.#sleep()
    }
  }

  async next(): Promise<WalkBatch | null> {
    if (!this.#merging) {
      this.#merging = true
      for (const t of this.#threads) if (t.identical) this.#replay(t)
    }
    for (;;) {
      const t = this.#threads[this.#current]
      if (!t) return null
      const m = t.queue.shift()
      if (m) {
        if (m.type === 'batch') {
          const credits = this.#ctl
          Atomics.sub(credits, this.#current, 1)
          Atomics.notify(credits, this.#current)
          return { keys: m.keys.split('/'), nums: m.nums }
        }
        if (m.type === 'done') {
          this.#current++
          continue
        }
        if (m.type === 'error')
          throw new UnreadablePathError(m.path, m.code === 'EACCES' ? 'permission denied' : m.message)
        continue
      }
      if (t.failure) throw t.failure
      if (t.exited) throw new Error('walker thread exited without finishing')
      await this.#sleep()
    }
  }

  /** After `next()` gave null: whether the stat cache of this walk is complete in the `write` file. */
  cacheWritten(): Promise<boolean> {
    return this.#cache
  }

  async close(): Promise<void> {
    await Promise.all(this.#threads.map((t) => t.worker.terminate()))
  }
}
