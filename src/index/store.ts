/**
 * The level schema of the index room. Everything lives under `db.sublevel('index')`:
 *
 *   index/mirrors/<name>                  -> { root, sublevel }            one entry per indexed mirror
 *   index/m.<name>/p/<path key>           -> StoredRecord (encodeRecord)    per path (keys.ts: `/` -> \x00)
 *   index/m.<name>/c/<cid>\x00<path>      -> scan id                        per CID, the paths holding it
 *   index/m.<name>/s/<scan id, 12 digits> -> ScanSummary                    per committed scan
 *   index/m.<name>/j/<path key>           -> JournalEntry (encodeJournal)   changes of a running scan
 *   index/m.<name>/meta/last              -> id of the last committed scan
 *   index/m.<name>/meta/next              -> next scan id to hand out
 *   index/m.<name>/meta/scanning          -> { id, started } while a scan runs (left by a killed one)
 *   index/m.<name>/meta/commit            -> { id, summary }: roll-forward marker while committing
 *   index/m.<name>/meta/statcache         -> token of the valid stat cache file (statcache.ts), if any
 *   index/m.<name>/l/<path key>           -> LocalEntry                     evicted / refetched times (local.ts)
 *   index/m.<name>/g/<path key>           -> epoch ms                       evicted, gone upstream (local.ts)
 *   index/m.<name>/v, vp, vc/...          -> past version                   versions that left the tree (versions.ts)
 *
 * Atomicity: a record under `p` whose `scan` is above `last` is not committed and reads as absent; a scan
 * writes such records directly only for paths that had no committed record (new paths). Every change to
 * a committed record goes to the journal `j` and is applied at commit, after the `commit` marker is
 * written; a process killed during the apply finishes it on the next open. While this process applies
 * a commit, its readers already see the committing scan (its journal entries, and its records), so no
 * changed path reads as absent in between. Uncommitted records and
 * journal entries left by a killed scan are hints: the next scan takes their CID when the file's stat is
 * unchanged, then rewrites or removes them before it commits.
 *
 * The stat cache (statcache.ts) is a file beside the database that lists what the last plain scan walked;
 * it is trusted only while `meta/statcache` holds its token. Every commit that changes path records
 * deletes that key in its final batch, and anything else that changes path records (an eviction) must
 * call `dropStatCache()` in the same breath, so that a stale cache is never believed.
 */
import {
  type Database,
  type KeyRange,
  prefixUpperBound,
  rangePages,
  readKeys,
  readRange,
  readValues,
  sublevelOf,
} from '../db.ts'
import { pathOf, SEP, sublevelName } from './keys.ts'
import type { LocalEntry } from './local.ts'
import { decodeRecord, encodeRecord, type ScanSummary, type StoredRecord } from './records.ts'
import { versionPuts } from './versions.ts'

export interface JournalEntry {
  scan: number
  /** CID of the committed record this replaces, for the per-CID index. */
  old: string | null
  rec: StoredRecord
  /** The committed record this one makes leave the tree (versions.ts), kept as a past version at commit. */
  leaving?: StoredRecord
}

/**
 * A journal entry's stored text: `[scan, old, record(, leaving)]` (records.ts `encodeRecord` for the
 * records). Entries written before `leaving` existed decode without it.
 */
export function encodeJournal(
  scan: number,
  old: string | null,
  rec: StoredRecord,
  leaving?: StoredRecord,
): string {
  const head = `[${scan},${old === null ? 'null' : `"${old}"`},${encodeRecord(rec)}`
  return leaving === undefined ? `${head}]` : `${head},${encodeRecord(leaving)}]`
}

/** A journal entry from its parsed stored JSON (`encodeJournal`'s array). */
export function decodeJournal(v: unknown): JournalEntry {
  const [scan, old, rec, leaving] = v as [number, string | null, unknown, unknown?]
  const e: JournalEntry = { scan, old, rec: decodeRecord(rec) }
  if (leaving !== undefined) e.leaving = decodeRecord(leaving)
  return e
}

export interface MirrorInfo {
  root: string
  sublevel: string
}

