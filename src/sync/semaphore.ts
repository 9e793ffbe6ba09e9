/** A counting semaphore with a FIFO queue: the worker's limit on jobs syncing at once. */
export class Semaphore {
  readonly limit: number
  #used = 0
  #waiters: { grant: () => void }[] = []

  constructor(limit: number) {
    this.limit = Math.max(1, Math.floor(limit))
  }

  get used(): number {
    return this.#used
  }

  /** Resolves with a release function once a slot is free; rejects when `signal` aborts first. */
  acquire(signal?: AbortSignal): Promise<() => void> {
    return new Promise((resolve, reject) => {
      if (signal?.aborted) return reject(signal.reason)
      const release = this.#releaser()
      if (this.#used < this.limit) {
        this.#used++
        return resolve(release)
      }
      const waiter = {
        grant: () => {
          signal?.removeEventListener('abort', onAbort)
          this.#used++
          resolve(release)
        },
      }
      const onAbort = (): void => {
        this.#waiters = this.#waiters.filter((w) => w !== waiter)
        reject(signal?.reason)
      }
      signal?.addEventListener('abort', onAbort, { once: true })
      this.#waiters.push(waiter)
    })
  }

  #releaser(): () => void {
    let done = false
    return () => {
      if (done) return
      done = true
      this.#used--
      this.#waiters.shift()?.grant()
    }
  }
}
