/**
 * What the index knows, read-only, across the mirrors of one database: the shape the CLI (`stat`,
 * `audit`), the gateway's status page and the daemon's read API share. `openIndexReader(db)` reads the
 * database of this process; the daemon's read API (src/api) serves the same answers over HTTP, and its
 * client implements this same interface, so a command prints the same with or without a daemon.
 *
 * Every type here is plain JSON, sent as is by the read API. Fields are added, never renamed.
 */
import { type Database, readKeys, readRange } from '../db.ts'
import { checkEntryName, checkMirrorName, checkRelPath } from './checks.ts'
import { MirrorNotIndexedError } from './errors.ts'
import { keyOf, pathOf } from './keys.ts'
import { type PathRecord, type ScanSummary, toPathRecord } from './records.ts'
import { type StateCounts, stateOf } from './state.ts'
import { type MirrorInfo, mirrorsLevel } from './store.ts'

export type { StateCounts } from './state.ts'

/** One indexed mirror, from its last committed scan. */
export interface MirrorEntry {
  mirror: string
  /** The tree its committed index describes (where it was last indexed, before a first commit). */
  root: string
  /** Root CID of the last committed scan; null before the first scan commits. */
  rootCid: string | null
  /** Present files and symlinks, and their bytes, as of the last committed scan. */
  files: number
  bytes: number
  /** Present directories, the root included. */
  dirs: number
  lastScan: ScanSummary | null
}

/** A mirror's summary: its entry, and its records counted by state. */
export interface MirrorSummary extends MirrorEntry {
  /** Every record the index keeps: files and symlinks by state, directories present. */
  states: StateCounts
}

export interface ScanPage {
  mirror: string
  /** Newest first. */
  scans: ScanSummary[]
  /** Pass as `before` for the next page; null after the oldest scan. */
  next: number | null
}

export interface RecordPage {
  mirror: string
  /** In a depth-first walk, each directory's entries sorted by name (UTF-8 bytes). */
  records: PathRecord[]
  /** Pass as `after` for the next page; null after the last record. */
  next: string | null
}

export interface ChildPage {
  mirror: string
  /** The directory listed ('' for the root). */
  dir: string
  /** Its entries' committed records (deleted ones too: check `state`), by name in UTF-8 byte order. */
  records: PathRecord[]
  /** Pass as `after` for the next page (an entry name); null after the last entry. */
  next: string | null
}

export interface CidPath {
  mirror: string
  path: string
}

/** The paths holding a CID (its copies elsewhere come with the replicator, issue 10). */
export interface CidPaths {
  /** The CID as the index stores it: CIDv1, base32. */
  cid: string
  /** Present and evicted records holding the CID, by mirror name then path. */
  paths: CidPath[]
  /** `mirror/path` of the last one, to pass as `after` for the next page; null when complete. */
  next: string | null
}

export const PAGE_LIMITS = {
  scans: { default: 100, max: 1000 },
  records: { default: 1000, max: 10_000 },
  children: { default: 1000, max: 10_000 },
  paths: { default: 1000, max: 10_000 },
} as const

export interface IndexReader {
  /** Indexed mirrors, by name. */
  mirrors(): Promise<MirrorEntry[]>
  /** Throws MirrorNotIndexedError. */
  summary(mirror: string): Promise<MirrorSummary>
  /** A path's committed record ('' for the root); undefined when the index has none. */
  record(mirror: string, path: string): Promise<PathRecord | undefined>
  /** Committed records of `under` and below ('' for the whole tree), after path `after`. */
  records(mirror: string, opts?: { under?: string; after?: string; limit?: number }): Promise<RecordPage>
  /** Committed records of the entries of directory `dir` ('' for the root), after entry name `after`. */
  children(mirror: string, dir: string, opts?: { after?: string; limit?: number }): Promise<ChildPage>
  /** Committed scans, newest first, with ids below `before`. */
  scans(mirror: string, opts?: { before?: number; limit?: number }): Promise<ScanPage>
  scan(mirror: string, id: number): Promise<ScanSummary | undefined>
  /** Paths holding `cid` (any CID form; MalformedCidError otherwise), in one mirror or all. */
  pathsOf(cid: string, opts?: { mirror?: string; after?: string; limit?: number }): Promise<CidPaths>
}

function clamp(limit: number | undefined, bounds: { default: number; max: number }): number {
  if (limit === undefined || !Number.isFinite(limit)) return bounds.default
  return Math.max(1, Math.min(bounds.max, Math.floor(limit)))
}

/** The reader over a database this process holds. */
class LocalIndexReader implements IndexReader {
  readonly #db: Database

  constructor(db: Database) {
    this.#db = db
  }

