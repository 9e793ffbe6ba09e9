/** The index's side of the merge: the stored path records in key order, the next batch read ahead. */
import type { StoredRecord } from '../records.ts'
import type { RawReader } from '../store.ts'

type Batch = [string, StoredRecord][]

/** Records per read. */
export const READ_BATCH = 1000

export class StoredCursor {
  readonly #reader: RawReader<StoredRecord>
  #batch: Batch | null
  #next: Promise<Batch>
  #i = 0

  /** `first`: the reader's first batch (read before the walk started). */
  constructor(reader: RawReader<StoredRecord>, first: Batch) {
    this.#reader = reader
    this.#batch = first.length === 0 ? null : first
    this.#next = this.#batch ? reader.nextv(READ_BATCH) : Promise.resolve([])
  }

  /** Every record of the current batch was taken and there may be more: call `nextBatch()`. */
  get batchUsed(): boolean {
    return this.#batch !== null && this.#i === this.#batch.length
  }

  async nextBatch(): Promise<void> {
    const b = await this.#next
    this.#i = 0
    if (b.length === 0) this.#batch = null
    else {
      this.#batch = b
      this.#next = this.#reader.nextv(READ_BATCH)
    }
  }

  /** The current record's key; undefined at the end of the index. */
  get key(): string | undefined {
    return this.#batch?.[this.#i]?.[0]
  }

  /** The current record; steps past it. */
  take(): StoredRecord {
    return this.#batch![this.#i++]![1]
  }
}
