/**
 * What a scan writes, and where: the half of the crash-safety promise (store.ts) that a scan keeps.
 * A path with no committed record gets its record directly, tagged with this scan's id, which reads as
 * absent until the scan commits. Every change to a committed record (a new version, a deletion) goes
 * to the journal, which only the commit applies. So a scan killed at any point leaves the committed
 * index as it was, plus hints for the next scan.
 *
 * Writes are raw operations on the root database (store.ts `RawWriter`), sent in batches of
 * `FLUSH_OPS` or every `FLUSH_MS`; one batch is written while the next fills.
 */
import type { EntryKind } from '../../cid/index.ts'
import { pathOf } from '../keys.ts'
import { encodeRecord, type StoredRecord } from '../records.ts'
import { cidKey, encodeJournal, type MirrorStore, type RawWriter } from '../store.ts'
import { leavingVersion } from '../versions.ts'
import type { Entry } from './entry.ts'

const FLUSH_OPS = 4096
const FLUSH_MS = 1000

export class ScanWrites {
  readonly #id: number
  readonly #idText: string
  readonly #startedMs: number
  readonly #out: RawWriter
  readonly #pPrefix: string
  readonly #cPrefix: string
  readonly #jPrefix: string
  #lastFlush = Date.now()

  constructor(store: MirrorStore, id: number, startedMs: number) {
    this.#id = id
    this.#idText = String(id)
    this.#startedMs = startedMs
    this.#out = store.rawWriter()
    this.#pPrefix = store.pPrefix
    this.#cPrefix = store.cPrefix
    this.#jPrefix = store.jPrefix
  }

  /** The record of what is on disk at the entry now, as this scan saw it. */
  newRecord(e: Entry, kind: EntryKind, cid: string, tsize: number, size: number): StoredRecord {
    return {
      kind,
      cid,
      tsize,
      size,
      mtimeMs: e.mtimeMs,
      ctimeMs: e.ctimeMs,
      ino: e.ino,
      firstSeen: e.committed?.firstSeen ?? e.leftover?.firstSeen ?? this.#startedMs,
      lastSynced: this.#startedMs,
      state: 'present',
      scan: this.#id,
    }
  }

  /**
   * Records `rec` at the entry: in the journal when a committed record is there, else directly (with
   * its per-CID entry, replacing the leftover's).
   */
  record(e: Entry, rec: StoredRecord): void {
    const committed = e.committed
    if (committed) {
      const old = committed.state === 'deleted' ? null : committed.cid
      this.#out.put(this.#jPrefix + e.key, encodeJournal(this.#id, old, rec, leavingVersion(committed, rec)))
      return
    }
    const path = e.path ?? pathOf(e.key)
    this.#out.put(this.#pPrefix + e.key, encodeRecord(rec))
    if (e.leftover && e.leftover.cid !== rec.cid) this.#out.del(this.#cPrefix + cidKey(e.leftover.cid, path))
    this.#out.put(this.#cPrefix + cidKey(rec.cid, path), this.#idText)
  }

  /** Journals the committed record `committed` at the entry as deleted. */
  recordDeleted(e: Entry, committed: StoredRecord): void {
    const rec: StoredRecord = { ...committed, state: 'deleted', scan: this.#id }
    this.#out.put(
      this.#jPrefix + e.key,
      encodeJournal(this.#id, committed.cid, rec, leavingVersion(committed, rec)),
    )
  }

  /** Removes the entry's leftover record (uncommitted, so no reader sees it) and its per-CID entry. */
  dropLeftover(e: Entry): void {
    this.#out.del(this.#pPrefix + e.key)
    this.#out.del(this.#cPrefix + cidKey(e.leftover!.cid, pathOf(e.key)))
  }

  /**
   * Sends the buffered writes when there are enough of them or the last send is old; with `force`,
   * sends whatever is buffered and waits until everything sent has landed.
   */
  async flush(force: boolean): Promise<void> {
    const out = this.#out
    if (out.length > 0 && (force || out.length >= FLUSH_OPS || Date.now() - this.#lastFlush >= FLUSH_MS)) {
      this.#lastFlush = Date.now()
      await out.send()
    }
    if (force) await out.settle()
  }
}
