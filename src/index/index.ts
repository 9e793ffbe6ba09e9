/**
 * The index room: per mirror, what is known of each path (CID, stat, state) and of each CID (the paths
 * holding it), the scans that built it, and the incremental scanner. One typed API over `level`;
 * only this room knows the keys (see store.ts for the schema).
 */
import { type Database, readRange } from '../db.ts'
import { emitScanCommitted } from './commits.ts'
import { ScanInProgressError } from './errors.ts'
import { isAncestor, keyOf, pathOf } from './keys.ts'
import { exclusive, LocalStates } from './local.ts'
import { type PathRecord, type ScanSummary, toPathRecord } from './records.ts'
import { runScan, type ScanOptions } from './scan.ts'
import { type MirrorState, stateOf } from './state.ts'
import { type MirrorInfo, mirrorsLevel } from './store.ts'
import {
  type PastVersion,
  type VersionRange,
  versionsLeft,
  versionsOfCid,
  versionsOfKey,
} from './versions.ts'

export { BlockReader, blockMapSince, type MapProgress, type MapSummary, mapBlocks } from './blocks.ts'
export {
  checkEntryName,
  checkMirrorName,
  checkRelPath,
  MAX_MIRROR_NAME,
  MAX_NAME_BYTES,
  MAX_PATH_BYTES,
} from './checks.ts'
export { onScanCommitted, type ScanCommitListener } from './commits.ts'
export {
  type CopyCount,
  type CopyKind,
  type CopyRecord,
  type CopyStatus,
  CopyStore,
  countCopies,
} from './copies.ts'
export * from './errors.ts'
export {
  type EvictedRecord,
  type EvictItem,
  type EvictOutcome,
  type EvictRefusal,
  type LocalEntry,
  type LocalState,
  type LocalStateName,
  LocalStates,
  type PlacedStat,
} from './local.ts'
export {
  type ChildPage,
  type CidPath,
  type CidPaths,
  type IndexReader,
  type MirrorEntry,
  type MirrorSummary,
  openIndexReader,
  PAGE_LIMITS,
  type RecordPage,
  type ScanPage,
  type StateCounts,
} from './reader.ts'
export type { PathRecord, PathState, ScanProgress, ScanSummary } from './records.ts'
export type { ScanOptions } from './scan.ts'
export type { PastVersion, VersionRange } from './versions.ts'

export interface MirrorIndex {
  readonly mirror: string
  readonly root: string
  /**
   * Walks the mirror tree and brings the index up to date: new and changed files are hashed, deleted
   * ones recorded, evicted ones kept. Atomic: until it resolves, readers see the previous index.
   */
  scan(opts?: ScanOptions): Promise<ScanSummary>
  /** The record of a path relative to the mirror root ('' or '.' for the root directory). */
  get(relPath: string): Promise<PathRecord | undefined>
  /** Paths (relative, `/`-separated) whose present or evicted record holds `cid`. */
  pathsOf(cid: string): Promise<string[]>
  lastScan(): Promise<ScanSummary | undefined>
  /** Committed scans, oldest first (newest first with `reverse`). */
  scans(opts?: { reverse?: boolean }): AsyncIterable<ScanSummary>
  /**
   * Committed records in path order (depth-first, names in byte order), deleted ones left out unless
   * asked for; `under` limits them to one subtree.
   */
  records(opts?: { deleted?: boolean; under?: string }): AsyncIterable<PathRecord>
  /**
   * Past versions (versions.ts): the files and symlinks that left the tree, each with the scans whose
   * trees held it. `range` picks those that left in scans after `after` (exclusive) up to `upTo`
   * (inclusive), default all; in scan order, then path order.
   */
  versions(range?: VersionRange): AsyncIterable<PastVersion>
  /** Past versions of one path, oldest first (its current record is `get`). */
  versionsOf(relPath: string): Promise<PastVersion[]>
  /** Past versions whose content is `cid`, by path, then oldest first (current holders: `pathsOf`). */
  versionsByCid(cid: string): Promise<PastVersion[]>
  /**
   * The file or symlink at `relPath` in the tree of committed scan `scan`: its current record when that
   * content was already there, else the past version that was; undefined when the path held neither
   * then (a directory, or nothing). A `PastVersion` has `leftScan`; a current record does not.
   */
  recordAt(relPath: string, scan: number): Promise<PathRecord | PastVersion | undefined>
  /**
   * Whether files' bytes are on this disk: evictions (recorded before the unlink), fetched-back files
   * marked present again, the evicted paths (the exclude list), a path's local state (local.ts).
   */
  readonly local: LocalStates
}