  async #info(mirror: string): Promise<MirrorInfo> {
    checkMirrorName(mirror)
    const info = (await mirrorsLevel(this.#db).get(mirror)) as MirrorInfo | undefined
    if (!info) throw new MirrorNotIndexedError(mirror)
    return info
  }

  async #entry(mirror: string, info: MirrorInfo): Promise<MirrorEntry> {
    const last = (await stateOf(this.#db, mirror).store.lastScan()) ?? null
    return {
      mirror,
      root: last?.root ?? info.root,
      rootCid: last?.rootCid ?? null,
      files: last?.files ?? 0,
      bytes: last?.bytes ?? 0,
      dirs: last?.dirs ?? 0,
      lastScan: last,
    }
  }

  async mirrors(): Promise<MirrorEntry[]> {
    const all = await readRange(mirrorsLevel(this.#db))
    return Promise.all(all.map(([mirror, info]) => this.#entry(mirror, info)))
  }

  async summary(mirror: string): Promise<MirrorSummary> {
    const entry = await this.#entry(mirror, await this.#info(mirror))
    return { ...entry, states: await this.#counts(mirror) }
  }

  /** Counted once per committed scan, shared by concurrent callers. */
  #counts(mirror: string): Promise<StateCounts> {
    const state = stateOf(this.#db, mirror)
    const last = state.store.last
    if (state.counts?.last !== last) {
      const value = state.store.countStates()
      state.counts = { last, value }
      value.catch(() => {
        if (state.counts?.value === value) state.counts = undefined
      })
    }
    return state.counts!.value
  }

  async record(mirror: string, path: string): Promise<PathRecord | undefined> {
    const rel = checkRelPath(path)
    await this.#info(mirror)
    const r = await stateOf(this.#db, mirror).store.getRecord(keyOf(rel))
    return r && toPathRecord(rel, r)
  }

  async records(
    mirror: string,
    opts: { under?: string; after?: string; limit?: number } = {},
  ): Promise<RecordPage> {
    const under = checkRelPath(opts.under ?? '')
    const after = opts.after === undefined ? undefined : checkRelPath(opts.after)
    await this.#info(mirror)
    const limit = clamp(opts.limit, PAGE_LIMITS.records)
    const page = await stateOf(this.#db, mirror).store.recordsPage(
      keyOf(under),
      after === undefined ? undefined : keyOf(after),
      limit,
    )
    const records = page.records.map(([key, r]) => toPathRecord(pathOf(key), r))
    return { mirror, records, next: page.more ? (records[records.length - 1]?.path ?? null) : null }
  }

  async children(
    mirror: string,
    dir: string,
    opts: { after?: string; limit?: number } = {},
  ): Promise<ChildPage> {
    const rel = checkRelPath(dir)
    const after = opts.after === undefined ? undefined : checkEntryName(opts.after)
    await this.#info(mirror)
    const limit = clamp(opts.limit, PAGE_LIMITS.children)
    const page = await stateOf(this.#db, mirror).store.childrenPage(keyOf(rel), after, limit)
    const records = page.records.map(([key, r]) => toPathRecord(pathOf(key), r))
    const last = records[records.length - 1]
    return {
      mirror,
      dir: rel,
      records,
      next: page.more && last ? last.path.slice(last.path.lastIndexOf('/') + 1) : null,
    }
  }

  async scans(mirror: string, opts: { before?: number; limit?: number } = {}): Promise<ScanPage> {
    await this.#info(mirror)
    const limit = clamp(opts.limit, PAGE_LIMITS.scans)
    const scans = await stateOf(this.#db, mirror).store.scansBefore(opts.before, limit)
    const oldest = scans[scans.length - 1]
    return { mirror, scans, next: scans.length === limit && oldest && oldest.id > 1 ? oldest.id : null }
  }

  async scan(mirror: string, id: number): Promise<ScanSummary | undefined> {
    await this.#info(mirror)
    return stateOf(this.#db, mirror).store.scanById(id)
  }

  async pathsOf(
    cidText: string,
    opts: { mirror?: string; after?: string; limit?: number } = {},
  ): Promise<CidPaths> {
    const { canonicalCid } = await import('../cid/index.ts')
    const cid = canonicalCid(cidText)
    let afterMirror: string | undefined
    let afterPath: string | undefined
    if (opts.after !== undefined) {
      const slash = opts.after.indexOf('/')
      afterMirror = checkMirrorName(slash < 0 ? opts.after : opts.after.slice(0, slash))
      afterPath = slash < 0 ? undefined : checkRelPath(opts.after.slice(slash + 1))
    }
    let mirrors: string[]
    if (opts.mirror !== undefined) {
      await this.#info(opts.mirror)
      mirrors = [opts.mirror]
    } else {
      mirrors = (await readKeys(mirrorsLevel(this.#db))).sort(compareBytes)
    }
    const limit = clamp(opts.limit, PAGE_LIMITS.paths)
    const paths: CidPath[] = []
    for (const mirror of mirrors) {
      if (afterMirror !== undefined && compareBytes(mirror, afterMirror) < 0) continue
      const after = mirror === afterMirror ? afterPath : undefined
      const page = await stateOf(this.#db, mirror).store.pathsOfPage(cid, after, limit - paths.length)
      for (const path of page.paths) paths.push({ mirror, path })
      if (page.more || paths.length === limit) {
        const lastOne = paths[paths.length - 1]!
        // A full page with nothing after it in this mirror may still have more in the next ones.
        return { cid, paths, next: `${lastOne.mirror}/${lastOne.path}` }
      }
    }
    return { cid, paths, next: null }
  }
}

/** Byte order of UTF-8 (LevelDB's), not UTF-16's. */
function compareBytes(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a), Buffer.from(b))
}

/** The index of `db`, read-only, for every mirror in it. */
export function openIndexReader(db: Database): IndexReader {
  return new LocalIndexReader(db)
}