interface CommitMarker {
  id: number
  summary: ScanSummary
}

type Json = Record<string, unknown> | number | string | null

/**
 * One sublevel object per database, made once: abstract-level attaches every sublevel to its parent
 * for as long as the parent is open, so a sublevel made per call is never freed (the read API and the
 * gateway call `record()` per request: 9 KB of heap a call, measured, before this).
 */
const indexLevels = new WeakMap<Database, ReturnType<typeof sublevelOf<Json>>>()
const mirrorsLevels = new WeakMap<Database, ReturnType<typeof sublevelOf<MirrorInfo>>>()

export function indexLevel(db: Database) {
  let l = indexLevels.get(db)
  if (!l) {
    l = sublevelOf<Json>(db, 'index')
    indexLevels.set(db, l)
  }
  return l
}

export function mirrorsLevel(db: Database) {
  let l = mirrorsLevels.get(db)
  if (!l) {
    l = sublevelOf<MirrorInfo>(indexLevel(db) as unknown as Database, 'mirrors')
    mirrorsLevels.set(db, l)
  }
  return l
}

export function scanKey(id: number): string {
  return String(id).padStart(12, '0')
}

export function cidKey(cid: string, path: string): string {
  return `${cid}${SEP}${path}`
}

/** Keys and values as given: full keys on the root database, JSON text values. */
const RAW = { keyEncoding: 'utf8', valueEncoding: 'utf8' } as const

/**
 * The parts of a classic-level database that RawWriter uses. `_chainedBatch` and the batch's `_put`,
 * `_del`, `_clear`, `_write` are private API: package.json pins classic-level's exact version, and
 * test/index-rawwriter.test.ts fails if the writer falls back to `batch()` on the database we open.
 */
interface RawBatchDb {
  status: string
  hooks: { prewrite: { noop: boolean } }
  listenerCount(event: string): number
  batch(ops: RawOp[], options: typeof RAW): Promise<void>
  _chainedBatch?: () => NativeBatch
}
/** classic-level's chained batch, driven through its private methods (one native call per operation). */
interface NativeBatch {
  _put(key: string, value: string): void
  _del(key: string): void
  _clear(): void
  _write(options: object): Promise<void>
}
const NO_OPTIONS = Object.freeze({})

/**
 * Buffers writes on full keys (a `xPrefix` + the sublevel's key) with JSON text values and sends them
 * as LevelDB batches, one in flight while the next fills. On classic-level (no prewrite hook, no
 * `write` listener) each operation goes straight into a native write batch, with no object per
 * operation and none of `batch()`'s per-operation cloning and property reads: a cold scan's main
 * thread spent more time there than anywhere else. Two native batches are reused, cleared after each
 * write, so their memory does not wait for the GC. Elsewhere it collects operations for `batch()`.
 */
export class RawWriter {
  readonly #db: RawBatchDb
  readonly #native: boolean
  #cur: NativeBatch | undefined
  #spare: NativeBatch | undefined
  #ops: RawOp[] = []
  #writing: Promise<void> | undefined
  /** Operations buffered and not sent. */
  length = 0

  constructor(db: Database) {
    this.#db = db as unknown as RawBatchDb
    const d = this.#db
    this.#native =
      typeof d._chainedBatch === 'function' && d.hooks.prewrite.noop && d.listenerCount('write') === 0
  }

  /** Whether operations go straight into native write batches (else through the public `batch()`). */
  get native(): boolean {
    return this.#native
  }

