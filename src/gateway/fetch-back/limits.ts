/**
 * Admission of network fetches: at most `maxFetches` at once, and at most `maxBytes` of files being
 * fetched at once (their temp files and what the sources stream). A file larger than `maxBytes` still
 * goes, alone. Waiters are served in arrival order, so a large file is not starved by small ones.
 */
export interface FetchLimitsOptions {
  maxFetches: number
  maxBytes: number
}

interface Waiter {
  bytes: number
  admit: () => void
}

export class FetchLimits {
  readonly #o: FetchLimitsOptions
  #running = 0
  #bytes = 0
  readonly #queue: Waiter[] = []

  constructor(opts: FetchLimitsOptions) {
    this.#o = opts
  }

  get running(): number {
    return this.#running
  }
  get bytesInFlight(): number {
    return this.#bytes
  }
  get queued(): number {
    return this.#queue.length
  }

  /** Resolves to a release function once the fetch of `bytes` may start. */
  acquire(bytes: number, signal?: AbortSignal): Promise<() => void> {
    return new Promise((resolve, reject) => {
      const w: Waiter = {
        bytes,
        admit: () => {
          signal?.removeEventListener('abort', onAbort)
          this.#running++
          this.#bytes += bytes
          let released = false
          resolve(() => {
            if (released) return
            released = true
            this.#running--
            this.#bytes -= bytes
            this.#pump()
          })
        },
      }
      const onAbort = () => {
        const i = this.#queue.indexOf(w)
        if (i >= 0) this.#queue.splice(i, 1)
        reject(signal!.reason)
      }
      if (signal?.aborted) return reject(signal.reason)
      signal?.addEventListener('abort', onAbort, { once: true })
      this.#queue.push(w)
      this.#pump()
    })
  }

  #fits(bytes: number): boolean {
    if (this.#running >= this.#o.maxFetches) return false
    return this.#running === 0 || this.#bytes + bytes <= this.#o.maxBytes
  }

  #pump(): void {
    while (this.#queue.length > 0 && this.#fits(this.#queue[0]!.bytes)) this.#queue.shift()!.admit()
  }
}