/** Normalizes a relative path: no leading `./` or `/`, no trailing `/`, '' for the root. */
export function normalizeRelPath(rel: string): string {
  const parts = rel.split('/').filter((p) => p !== '' && p !== '.')
  return parts.join('/')
}

class LevelMirrorIndex implements MirrorIndex {
  readonly mirror: string
  readonly root: string
  readonly #state: MirrorState
  readonly local: LocalStates

  constructor(state: MirrorState, root: string) {
    this.mirror = state.store.mirror
    this.root = root
    this.#state = state
    this.local = new LocalStates(state)
  }

  async scan(opts?: ScanOptions): Promise<ScanSummary> {
    const state = this.#state
    if (state.scanning) throw new ScanInProgressError(this.mirror)
    state.scanning = true
    let summary: ScanSummary
    try {
      summary = await exclusive(state, () => runScan(state.store, this.root, opts))
    } finally {
      state.scanning = false
    }
    emitScanCommitted(state.db, summary)
    return summary
  }

  async get(relPath: string): Promise<PathRecord | undefined> {
    const path = normalizeRelPath(relPath)
    const r = await this.#state.store.getRecord(keyOf(path))
    return r && toPathRecord(path, r)
  }

  pathsOf(cid: string): Promise<string[]> {
    return this.#state.store.pathsOf(cid)
  }

  lastScan(): Promise<ScanSummary | undefined> {
    return this.#state.store.lastScan()
  }

  scans(opts?: { reverse?: boolean }): AsyncIterable<ScanSummary> {
    return this.#state.store.scanHistory(opts)
  }

  versions(range?: VersionRange): AsyncIterable<PastVersion> {
    return versionsLeft(this.#state.store, range)
  }

  versionsOf(relPath: string): Promise<PastVersion[]> {
    return versionsOfKey(this.#state.store, keyOf(normalizeRelPath(relPath)))
  }

  versionsByCid(cid: string): Promise<PastVersion[]> {
    return versionsOfCid(this.#state.store, cid)
  }

  async recordAt(relPath: string, scan: number): Promise<PathRecord | PastVersion | undefined> {
    const path = normalizeRelPath(relPath)
    const store = this.#state.store
    const r = await store.getRecord(keyOf(path))
    if (r && r.kind !== 'dir' && r.state !== 'deleted' && (r.since ?? r.scan) <= scan)
      return toPathRecord(path, r)
    const past = await this.versionsOf(path)
    return past.find((v) => v.firstScan <= scan && scan <= v.lastScan)
  }

  async *records(opts: { deleted?: boolean; under?: string } = {}): AsyncGenerator<PathRecord> {
    await this.#state.store.ready()
    const under = opts.under === undefined ? '' : keyOf(normalizeRelPath(opts.under))
    const it = this.#state.store.readPaths()
    try {
      for (;;) {
        const entries = await it.nextv(1000)
        if (entries.length === 0) return
        for (const [key, r] of entries) {
          if (under !== '' && key !== under && !isAncestor(under, key)) continue
          if (!this.#state.store.isCommitted(r) || (r.state === 'deleted' && !opts.deleted)) continue
          yield toPathRecord(pathOf(key), r)
        }
      }
    } finally {
      await it.close()
    }
  }
}

/**
 * The index of mirror `mirror` (tree at `root`) in `db`. Every index of one database and mirror in a
 * process shares its store and its scan lock: scans of one mirror never overlap, and a commit made
 * through one is seen through all.
 */
export function openMirrorIndex(db: Database, mirror: string, root: string): MirrorIndex {
  return new LevelMirrorIndex(stateOf(db, mirror), root)
}

/** Mirrors with an index in `db`, with the root each was last scanned at. */
export async function listMirrors(db: Database): Promise<{ mirror: string; root: string }[]> {
  return (await readRange(mirrorsLevel(db))).map(([mirror, info]) => ({
    mirror,
    root: (info as MirrorInfo).root,
  }))
}
