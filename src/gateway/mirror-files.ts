/**
 * What a request path of a mirror names, and the headers of each file, kept in a bounded cache so a
 * hit costs a map lookup (and, once per `statTtlMs`, one stat to see the file is still what the cache
 * says). A miss resolves the path on disk: symlinks are followed (`dists/stable -> bookworm`), and
 * anything whose real path leaves the mirror's real root is missing (404), as is anything that is not
 * a regular file or a directory. Metadata comes from the index when its record matches the file's stat
 * (size, mtime, ctime, inode: what the scanner compares); a file replaced since the last scan gets
 * headers from its stat alone, never the stale record's CID. A path that is not on disk but whose record
 * is `evicted` is served from the index's metadata (the fetch-back brings its bytes).
 *
 * Small files are read whole into the cache (from one open file: the bytes and the stat they are
 * checked against belong together); the cache's bytes are bounded by `cacheBytes`.
 */
import { closeSync, fstatSync, openSync, readSync, realpathSync, type Stats, statSync } from 'node:fs'
import { join, sep } from 'node:path'
import { LRUCache } from 'lru-cache'
import type { CopyRecord, IndexReader, PathRecord } from '../index/index.ts'
import { reprDigestOf, statEtag } from './integrity.ts'
import { encodePath } from './request-path.ts'

export interface ServedMirror {
  name: string
  /** The URL path it is served at, with both slashes: `/debian/`. */
  url: string
  /** `url`'s decoded segments (`['debian']`). */
  prefix: string[]
  /** Absolute folder of the mirror tree. */
  root: string
  /** Base URLs (ending in `/`) of sibling mirrors of the same tree, for `Link: rel=duplicate`. */
  duplicates: string[]
}

export interface FileMeta {
  state: 'present' | 'evicted'
  mirror: ServedMirror
  /** The path as asked, on disk (through any symlink): what a re-validation stats. */
  askedAbs: string
  /** The real path, and the path relative to the mirror root the index knows it by. */
  abs: string
  rel: string
  size: number
  mtimeMs: number
  ctimeMs: number
  ino: number
  /** The CID, only when the index's record describes these bytes. */
  cid: string | undefined
  record: PathRecord | undefined
  etag: string
  lastModified: string
  type: string
  /** Every header of the file but Content-Length and Content-Range, as a flat [name, value, ...] list. */
  head: string[]
  /** Other places holding the same bytes (sibling mirrors, copies' retrieval URLs), best first. */
  duplicates: string[]
  /** The whole file, for small files. */
  body: Buffer | undefined
  /** `head` with the whole file's Content-Length, made at the first 200. */
  full?: string[]
  /** The cache key it is kept under, once remembered. */
  key?: string
  /** Its key in the request times (`RequestTimes.key`), made at its first request when they are kept. */
  requestKey?: string
  /** When the stat was last checked (performance.now() ms). */
  checkedAt: number
}

export type Resolution =
  | { kind: 'file'; meta: FileMeta }
  | { kind: 'dir'; rel: string; abs: string }
  | { kind: 'missing' }

export interface MirrorFilesOptions {
  reader: IndexReader
  /** A path's copies (for the `retrieval` URLs the replicator recorded); none when absent. */
  copiesOf?: (mirror: string, record: PathRecord) => Promise<CopyRecord[]>
  contentType: (name: string) => string
  /** Bytes of small files kept in memory (default 64 MiB); files above `cacheFileBytes` are not. */
  cacheBytes?: number
  cacheFileBytes?: number
  /** Paths whose headers are kept (default 100,000). */
  cacheEntries?: number
  /** How long a cached entry is trusted before its stat is checked again (default 1 s). */
  statTtlMs?: number
}

const FLAGS_READ = 'r'

/** Whether two stats describe the same bytes, as the scanner judges it. */
function sameFile(a: { size: number; mtimeMs: number; ctimeMs: number; ino: number }, b: Stats): boolean {
  return a.size === b.size && a.mtimeMs === b.mtimeMs && a.ctimeMs === b.ctimeMs && a.ino === b.ino
}

export class MirrorFiles {
  readonly #o: MirrorFilesOptions
  readonly #cache: LRUCache<string, FileMeta>
  readonly #statTtl: number
  readonly #fileMax: number
  readonly #realRoots = new Map<string, string>()
  readonly #dirCids = new LRUCache<string, string>({ max: 10_000 })