  #batch(): NativeBatch {
    this.#cur ??= this.#db._chainedBatch!()
    return this.#cur
  }

  put(key: string, value: string): void {
    this.length++
    if (this.#native) this.#batch()._put(key, value)
    else this.#ops.push({ type: 'put', key, value })
  }

  del(key: string): void {
    this.length++
    if (this.#native) this.#batch()._del(key)
    else this.#ops.push({ type: 'del', key })
  }

  /**
   * Sends what is buffered as one batch once the batch in flight has landed (its failure is thrown
   * here); resolves when it is sent. Operations added meanwhile go into the one sent.
   */
  async send(): Promise<void> {
    if (this.length === 0) return
    await this.settle()
    if (this.length === 0) return
    this.length = 0
    let w: Promise<void>
    if (this.#native) {
      const b = this.#cur!
      this.#cur = this.#spare
      this.#spare = undefined
      if (this.#db.status !== 'open') {
        b._clear()
        this.#spare = b
        throw new Error('Database is not open')
      }
      w = b._write(NO_OPTIONS).finally(() => {
        b._clear()
        this.#spare = b
      })
    } else {
      const ops = this.#ops
      this.#ops = []
      w = this.#db.batch(ops, RAW)
    }
    w.catch(() => {}) // awaited by `settle`; not an unhandled rejection meanwhile
    this.#writing = w
  }

  /** Waits for the batch in flight, if any; throws its failure. */
  async settle(): Promise<void> {
    const w = this.#writing
    if (!w) return
    this.#writing = undefined
    await w
  }

  /** Sends what is buffered and waits until everything sent has landed. */
  async flush(): Promise<void> {
    await this.send()
    await this.settle()
  }
}

export type RawOp = { type: 'put'; key: string; value: string } | { type: 'del'; key: string }

/**
 * Iterates one sublevel's entries through the root database with utf8 keys and values, and strips
 * and parses them itself: the sublevel layer's per-entry decoding costs more than the read.
 */
export class RawReader<V> {
  readonly #it
  readonly #skip: number
  readonly #decode: (v: unknown) => V

  constructor(db: Database, prefix: string, decode: (v: unknown) => V) {
    this.#skip = prefix.length
    this.#decode = decode
    this.#it = db.iterator<string, string>({
      gte: prefix,
      lt: prefixUpperBound(prefix),
      keyEncoding: 'utf8',
      valueEncoding: 'utf8',
    })
  }

  /** Up to `n` entries, [key without prefix, parsed value]; empty at the end. */
  async nextv(n: number): Promise<[string, V][]> {
    const entries = (await this.#it.nextv(n)) as unknown as [string, unknown][]
    const skip = this.#skip
    const decode = this.#decode
    for (const e of entries) {
      e[0] = (e[0] as string).slice(skip)
      e[1] = decode(JSON.parse(e[1] as string))
    }
    return entries as [string, V][]
  }

  close(): Promise<void> {
    return this.#it.close()
  }
}

export class MirrorStore {
  readonly db: Database
  readonly mirror: string
  readonly paths
  readonly cids
  readonly scans
  readonly journal
  readonly meta
  /** Local file states (local.ts): evicted and refetched times; evicted paths gone upstream. */
  readonly local
  readonly gone
  /** Past versions (versions.ts): by the scan they left in, by path, by CID. */
  readonly versions
  readonly versionsByPath
  readonly versionsByCid
  /** Full key prefixes of `p`, `c`, `j`, `l` and `g` on the root database (utf8). */
  readonly pPrefix: string
  readonly cPrefix: string
  readonly jPrefix: string
  readonly lPrefix: string
  readonly gPrefix: string
  /** Id of the last committed scan (0: none). Valid after `ready()`. */
  last = 0
  /** Id of the scan whose journal is being applied (0: none): readers already see its index. */
  #committing = 0
  #ready: Promise<void> | undefined

  constructor(db: Database, mirror: string) {
    this.db = db
    this.mirror = mirror
    const m = sublevelOf<Json>(
      indexLevel(db) as unknown as Database,
      sublevelName(mirror),
    ) as unknown as Database
    /** Values are records.ts `encodeRecord` arrays: read through decodeRecord. */
    this.paths = sublevelOf<unknown>(m, 'p')
    this.cids = sublevelOf<number>(m, 'c')
    this.scans = sublevelOf<ScanSummary>(m, 's')
    /** Values are `encodeJournal` arrays: read through decodeJournal. */
    this.journal = sublevelOf<unknown>(m, 'j')
    this.meta = sublevelOf<Json>(m, 'meta')
    this.local = sublevelOf<LocalEntry>(m, 'l')
    this.gone = sublevelOf<number>(m, 'g')
    this.versions = sublevelOf<unknown>(m, 'v')
    this.versionsByPath = sublevelOf<unknown>(m, 'vp')
    this.versionsByCid = sublevelOf<unknown>(m, 'vc')
    this.pPrefix = this.paths.prefix
    this.cPrefix = this.cids.prefix
    this.jPrefix = this.journal.prefix
    this.lPrefix = this.local.prefix
    this.gPrefix = this.gone.prefix
  }

