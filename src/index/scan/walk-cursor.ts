/** The walk's side of the merge: the walker's entries in key order, a batch at a time. */
import { type Kind, NUMS_PER_ENTRY } from '../walk-protocol.ts'
import type { WalkBatch, Walker } from '../walker.ts'
import type { Entry } from './entry.ts'

export class WalkCursor {
  readonly #walker: Walker
  #batch: WalkBatch | null
  #i = 0

  private constructor(walker: Walker, first: WalkBatch | null) {
    this.#walker = walker
    this.#batch = first
  }

  /** A cursor on the walk's first entry (waits for the first batch). */
  static async open(walker: Walker): Promise<WalkCursor> {
    return new WalkCursor(walker, await walker.next())
  }

  /** Every entry of the current batch was taken and the walk may have more: call `nextBatch()`. */
  get batchUsed(): boolean {
    return this.#batch !== null && this.#i === this.#batch.keys.length
  }

  /** Entries in the current batch. */
  get batchLength(): number {
    return this.#batch?.keys.length ?? 0
  }

  async nextBatch(): Promise<void> {
    this.#batch = await this.#walker.next()
    this.#i = 0
  }

  /** The current entry's key; undefined at the end of the walk. */
  get key(): string | undefined {
    return this.#batch?.keys[this.#i]
  }

  /** Copies the current entry's kind and stat into `e` and steps past it. */
  take(e: Entry): void {
    const nums = this.#batch!.nums
    const o = this.#i * NUMS_PER_ENTRY
    e.kind = nums[o] as Kind
    e.size = nums[o + 1]!
    e.mtimeMs = nums[o + 2]!
    e.ctimeMs = nums[o + 3]!
    e.ino = nums[o + 4]!
    this.#i++
  }
}
