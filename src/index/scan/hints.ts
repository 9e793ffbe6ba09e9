/**
 * Hints from an interrupted scan: a CID it hashed and left, as an uncommitted record (the entry's
 * `leftover`) or a journal entry, stands for the file still when its kind and stat are unchanged. The
 * journal is read forward, in key order, as keys needing a hash come by.
 */
import type { EntryKind } from '../../cid/index.ts'
import { compareKeys } from '../keys.ts'
import type { StoredRecord } from '../records.ts'
import type { JournalEntry, RawReader } from '../store.ts'
import { type Entry, type Hashed, recordMatches } from './entry.ts'
import { READ_BATCH } from './stored-cursor.ts'

export class Hints {
  /** This scan's id: its own journal entries are no hints. */
  readonly #id: number
  readonly #journal: RawReader<JournalEntry> | undefined
  #batch: [string, JournalEntry][] = []
  #i = 0
  #done: boolean

  /** `journal`: a reader of the journal, when there is one. */
  constructor(id: number, journal: RawReader<JournalEntry> | undefined) {
    this.#id = id
    this.#journal = journal
    this.#done = !journal
  }

  /** The CID an interrupted scan found for this entry of kind `kind`, if it still stands. */
  async for(e: Entry, kind: EntryKind): Promise<Hashed | undefined> {
    let h = e.leftover
    if (!recordMatches(h, kind, e) && !this.#done) h = await this.#journalRecord(e.key)
    if (!recordMatches(h, kind, e)) return undefined
    const out: Hashed = { cid: h.cid, bytes: undefined, tsize: h.tsize, size: h.size, reused: true }
    if (h.target !== undefined) out.target = h.target
    if (h.sha256 !== undefined) out.sha256 = h.sha256
    return out
  }

  /** The record an earlier scan journaled at `key`; skips the entries before it. */
  async #journalRecord(key: string): Promise<StoredRecord | undefined> {
    for (;;) {
      if (this.#i === this.#batch.length) {
        if (this.#done) return undefined
        this.#batch = await this.#journal!.nextv(READ_BATCH)
        this.#i = 0
        if (this.#batch.length === 0) {
          this.#done = true
          return undefined
        }
      }
      const [k, entry] = this.#batch[this.#i]!
      const c = compareKeys(k, key)
      if (c < 0) {
        this.#i++
        continue
      }
      if (c > 0) return undefined
      this.#i++
      return entry.scan !== this.#id ? entry.rec : undefined
    }
  }

  async close(): Promise<void> {
    await this.#journal?.close()
  }
}