  /** Loads `last`, finishing a commit a killed process left half done. */
  ready(): Promise<void> {
    this.#ready ??= this.#open()
    return this.#ready
  }

  async #open(): Promise<void> {
    const marker = (await this.meta.get('commit')) as CommitMarker | undefined
    if (marker) await this.applyCommit(marker.id, marker.summary)
    this.last = ((await this.meta.get('last')) as number | undefined) ?? 0
  }

  isCommitted(r: StoredRecord): boolean {
    return r.scan <= this.last
  }

  /**
   * The committed record of a path key. While a commit is applied, the committing scan's index is
   * the one read (its journal entry, else its record), so a changed path never reads as absent.
   */
  async getRecord(key: string): Promise<StoredRecord | undefined> {
    await this.ready()
    if (this.#committing !== 0) {
      const j = await this.journal.get(key)
      if (j !== undefined) {
        const e = decodeJournal(j)
        if (e.scan === this.#committing) return e.rec
      }
    }
    const v = await this.paths.get(key)
    if (v === undefined) return undefined
    const r = decodeRecord(v)
    return this.#visible(r.scan) ? r : undefined
  }

  /**
   * Whether what scan `id` wrote is what readers see: it has committed, or its commit is being
   * applied. Read after the read it judges: `last` is set before `#committing` is cleared.
   */
  #visible(id: number): boolean {
    return id <= this.last || id === this.#committing
  }

  /** Whether readers see what scan `id` wrote (committed, or being applied): see `#visible`. */
  visible(id: number): boolean {
    return this.#visible(id)
  }

  /** Hands out a new scan id and marks the scan as running; returns the previous run left over, if any. */
  async beginScan(started: number): Promise<{ id: number; interrupted: boolean }> {
    await this.ready()
    const next = ((await this.meta.get('next')) as number | undefined) ?? this.last + 1
    const id = Math.max(next, this.last + 1)
    const interrupted = (await this.meta.get('scanning')) !== undefined
    await this.meta.batch([
      { type: 'put', key: 'next', value: id + 1 },
      { type: 'put', key: 'scanning', value: { id, started } },
    ])
    return { id, interrupted }
  }

  async hasJournal(): Promise<boolean> {
    return (await readKeys(this.journal, { limit: 1 })).length > 0
  }

  /**
   * Commit point: writes the marker, applies the journal, records the scan. `keepStatCache`: the scan
   * changed no path record (it found the tree identical to the stat cache), so the cache stays valid.
   */
  async commit(id: number, summary: ScanSummary, opts: { keepStatCache?: boolean } = {}): Promise<void> {
    const marker: CommitMarker = { id, summary }
    await this.meta.put('commit', marker as unknown as Json)
    await this.applyCommit(id, summary, opts.keepStatCache ?? false)
  }

  /** The token of the stat cache file that matches the committed index, if one does. */
  async statCacheToken(): Promise<number | undefined> {
    await this.ready()
    return (await this.meta.get('statcache')) as number | undefined
  }

  /** Marks the stat cache file written with `token` as matching the committed index. */
  async setStatCacheToken(token: number): Promise<void> {
    await this.meta.put('statcache', token)
  }

  /** Forgets the stat cache: the next scan walks and merges in full. */
  async dropStatCache(): Promise<void> {
    await this.meta.del('statcache')
  }

  async applyCommit(id: number, summary: ScanSummary, keepStatCache = false): Promise<void> {
    // The last scan committed before this one: the last that held the versions this one removes.
    const before = ((await this.meta.get('last')) as number | undefined) ?? 0
    const prefixes = {
      v: this.versions.prefix,
      vp: this.versionsByPath.prefix,
      vc: this.versionsByCid.prefix,
    }
    const it = this.readJournal()
    const out = this.rawWriter()
    this.#committing = id
    try {
      for (;;) {
        const entries = await it.nextv(1000)
        if (entries.length === 0) break
        for (const [key, e] of entries) {
          if (e.scan === id) {
            const path = pathOf(key)
            out.put(this.pPrefix + key, encodeRecord(e.rec))
            if (e.old !== null && (e.old !== e.rec.cid || e.rec.state === 'deleted'))
              out.del(this.cPrefix + cidKey(e.old, path))
            if (e.rec.state !== 'deleted') out.put(this.cPrefix + cidKey(e.rec.cid, path), String(id))
            // A local entry (evicted, refetched at) belongs to the copy it was made for: a deletion, another
            // CID or a path back after its deletion ends it, in the batch of the record (a re-added file with
            // the same bytes is not "refetched"). A gone-upstream mark is acted on by any change here.
            if (e.rec.state === 'deleted' || e.old !== e.rec.cid) out.del(this.lPrefix + key)
            out.del(this.gPrefix + key)
            // In the same batch as the record that replaces it: a kill -9 keeps both or neither.
            if (e.leaving)
              for (const [k, v] of versionPuts(prefixes, key, e.leaving, e.rec, id, before)) out.put(k, v)
          }
          out.del(this.jPrefix + key)
        }
        await out.send()
      }
      await out.settle()
    } finally {
      await out.settle().catch(() => {})
      await it.close()
    }
    const batch = this.db.batch()
    batch.put(scanKey(id), summary, { sublevel: this.scans })
    batch.put('last', id, { sublevel: this.meta })
    batch.del('commit', { sublevel: this.meta })
    batch.del('scanning', { sublevel: this.meta })
    if (!keepStatCache) batch.del('statcache', { sublevel: this.meta })
    try {
      await batch.write()
      this.last = id
    } finally {
      this.#committing = 0
    }
  }

  /** Path records in key order, read past the sublevel layer (keys without prefix, values parsed). */
  readPaths(): RawReader<StoredRecord> {
    return new RawReader(this.db, this.pPrefix, decodeRecord)
  }

  /** A writer of raw operations on this database (see RawWriter). */
  rawWriter(): RawWriter {
    return new RawWriter(this.db)
  }

  /** Journal entries in key order, as `readPaths`. */
  readJournal(): RawReader<JournalEntry> {
    return new RawReader(this.db, this.jPrefix, decodeJournal)
  }

  async lastScan(): Promise<ScanSummary | undefined> {
    await this.ready()
    if (this.last === 0) return undefined
    return this.scans.get(scanKey(this.last))
  }

  async *scanHistory(opts: { reverse?: boolean } = {}): AsyncGenerator<ScanSummary> {
    await this.ready()
    for await (const page of rangePages(this.scans, { reverse: opts.reverse ?? false }))
      for (const [, s] of page) yield s
  }

  /** Paths (relative, `/`-separated, in byte order) whose committed record holds `cid`. */
  async pathsOf(cid: string): Promise<string[]> {
    const out: string[] = []
    let after: string | undefined
    for (;;) {
      const page = await this.pathsOfPage(cid, after, 10_000)
      out.push(...page.paths)
      if (!page.more) return out
      after = page.paths[page.paths.length - 1]
    }
  }

  /** Up to `limit` paths holding `cid`, after path `after`; `more` when others follow. */
  async pathsOfPage(
    cid: string,
    after: string | undefined,
    limit: number,
  ): Promise<{ paths: string[]; more: boolean }> {
    await this.ready()
    const prefix = `${cid}${SEP}`
    const range: KeyRange = {
      ...(after === undefined ? { gte: prefix } : { gt: prefix + after }),
      lt: `${cid}\x01`,
    }
    const paths: string[] = []
    for await (const page of rangePages(this.cids, range)) {
      for (const [k, scan] of page) {
        if (!this.#visible(scan)) continue
        if (paths.length === limit) return { paths, more: true }
        paths.push(k.slice(prefix.length))
      }
    }
    return { paths, more: false }
  }

  /** One committed scan's summary. */
  async scanById(id: number): Promise<ScanSummary | undefined> {
    await this.ready()
    if (!Number.isSafeInteger(id) || id < 1 || id > this.last) return undefined
    return this.scans.get(scanKey(id))
  }

  /** Committed scans, newest first, with ids below `before` (all when undefined), at most `limit`. */
  async scansBefore(before: number | undefined, limit: number): Promise<ScanSummary[]> {
    await this.ready()
    const top = before === undefined ? this.last + 1 : Math.min(before, this.last + 1)
    if (top <= 1) return []
    return readValues(this.scans, { lt: scanKey(top), reverse: true, limit })
  }

  /**
   * Up to `limit` committed records, in key order (a depth-first walk, each directory sorted by
   * name): the path key `under` and everything below it ('' for the whole tree), after path key
   * `after`; `more` when others follow.
   */
  async recordsPage(
    under: string,
    after: string | undefined,
    limit: number,
  ): Promise<{ records: [string, StoredRecord][]; more: boolean }> {
    await this.ready()
    const range: KeyRange = {
      ...(after !== undefined ? { gt: after } : under !== '' ? { gte: under } : {}),
      ...(under !== '' ? { lt: `${under}\x01` } : {}),
    }
    const records: [string, StoredRecord][] = []
    for await (const page of rangePages(this.paths, range)) {
      for (const [key, v] of page) {
        const r = decodeRecord(v)
        if (!this.#visible(r.scan)) continue
        if (records.length === limit) return { records, more: true }
        records.push([key, r])
      }
    }
    return { records, more: false }
  }

  /**
   * Up to `limit` committed records of the entries of directory key `dir` ('' for the root), by name
   * (UTF-8 bytes), after entry name `after`; `more` when others follow. Each subdirectory's subtree is
   * skipped with a seek past it (`<dir>\x00<name>\x01`), so a listing reads its entries, not the tree
   * below them.
   */
  async childrenPage(
    dir: string,
    after: string | undefined,
    limit: number,
  ): Promise<{ records: [string, StoredRecord][]; more: boolean }> {
    await this.ready()
    const prefix = dir === '' ? '' : `${dir}${SEP}`
    const upper = dir === '' ? {} : { lt: `${dir}\x01` }
    let range: KeyRange =
      after !== undefined
        ? { gte: `${prefix}${after}\x01`, ...upper }
        : { gt: prefix === '' ? '' : prefix, ...upper }
    const records: [string, StoredRecord][] = []
    for (;;) {
      const page = await readRange(this.paths, { ...range, limit: 64 })
      if (page.length === 0) return { records, more: false }
      let next: KeyRange | undefined
      for (const [key, v] of page) {
        const name = key.slice(prefix.length)
        const sep = name.indexOf(SEP)
        if (sep >= 0) {
          next = { gte: `${prefix}${name.slice(0, sep)}\x01`, ...upper }
          break
        }
        next = { gt: key, ...upper }
        const r = decodeRecord(v)
        if (!this.#visible(r.scan)) continue
        if (records.length === limit) return { records, more: true }
        records.push([key, r])
        if (r.kind === 'dir') {
          next = { gte: `${key}\x01`, ...upper }
          break
        }
      }
      range = next!
    }
  }

  /** Committed files and symlinks by state, and directories present, over every record kept. */
  async countStates(): Promise<{ present: number; evicted: number; deleted: number; dirs: number }> {
    await this.ready()
    const counts = { present: 0, evicted: 0, deleted: 0, dirs: 0 }
    for await (const page of rangePages(this.paths)) {
      for (const [, v] of page) {
        const r = decodeRecord(v)
        if (!this.#visible(r.scan)) continue
        if (r.kind !== 'dir') counts[r.state]++
        else if (r.state === 'present') counts.dirs++
      }
    }
    return counts
  }
}