  constructor(o: MirrorFilesOptions) {
    this.#o = o
    this.#statTtl = o.statTtlMs ?? 1000
    this.#fileMax = o.cacheFileBytes ?? 256 * 1024
    this.#cache = new LRUCache<string, FileMeta>({
      max: o.cacheEntries ?? 100_000,
      maxSize: o.cacheBytes ?? 64 * 1024 * 1024,
      // Headers and names count too, so a cache of many empty files is bounded as well.
      sizeCalculation: (m) => (m.body?.length ?? 0) + 512 + m.askedAbs.length * 2,
    })
  }

  /** A cached file still as it was (its stat checked once per `statTtlMs`), else undefined. */
  cached(key: string, now: number): FileMeta | undefined {
    const m = this.#cache.get(key)
    if (m === undefined) return undefined
    if (now - m.checkedAt < this.#statTtl) return m
    let st: Stats | undefined
    try {
      st = statSync(m.askedAbs, { throwIfNoEntry: false })
    } catch {
      st = undefined
    }
    const still = m.state === 'present' ? st?.isFile() === true && sameFile(m, st) : st === undefined
    if (!still) {
      this.#cache.delete(key)
      return undefined
    }
    m.checkedAt = now
    return m
  }

  remember(key: string, meta: FileMeta): void {
    meta.key = key
    this.#cache.set(key, meta)
  }

  /** Drops one entry (its file changed under a response being prepared). */
  forget(meta: FileMeta): void {
    if (meta.key !== undefined && this.#cache.peek(meta.key) === meta) this.#cache.delete(meta.key)
  }

  /** The mirror's root with its symlinks resolved, or undefined when it does not exist. */
  realRootOf(m: ServedMirror): string | undefined {
    return this.#realRoot(m)
  }

  /** Drops every cached entry (a scan committed: records, and so CIDs, may have changed). */
  invalidate(): void {
    this.#cache.clear()
    this.#dirCids.clear()
  }

  get cacheStats(): { entries: number; bytes: number } {
    return { entries: this.#cache.size, bytes: this.#cache.calculatedSize }
  }

  #realRoot(m: ServedMirror): string | undefined {
    let r = this.#realRoots.get(m.name)
    if (r === undefined) {
      try {
        r = realpathSync.native(m.root)
      } catch {
        return undefined
      }
      this.#realRoots.set(m.name, r)
    }
    return r
  }

  /** The path relative to the real root, or undefined when `real` is not inside it. */
  #inside(realRoot: string, real: string): string | undefined {
    if (real === realRoot) return ''
    if (!real.startsWith(realRoot + sep)) return undefined
    return real.slice(realRoot.length + 1)
  }

  /** What `segments` (below the mirror's prefix) name. */
  async resolve(m: ServedMirror, segments: string[], now: number): Promise<Resolution> {
    const realRoot = this.#realRoot(m)
    if (realRoot === undefined) return { kind: 'missing' }
    const askedAbs = segments.length === 0 ? m.root : join(m.root, ...segments)
    let real: string
    try {
      real = realpathSync.native(askedAbs)
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code
      if ((code !== 'ENOENT' && code !== 'ENOTDIR') || segments.length === 0) return { kind: 'missing' }
      return this.#evicted(m, realRoot, segments, askedAbs, now)
    }
    const rel = this.#inside(realRoot, real)
    if (rel === undefined) return { kind: 'missing' }
    let fd: number
    try {
      fd = openSync(real, FLAGS_READ)
    } catch {
      return { kind: 'missing' }
    }
    try {
      const st = fstatSync(fd)
      if (st.isDirectory()) return { kind: 'dir', rel, abs: real }
      if (!st.isFile()) return { kind: 'missing' }
      let body: Buffer | undefined
      if (st.size <= this.#fileMax) {
        const buf = Buffer.allocUnsafeSlow(st.size)
        let off = 0
        while (off < st.size) {
          const n = readSync(fd, buf, off, st.size - off, off)
          if (n === 0) break
          off += n
        }
        // The bytes kept are the bytes of this stat, or none are kept.
        if (off === st.size && sameFile(st, fstatSync(fd))) body = buf
      }
      const record = await this.#record(m, rel)
      const matches =
        record !== undefined && record.kind === 'file' && record.state === 'present' && sameFile(record, st)
      const meta = await this.#meta(
        m,
        segments,
        'present',
        askedAbs,
        real,
        rel,
        st,
        matches ? record : undefined,
      )
      meta.body = body
      meta.checkedAt = now
      return { kind: 'file', meta }
    } finally {
      closeSync(fd)
    }
  }

  /** A path not on disk: an evicted record of the index, reached through the real parent. */
  async #evicted(
    m: ServedMirror,
    realRoot: string,
    segments: string[],
    askedAbs: string,
    now: number,
  ): Promise<Resolution> {
    let parent: string
    try {
      parent = realpathSync.native(segments.length === 1 ? m.root : join(m.root, ...segments.slice(0, -1)))
    } catch {
      return { kind: 'missing' }
    }
    const prel = this.#inside(realRoot, parent)
    if (prel === undefined) return { kind: 'missing' }
    const leaf = segments[segments.length - 1]!
    const rel = prel === '' ? leaf : `${prel}/${leaf}`
    const record = await this.#record(m, rel)
    if (record === undefined || record.state !== 'evicted' || record.kind !== 'file')
      return { kind: 'missing' }
    const meta = await this.#meta(m, segments, 'evicted', askedAbs, join(parent, leaf), rel, record, record)
    meta.checkedAt = now
    return { kind: 'file', meta }
  }

  async #record(m: ServedMirror, rel: string): Promise<PathRecord | undefined> {
    try {
      return await this.#o.reader.record(m.name, rel)
    } catch {
      // A mirror not indexed yet is served from its stats.
      return undefined
    }
  }

  /** CIDs of the directories from the root down to `rel`'s parent, for X-Ipfs-Roots. */
  async #roots(m: ServedMirror, rel: string): Promise<string[] | undefined> {
    const parts = rel.split('/')
    const out: string[] = []
    for (let i = 0; i < parts.length; i++) {
      const dir = parts.slice(0, i).join('/')
      const key = `${m.name}\0${dir}`
      let cid = this.#dirCids.get(key)
      if (cid === undefined) {
        const r = await this.#record(m, dir)
        if (r === undefined || r.kind !== 'dir') return undefined
        cid = r.cid
        this.#dirCids.set(key, cid)
      }
      out.push(cid)
    }
    return out
  }

  async #meta(
    m: ServedMirror,
    segments: string[],
    state: 'present' | 'evicted',
    askedAbs: string,
    abs: string,
    rel: string,
    st: { size: number; mtimeMs: number; ctimeMs: number; ino: number },
    record: PathRecord | undefined,
  ): Promise<FileMeta> {
    const cid = record?.cid
    const lastModified = new Date(st.mtimeMs).toUTCString()
    const etag = cid !== undefined ? `"${cid}"` : statEtag(st.mtimeMs, st.size)
    const type = this.#o.contentType(rel)
    const head = ['Content-Type', type, 'Last-Modified', lastModified, 'ETag', etag, 'Accept-Ranges', 'bytes']
    const duplicates = m.duplicates.map((base) => base + encodePath(segments))
    if (cid !== undefined && record !== undefined) {
      const roots = await this.#roots(m, rel)
      if (roots !== undefined) {
        head.push('X-Ipfs-Roots', [...roots, cid].join(','))
        head.push('X-Ipfs-Path', `/ipfs/${roots[0]}/${encodePath(rel.split('/'))}`)
      }
      const digest = reprDigestOf(cid, record.sha256)
      if (digest !== undefined) head.push('Repr-Digest', digest)
      if (this.#o.copiesOf) {
        try {
          for (const c of await this.#o.copiesOf(m.name, record)) {
            if (c.status !== 'verified' || c.local) continue
            for (const url of c.retrieval ?? []) if (!duplicates.includes(url)) duplicates.push(url)
          }
        } catch {
          // The copies are an extra: a failed read leaves them out.
        }
      }
    }
    if (duplicates.length > 0) {
      head.push(
        'Link',
        duplicates
          .map((u, i) => `<${u.replace(/[<>\s]/g, encodeURIComponent)}>; rel=duplicate; pri=${i + 1}`)
          .join(', '),
      )
    }
    return {
      state,
      mirror: m,
      askedAbs,
      abs,
      rel,
      size: st.size,
      mtimeMs: st.mtimeMs,
      ctimeMs: st.ctimeMs,
      ino: st.ino,
      cid,
      record,
      etag,
      lastModified,
      type,
      head,
      duplicates,
      body: undefined,
      checkedAt: 0,
    }
  }
}
