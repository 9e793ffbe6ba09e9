/**
 * The index room: per mirror, what is known of each path (CID, stat, state) and of each CID (the paths
 * holding it), the scans that built it, and the incremental scanner. One typed API over `level`;
 * only this room knows the keys (see store.ts for the schema).
 */
import { type Database, readRange } from '../db.ts'
import { InvalidMirrorNameError, ScanInProgressError } from './errors.ts'
import { keyOf } from './keys.ts'
import { type PathRecord, type ScanSummary, toPathRecord } from './records.ts'
import { runScan, type ScanOptions } from './scan.ts'
import { type MirrorInfo, MirrorStore, mirrorsLevel } from './store.ts'

export * from './errors.ts'
export type { PathRecord, PathState, ScanProgress, ScanSummary } from './records.ts'
export type { ScanOptions } from './scan.ts'

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
}

/** Normalizes a relative path: no leading `./` or `/`, no trailing `/`, '' for the root. */
export function normalizeRelPath(rel: string): string {
  const parts = rel.split('/').filter((p) => p !== '' && p !== '.')
  return parts.join('/')
}

class LevelMirrorIndex implements MirrorIndex {
  readonly mirror: string
  readonly root: string
  readonly #store: MirrorStore
  #scanning = false

  constructor(db: Database, mirror: string, root: string) {
    this.mirror = mirror
    this.root = root
    this.#store = new MirrorStore(db, mirror)
  }

  async scan(opts?: ScanOptions): Promise<ScanSummary> {
    if (this.#scanning) throw new ScanInProgressError(this.mirror)
    this.#scanning = true
    try {
      return await runScan(this.#store, this.root, opts)
    } finally {
      this.#scanning = false
    }
  }

  async get(relPath: string): Promise<PathRecord | undefined> {
    const path = normalizeRelPath(relPath)
    const r = await this.#store.getRecord(keyOf(path))
    return r && toPathRecord(path, r)
  }

  pathsOf(cid: string): Promise<string[]> {
    return this.#store.pathsOf(cid)
  }

  lastScan(): Promise<ScanSummary | undefined> {
    return this.#store.lastScan()
  }

  scans(opts?: { reverse?: boolean }): AsyncIterable<ScanSummary> {
    return this.#store.scanHistory(opts)
  }
}

const open = new WeakMap<Database, Map<string, LevelMirrorIndex>>()

/**
 * The index of mirror `mirror` (tree at `root`) in `db`. One instance per database and mirror in a
 * process, so scans of one mirror never overlap.
 */
export function openMirrorIndex(db: Database, mirror: string, root: string): MirrorIndex {
  if (mirror.length === 0 || mirror.length > 100) throw new InvalidMirrorNameError(mirror)
  let byName = open.get(db)
  if (!byName) {
    byName = new Map()
    open.set(db, byName)
  }
  const found = byName.get(mirror)
  if (found && found.root === root) return found
  const idx = new LevelMirrorIndex(db, mirror, root)
  byName.set(mirror, idx)
  return idx
}

/** Mirrors with an index in `db`, with the root each was last scanned at. */
export async function listMirrors(db: Database): Promise<{ mirror: string; root: string }[]> {
  return (await readRange(mirrorsLevel(db))).map(([mirror, info]) => ({
    mirror,
    root: (info as MirrorInfo).root,
  }))
}
