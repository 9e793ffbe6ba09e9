/**
 * What one entry, taken in key order, does to the index: it closes the directories the merge has left,
 * then counts in the summary, links into its directory and writes its record (writes.ts decides
 * where). A file that changed while it was hashed is looked at once more; one that vanished is a
 * deletion.
 */
import { lstatSync } from 'node:fs'
import type { EntryKind } from '../../cid/index.ts'
import { pathOf } from '../keys.ts'
import type { ScanSummary } from '../records.ts'
import type { StatCacheWriter } from '../statcache.ts'
import { Kind } from '../walk-protocol.ts'
import { loadCid, loadedCid } from './cid-lib.ts'
import type { DirStack } from './dir-stack.ts'
import { type Entry, type Hashed, kindName } from './entry.ts'
import type { ScanWrites } from './writes.ts'

export interface ApplyParts {
  root: string
  summary: ScanSummary
  dirs: DirStack
  writes: ScanWrites
  /** The stat cache this thread writes (a first scan), entry by entry as they settle. */
  cacheOut: StatCacheWriter | undefined
  /** Path keys of evicted records the upstream no longer has (local.ts `markGoneUpstream`). */
  gone: ReadonlySet<string>
}

export class Apply {
  readonly #root: string
  readonly #s: ScanSummary
  readonly #dirs: DirStack
  readonly #writes: ScanWrites
  readonly #cacheOut: StatCacheWriter | undefined
  readonly #gone: ReadonlySet<string>
  /** Cleared when an entry is recorded otherwise than the walk saw it: its stat cache is then not kept. */
  cacheTrue = true

  constructor(parts: ApplyParts) {
    this.#root = parts.root
    this.#s = parts.summary
    this.#dirs = parts.dirs
    this.#writes = parts.writes
    this.#cacheOut = parts.cacheOut
    this.#gone = parts.gone
  }

  /** Applies one entry, in key order. */
  async entry(e: Entry): Promise<void> {
    await this.#dirs.closeUntil(e.key)
    if (e.kind === Kind.Absent) return this.gone(e)
    if (e.unchanged) return this.unchanged(e)
    if (e.kind === Kind.Dir) return this.#dir(e)
    const r = e.result ?? (await this.#afterFailure(e))
    if (!r) return this.gone({ ...e, kind: Kind.Absent })
    this.#hashed(e, kindName(e.kind), r)
  }

  /**
   * A file or symlink whose kind and stat equal its committed record: linked as committed, counted,
   * nothing written. Its directory must be open (`closeUntil` done).
   */
  unchanged(e: Entry): void {
    const c = e.committed!
    this.#dirs.top.link(e.key, c.cid, undefined, c.tsize, false)
    this.#s.unchanged++
    this.#s.files++
    if (e.kind === Kind.File) this.#s.bytes += e.size
  }

  /**
   * Nothing on disk at the key: a committed record there becomes deleted, unless it is evicted (and
   * not marked gone upstream: an excluded path's deletion is learnt by the janitor, not the sync).
   */
  gone(e: Entry): void {
    if (e.leftover) this.#writes.dropLeftover(e)
    const c = e.committed
    if (!c) return
    const parent = this.#dirs.parentOf(e.key)
    if (c.state === 'evicted' && !this.#gone.has(e.key)) {
      // Removed on purpose: still part of the mirror and of its directory's CID.
      this.#s.evicted++
      parent?.link(e.key, c.cid, undefined, c.tsize, false)
      return
    }
    if (c.state === 'deleted') return
    if (c.kind !== 'dir') this.#s.deleted++
    if (parent) parent.dirty = true
    this.#writes.recordDeleted(e, c)
  }

  #dir(e: Entry): void {
    this.#s.dirs++
    if (e.leftover && e.leftover.kind !== 'dir') this.#writes.dropLeftover(e)
    // A file or symlink that became a directory is a deletion.
    if (e.committed && e.committed.kind !== 'dir' && e.committed.state !== 'deleted') this.#s.deleted++
    this.#dirs.open(e)
    this.#cacheOut?.add(e.key, Kind.Dir, 0, e.mtimeMs, e.ctimeMs, e.ino)
  }

  /** A file or symlink that was hashed (or hinted): `r`. */
  #hashed(e: Entry, kind: EntryKind, r: Hashed): void {
    const s = this.#s
    const c = e.committed
    if (r.reused) s.reused++
    else {
      s.filesHashed++
      if (kind === 'file') s.bytesHashed += r.size
    }
    s.files++
    if (kind === 'file') s.bytes += e.size
    // Counts are of files and symlinks: a directory that became a file is an addition.
    const wasPresent = c !== undefined && c.state !== 'deleted' && c.kind !== 'dir'
    if (!wasPresent) s.added++
    else if (c.kind !== kind || c.cid !== r.cid) s.changed++
    else s.touched++
    const changed = !wasPresent || c.kind !== kind || c.cid !== r.cid || c.state !== 'present'
    this.#dirs.top.link(e.key, r.cid, r.bytes, r.tsize, changed)
    const rec = this.#writes.newRecord(e, kind, r.cid, r.tsize, kind === 'file' ? e.size : r.size)
    if (r.target !== undefined) rec.target = r.target
    if (r.sha256 !== undefined && kind === 'file') rec.sha256 = r.sha256
    // Same content as before: the path has held this CID since the scan that first wrote it.
    if (wasPresent && c.kind === kind && c.cid === r.cid) rec.since = c.since ?? c.scan
    this.#writes.record(e, rec)
    this.#cacheOut?.add(e.key, e.kind, e.size, e.mtimeMs, e.ctimeMs, e.ino)
  }

  /**
   * The entry's hash failed: a file written to meanwhile is hashed again, once (its new stat taken);
   * one that vanished gives undefined (a deletion); anything else is thrown.
   */
  async #afterFailure(e: Entry): Promise<Hashed | undefined> {
    const err = e.error
    const lib = loadedCid() ?? (await loadCid())
    if (err instanceof lib.FileChangedError) {
      this.cacheTrue = false
      const path = this.#fullPath(e.key)
      const st = lstatSync(path, { throwIfNoEntry: false })
      if (!st?.isFile()) return undefined
      e.size = st.size
      e.mtimeMs = st.mtimeMs
      e.ctimeMs = st.ctimeMs
      e.ino = st.ino
      const f = await lib.cidOfFile(path)
      if (f.size !== e.size) throw err
      return { cid: f.cid.toString(), bytes: f.cid.bytes, tsize: f.tsize, size: f.size, reused: false }
    }
    if (err instanceof lib.PathNotFoundError || (err as NodeJS.ErrnoException)?.code === 'ENOENT') {
      this.cacheTrue = false
      return undefined
    }
    if (err !== undefined) throw err
    throw new Error(`no result for ${pathOf(e.key)}`)
  }

  #fullPath(key: string): string {
    return key === '' ? this.#root : `${this.#root}/${pathOf(key)}`
  }
}
