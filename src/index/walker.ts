import { Worker } from 'node:worker_threads'
import { UnreadablePathError } from './errors.ts'
import { BATCH, type WalkCounts, type WalkerData, type WalkMessage } from './walk-protocol.ts'
import { walkerMain } from './walk-worker.ts'

export interface WalkBatch {
  keys: string[]
  nums: Float64Array
}

/** The walker thread's program: its function's own text, run without a module loader. */
const WORKER_SOURCE = `(${walkerMain.toString()})()`

/**
 * The main thread's end of the walker thread: `next()` yields batches in key order, then null.
 * At most `maxBatches` batches wait unconsumed; the walker sleeps until the scanner catches up.
 */
export class Walker {
  readonly #worker: Worker
  readonly #credits: Int32Array
  readonly #queue: WalkMessage[] = []
  #wake: (() => void) | undefined
  #failure: Error | undefined
  #finished = false
  /** Set when the walk matched the stat cache to the end (`next()` then gave null without a batch). */
  identical: WalkCounts | undefined
  /** Set at the end of a plain walk: the stat cache of this walk is complete in `cache.write.file`. */
  cacheWritten = false

  constructor(root: string, cache: Pick<WalkerData, 'compare' | 'write'> = {}, maxBatches = 8) {
    const credits = new SharedArrayBuffer(4)
    this.#credits = new Int32Array(credits)
    const data: WalkerData = { root, credits, maxBatches, batch: BATCH, ...cache }
    this.#worker = new Worker(WORKER_SOURCE, {
      eval: true,
      workerData: data,
      // A small young generation: the walker's garbage is short-lived, and each MiB here is RSS.
      resourceLimits: { maxYoungGenerationSizeMb: 4 },
    })
    this.#worker.on('message', (m: WalkMessage) => {
      this.#queue.push(m)
      this.#notify()
    })
    this.#worker.on('error', (err) => {
      this.#failure = err
      this.#notify()
    })
    this.#worker.on('exit', () => {
      this.#finished = true
      this.#notify()
    })
  }

  #notify(): void {
    const w = this.#wake
    this.#wake = undefined
    w?.()
  }

  async next(): Promise<WalkBatch | null> {
    for (;;) {
      const m = this.#queue.shift()
      if (m) {
        if (m.type === 'batch') {
          Atomics.sub(this.#credits, 0, 1)
          Atomics.notify(this.#credits, 0)
          return { keys: m.keys.split('/'), nums: m.nums }
        }
        if (m.type === 'done') {
          this.cacheWritten = m.cacheWritten
          return null
        }
        if (m.type === 'identical') {
          this.identical = m.counts
          return null
        }
        throw new UnreadablePathError(m.path, m.code === 'EACCES' ? 'permission denied' : m.message)
      }
      if (this.#failure) throw this.#failure
      if (this.#finished) throw new Error('walker thread exited without finishing')
      await new Promise<void>((resolve) => {
        this.#wake = resolve
      })
    }
  }

  async close(): Promise<void> {
    await this.#worker.terminate()
  }
}
