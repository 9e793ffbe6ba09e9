import type { RecentRequest } from './status/index.ts'

/** The last `size` requests the gateway answered, for the status page; a fixed ring, newest first out. */
export class RecentRequests {
  readonly #ring: (RecentRequest | undefined)[]
  #next = 0

  constructor(size = 100) {
    this.#ring = new Array(size)
  }

  push(r: RecentRequest): void {
    this.#ring[this.#next] = r
    this.#next = (this.#next + 1) % this.#ring.length
  }

  list(): RecentRequest[] {
    const out: RecentRequest[] = []
    for (let i = 1; i <= this.#ring.length; i++) {
      const r = this.#ring[(this.#next - i + this.#ring.length) % this.#ring.length]
      if (r === undefined) break
      out.push(r)
    }
    return out
  }
}
