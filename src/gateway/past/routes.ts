/**
 * What left the mirror, still served (issue 13, "beyond the anchors"):
 *
 * - `/_deleted/<mirror path>/<path>`: the files deleted upstream, listed (HTML and JSON, as mirror
 *   listings) and downloaded with the headers they had (ETag = CID, Last-Modified, X-Ipfs-Roots of the
 *   last root that held them). Their bytes come by CID: from the tree when another present file holds
 *   that CID, else through the fetch-back, verified, to the client only (never back under their path).
 * - `/ipfs/<cid>[/<path>]` without a trustless format: a plain download (path-gateway style) of a file
 *   by CID, or of a path inside any past sync's root (and the current one), resolved through the
 *   directory nodes the block map keeps (each block checked against its CID); directories are listed.
 * - `/_roots/<mirror>`: each committed scan's root CID, newest first, with its link.
 *
 * The HTTP side (conditional requests, ranges, streaming from disk or the fetch-back, the access log)
 * is the server's (`PastContext.send`); this file decides what a path names and with which headers.
 */
import type { IncomingMessage, ServerResponse } from 'node:http'
import { LRUCache } from 'lru-cache'
import { CID } from 'multiformats/cid'
import {
  type IndexReader,
  MirrorNotIndexedError,
  type PathRecord,
  type ScanSummary,
} from '../../index/index.ts'
import type { EvictedFile } from '../index.ts'
import { reprDigestOf } from '../integrity.ts'
import { type ListEntry, MAX_LISTING, sendListing } from '../listing.ts'
import type { ServedMirror } from '../mirror-files.ts'
import { encodePath, parseTarget } from '../request-path.ts'
import type { BlockSource } from '../trustless/blocks.ts'
import {
  TrustlessNoSuchPathError,
  TrustlessNotHeldError,
  TrustlessSymlinkError,
} from '../trustless/errors.ts'
import { parseCidText } from '../trustless/request.ts'
import { type DagEntry, type DagKind, dirEntries, kindOf, walkOn, walkTo } from './dag-path.ts'
import { DeletedDirs } from './deleted-dirs.ts'
import { resolveIndexPath, resolveIndexPathAt } from './index-path.ts'
import { RootScans } from './root-scans.ts'

/** A past version of a path, as the index's versions API gives it (src/index/versions.ts). */
export interface PastFile {
  mirror: string
  path: string
  cid: string
  size: number
  mtimeMs: number
  sha256?: string
}

/** A file or symlink of a scan's tree: a past version (`left` says when and why it left) or the current record. */
export interface PastEntry extends PastFile {
  kind: 'file' | 'symlink'
  /** Symlinks: the target they had. */
  target?: string
  left?: { scan: number; lastScan: number; reason: 'deleted' | 'replaced' }
}

/** The index's past versions, across the served mirrors (the daemon wires `MirrorIndex.versionsByCid`/`recordAt`). */
export interface PastVersions {
  /** Versions that held `cid` (deleted ones and old contents of changed paths). */
  byCid(mirror: string, cid: string): Promise<PastFile[]>
  /** The file at `path` in the tree of committed scan `scan`, current or past; undefined for none. */
  at(mirror: string, path: string, scan: number): Promise<PastFile | undefined>
  /** The file or symlink at `path` in the tree of committed scan `scan`; undefined for a directory or none. */
  entryAt(mirror: string, path: string, scan: number): Promise<PastEntry | undefined>
  /** The past symlink versions of `path` (each with `left`), oldest first. */
  symlinksOf(mirror: string, path: string): Promise<PastEntry[]>
}

/** Where a response's bytes come from. */
export type BodySource =
  | { kind: 'disk'; abs: string; stat: { size: number; mtimeMs: number; ctimeMs: number; ino: number } }
  | { kind: 'fetch'; file: EvictedFile }

/** The representation: its validators, and every header but Content-Length and Content-Range. */
export interface Representation {
  etag: string
  lastModified: string
  size: number
  head: string[]
}

export interface PastContext {
  reader: IndexReader
  mirrors: ServedMirror[]
  /** The block map and the local node's blocks, verified; without it past roots are not served. */
  blocks?: BlockSource
  versions?: PastVersions
  contentType(name: string): string
  done(req: IncomingMessage, status: number, bytes: number, t0: number): undefined
  plain(res: ServerResponse, status: number, text: string, extra?: string[]): number
  /** Answers a GET or HEAD of `rep` (304, 416, 200 or 206), its bytes from `body`. */
  send(
    req: IncomingMessage,
    res: ServerResponse,
    rep: Representation,
    body: BodySource,
    t0: number,
  ): Promise<undefined>
  /** Real path of a mirror's root, or undefined when it does not exist. */
  realRootOf(m: ServedMirror): string | undefined
  /** Whether `abs` is a regular file inside `realRoot` whose stat is `stat` (the record's). */
  onDisk(abs: string, realRoot: string, stat: BodySource & { kind: 'disk' }): boolean
}

const IMMUTABLE = 'public, max-age=29030400, immutable'
const DELETED = '_deleted'
const ROOTS = '_roots'

/** Whether an `/ipfs/` request asks for a plain download: no `?format=`, no IPLD type in Accept. */
export function wantsPlain(url: string, accept: string | undefined): boolean {
  const q = url.indexOf('?')
  if (q >= 0 && new URLSearchParams(url.slice(q + 1)).has('format')) return false
  return !(accept ?? '').toLowerCase().includes('application/vnd.ipld.')
}

/** What the index knows of the holders of a CID: a present file, an evicted one, a past version. */
interface Holder {
  mirror: ServedMirror
  path: string
  size: number
  mtimeMs: number
  sha256?: string
  state: 'present' | 'evicted' | 'past'
  record?: PathRecord
}

export class PastRoutes {
  readonly #c: PastContext
  readonly #deletedDirs: DeletedDirs
  readonly #rootScans: RootScans
  /** Walks that ended on a file, by root CID and path (content-addressed: never stale). */
  readonly #walked = new LRUCache<string, { entry: DagEntry; kind: DagKind }>({ max: 20_000 })

  constructor(c: PastContext) {
    this.#c = c
    this.#deletedDirs = new DeletedDirs(c.reader)
    this.#rootScans = new RootScans(c.reader)
  }

  /** Whether this request is one of these routes (`/ipfs/` only for plain downloads, with blocks). */
  takes(rawPath: string, url: string, accept: string | undefined): boolean {
    if (rawPath === `/${DELETED}` || rawPath.startsWith(`/${DELETED}/`)) return true
    if (rawPath === `/${ROOTS}` || rawPath.startsWith(`/${ROOTS}/`)) return true
    return this.#c.blocks !== undefined && rawPath.startsWith('/ipfs/') && wantsPlain(url, accept)
  }

  async handle(req: IncomingMessage, res: ServerResponse, t0: number): Promise<undefined> {
    const c = this.#c
    const url = req.url ?? '/'
    const parsed = parseTarget(url)
    if (!parsed.ok) return c.done(req, 400, c.plain(res, 400, `400 Bad Request: ${parsed.reason}`), t0)
    if (req.method !== 'GET' && req.method !== 'HEAD')
      return c.done(req, 405, c.plain(res, 405, '405 Method Not Allowed', ['Allow', 'GET, HEAD']), t0)
    const [first, ...rest] = parsed.segments
    try {
      if (first === DELETED) return await this.#deleted(req, res, rest, parsed.slash, parsed.query, t0)
      if (first === ROOTS) return await this.#roots(req, res, rest, parsed.query, t0)
      return await this.#ipfs(req, res, rest, parsed.slash, parsed.query, t0)
    } catch (err) {
      if (
        err instanceof TrustlessNotHeldError ||
        err instanceof TrustlessNoSuchPathError ||
        err instanceof TrustlessSymlinkError
      )
        return c.done(req, 404, c.plain(res, 404, `404 Not Found: ${err.message}`), t0)
      if (err instanceof MirrorNotIndexedError)
        return c.done(req, 404, c.plain(res, 404, `404 Not Found: ${err.message}`), t0)
      throw err
    }
  }

  #mirrorAt(segments: string[]): { m: ServedMirror; rest: string[] } | undefined {
    for (const m of this.#c.mirrors) {
      if (m.prefix.length <= segments.length && m.prefix.every((p, i) => segments[i] === p))
        return { m, rest: segments.slice(m.prefix.length) }
    }
    return undefined
  }

  #redirectSlash(req: IncomingMessage, res: ServerResponse, t0: number): undefined {
    const url = req.url ?? '/'
    const q = url.indexOf('?')
    const location = q < 0 ? `${url}/` : `${url.slice(0, q)}/${url.slice(q)}`
    return this.#c.done(
      req,
      301,
      this.#c.plain(res, 301, `301 Moved Permanently: ${location}`, ['Location', location]),
      t0,
    )
  }

  #listing(
    req: IncomingMessage,
    res: ServerResponse,
    entries: ListEntry[],
    truncated: boolean,
    query: string,
    t0: number,
  ): undefined {
    const rawPath = (req.url ?? '/').split('?', 1)[0]!
    return this.#c.done(req, 200, sendListing(req, res, rawPath, entries, truncated, query), t0)
  }

  // ---- /_deleted/ ----

  async #deleted(
    req: IncomingMessage,
    res: ServerResponse,
    segments: string[],
    slash: boolean,
    query: string,
    t0: number,
  ): Promise<undefined> {
    const c = this.#c
    if (segments.length === 0) {
      if (!slash) return this.#redirectSlash(req, res, t0)
      const entries: ListEntry[] = c.mirrors.map((m) => ({
        name: m.prefix.join('/'),
        dir: true,
        size: 0,
        mtimeMs: Number.NaN,
        cid: undefined,
      }))
      return this.#listing(req, res, entries, false, query, t0)
    }
    const at = this.#mirrorAt(segments)
    if (!at) return c.done(req, 404, c.plain(res, 404, '404 Not Found'), t0)
    const { m } = at
    // Through the mirror's symlinks, as its own paths are (`dists/stable -> bookworm`).
    const resolved = await resolveIndexPath(c.reader, m.name, at.rest)
    const dirs = await this.#deletedDirs.of(m.name)
    // Else through the symlinks as they were when the file left (one since deleted or retargeted).
    const asItWas = async (): Promise<undefined | 'sent'> => {
      const found = await this.#asItWas(m, at.rest, resolved.ok ? resolved.path : '', dirs)
      if (found?.kind === 'dir') {
        if (!slash) this.#redirectSlash(req, res, t0)
        else await this.#deletedListing(req, res, m, found.path, dirs, query, t0)
        return 'sent'
      }
      if (!found || slash) return undefined
      await this.#sendDeleted(req, res, m, found, t0)
      return 'sent'
    }
    if (!resolved.ok) {
      if (await asItWas()) return
      return c.done(req, 404, c.plain(res, 404, `404 Not Found: ${resolved.reason}`), t0)
    }
    const rel = resolved.path
    const rec = rel === '' ? undefined : await c.reader.record(m.name, rel)
    if ((rel === '' || rec?.kind === 'dir') && dirs.has(rel)) {
      if (!slash) return this.#redirectSlash(req, res, t0)
      return this.#deletedListing(req, res, m, rel, dirs, query, t0)
    }
    if (rec?.kind !== 'file' || rec.state !== 'deleted' || slash) {
      if (await asItWas()) return
      return c.done(req, 404, c.plain(res, 404, '404 Not Found'), t0)
    }
    return this.#sendDeleted(req, res, m, { ...rec, leftScan: rec.scan }, t0)
  }

  /** The listing of directory `rel` ('' for the root): its deleted files and what leads to some. */
  async #deletedListing(
    req: IncomingMessage,
    res: ServerResponse,
    m: ServedMirror,
    rel: string,
    dirs: Set<string>,
    query: string,
    t0: number,
  ): Promise<undefined> {
    const c = this.#c
    const entries: ListEntry[] = []
    let after: string | undefined
    let truncated = false
    for (;;) {
      const page = await c.reader.children(m.name, rel, { ...(after ? { after } : {}), limit: 10_000 })
      for (const r of page.records) {
        const name = r.path.slice(r.path.lastIndexOf('/') + 1)
        const shown = r.kind === 'symlink' ? await this.#symlinkShownAs(m, r, dirs) : r
        if (!shown) continue
        if (shown.kind === 'dir' && dirs.has(shown.path))
          entries.push({ name, dir: true, size: 0, mtimeMs: shown.mtimeMs ?? r.mtimeMs, cid: undefined })
        else if (shown.kind === 'file' && shown.state === 'deleted')
          entries.push({ name, dir: false, size: shown.size, mtimeMs: shown.mtimeMs, cid: shown.cid })
      }
      if (entries.length >= MAX_LISTING) {
        truncated = true
        break
      }
      if (page.next === null) break
      after = page.next
    }
    return this.#listing(req, res, entries.slice(0, MAX_LISTING), truncated, query, t0)
  }

  /**
   * What a listing shows a symlink as: what it leads to today, else what it led to as it was
   * (`#asItWas`, what a request through it gives); the listing keeps it when that is a directory
   * leading to deleted files or a deleted file.
   */
  async #symlinkShownAs(
    m: ServedMirror,
    r: PathRecord,
    dirs: Set<string>,
  ): Promise<
    | { kind: 'dir'; path: string; mtimeMs?: number }
    | (Pick<PastFile, 'size' | 'mtimeMs' | 'cid'> & { kind: 'file'; state: 'deleted' })
    | PathRecord
    | undefined
  > {
    const c = this.#c
    const to = r.state === 'deleted' ? undefined : await resolveIndexPath(c.reader, m.name, r.path.split('/'))
    const t = to?.ok && to.path !== '' ? await c.reader.record(m.name, to.path) : undefined
    if ((t?.kind === 'dir' && dirs.has(t.path)) || (t?.kind === 'file' && t.state === 'deleted')) return t
    const f = await this.#asItWas(m, r.path.split('/'), '', dirs)
    if (f?.kind === 'dir') return { kind: 'dir', path: f.path }
    return f && { kind: 'file', state: 'deleted', size: f.size, mtimeMs: f.mtimeMs, cid: f.cid }
  }

  /** A deleted file's bytes, with the headers it had; `leftScan`: the scan that deleted it. */
  async #sendDeleted(
    req: IncomingMessage,
    res: ServerResponse,
    m: ServedMirror,
    f: Omit<PastFile, 'mirror'> & { leftScan: number },
    t0: number,
  ): Promise<undefined> {
    const roots = await this.#lastRoots(m, f)
    const rep = this.#representation(f.path, f.cid, f.size, f.mtimeMs, f.sha256, roots)
    const body = await this.#bodyOf(m, f.cid, {
      mirror: m,
      path: f.path,
      size: f.size,
      mtimeMs: f.mtimeMs,
      state: 'past',
    })
    return this.#c.send(req, res, rep, body, t0)
  }

  /**
   * What `segments` led to when a symlink on the way (asked, or met through today's symlinks:
   * `resolvedPath`) was still in the tree as it was then: for each past version of such a symlink,
   * newest first, the path resolved through the tree of the last scan that held it (`recordAt`: every
   * symlink as that scan had it); a file there that has since been deleted, or a directory that now
   * leads to deleted files (`dirs`), is the answer.
   */
  async #asItWas(
    m: ServedMirror,
    segments: string[],
    resolvedPath: string,
    dirs: Set<string>,
  ): Promise<(PastEntry & { leftScan: number }) | { kind: 'dir'; path: string } | undefined> {
    const v = this.#c.versions
    if (!v) return undefined
    const prefixes = new Set<string>()
    for (const path of [segments, resolvedPath === '' ? [] : resolvedPath.split('/')])
      for (let i = 1; i <= path.length; i++) prefixes.add(path.slice(0, i).join('/'))
    const scans = new Set<number>()
    for (const p of prefixes)
      for (const link of await v.symlinksOf(m.name, p).catch(() => []))
        if (link.left) scans.add(link.left.lastScan)
    for (const scan of [...scans].sort((a, b) => b - a)) {
      const to = await resolveIndexPathAt(v, m.name, segments, scan)
      if (!to.ok || to.path === '') continue
      const f = await v.entryAt(m.name, to.path, scan)
      if (f?.kind === 'file' && f.left?.reason === 'deleted') return { ...f, leftScan: f.left.scan }
      if (!f && dirs.has(to.path)) return { kind: 'dir', path: to.path }
    }
    return undefined
  }

  /** X-Ipfs-Roots of a deleted file: the CIDs along its path in the last root that held it. */
  async #lastRoots(
    m: ServedMirror,
    f: { path: string; cid: string; leftScan: number },
  ): Promise<{ roots: CID[]; root: string } | undefined> {
    const src = this.#c.blocks
    if (!src) return undefined
    const before = (await this.#c.reader.scans(m.name, { before: f.leftScan, limit: 1 })).scans[0]
    if (!before) return undefined
    try {
      const root = CID.parse(before.rootCid)
      const entry = await walkTo(src, root, f.path.split('/'))
      return entry.cid.toString() === f.cid ? { roots: entry.roots, root: before.rootCid } : undefined
    } catch {
      // A root mapped before the block map kept its nodes: the headers go without it.
      return undefined
    }
  }

  #representation(
    name: string,
    cid: string,
    size: number,
    mtimeMs: number | undefined,
    sha256: string | undefined,
    roots: { roots: CID[]; root: string; path?: string } | undefined,
    extra: string[] = [],
  ): Representation {
    const etag = `"${cid}"`
    const lastModified = mtimeMs === undefined ? '' : new Date(mtimeMs).toUTCString()
    const head = ['Content-Type', this.#c.contentType(name), 'ETag', etag, 'Accept-Ranges', 'bytes']
    if (lastModified !== '') head.push('Last-Modified', lastModified)
    if (roots) {
      head.push('X-Ipfs-Roots', roots.roots.map((r) => r.toString()).join(','))
      head.push('X-Ipfs-Path', roots.path ?? `/ipfs/${roots.root}/${encodePath(name.split('/'))}`)
    }
    const digest = reprDigestOf(cid, sha256)
    if (digest !== undefined) head.push('Repr-Digest', digest)
    head.push(...extra)
    return { etag, lastModified, size, head }
  }

  /**
   * Where the bytes of `cid` are: a present file of a served mirror holding it (its stat as recorded),
   * else an evicted one (fetched back into its place, as any evicted file), else the fetch-back to the
   * client only, named after `fallback`.
   */
  async #bodyOf(m: ServedMirror | undefined, cid: string, fallback: Holder | undefined): Promise<BodySource> {
    const c = this.#c
    const holders = await this.#holders(cid)
    for (const h of holders) {
      if (h.state !== 'present' || !h.record) continue
      const realRoot = c.realRootOf(h.mirror)
      if (realRoot === undefined) continue
      const disk: BodySource & { kind: 'disk' } = {
        kind: 'disk',
        abs: `${h.mirror.root}/${h.path}`,
        stat: {
          size: h.record.size,
          mtimeMs: h.record.mtimeMs,
          ctimeMs: h.record.ctimeMs,
          ino: h.record.ino,
        },
      }
      if (c.onDisk(disk.abs, realRoot, disk)) return disk
    }
    const evicted = holders.find((h) => h.state === 'evicted')
    if (evicted)
      return {
        kind: 'fetch',
        file: {
          mirror: evicted.mirror.name,
          path: evicted.path,
          cid,
          size: evicted.size,
          mtimeMs: evicted.mtimeMs,
        },
      }
    const named = fallback ?? holders[0]
    const mirror = named?.mirror ?? m ?? c.mirrors[0]
    return {
      kind: 'fetch',
      file: {
        mirror: mirror?.name ?? '',
        path: named?.path ?? `.ipfs/${cid}`,
        cid,
        size: named?.size ?? 0,
        mtimeMs: named?.mtimeMs ?? 0,
        transient: true,
      },
    }
  }

  /** Present and evicted files of the served mirrors holding `cid`, then its past versions. */
  async #holders(cid: string): Promise<Holder[]> {
    const c = this.#c
    const out: Holder[] = []
    const byName = new Map(c.mirrors.map((m) => [m.name, m]))
    try {
      const page = await c.reader.pathsOf(cid, { limit: 50 })
      for (const p of page.paths) {
        const m = byName.get(p.mirror)
        if (!m) continue
        const r = await c.reader.record(p.mirror, p.path)
        if (r?.kind !== 'file' || r.cid !== cid || r.state === 'deleted') continue
        out.push({
          mirror: m,
          path: p.path,
          size: r.size,
          mtimeMs: r.mtimeMs,
          ...(r.sha256 ? { sha256: r.sha256 } : {}),
          state: r.state,
          record: r,
        })
      }
    } catch {
      // An unindexed gateway: no holders known.
    }
    if (c.versions) {
      for (const m of c.mirrors) {
        try {
          for (const v of await c.versions.byCid(m.name, cid))
            out.push({
              mirror: m,
              path: v.path,
              size: v.size,
              mtimeMs: v.mtimeMs,
              ...(v.sha256 ? { sha256: v.sha256 } : {}),
              state: 'past',
            })
        } catch {
          // A mirror not indexed yet.
        }
      }
    }
    return out
  }

  // ---- /_roots/ ----

  async #roots(
    req: IncomingMessage,
    res: ServerResponse,
    segments: string[],
    query: string,
    t0: number,
  ): Promise<undefined> {
    const c = this.#c
    let body: string
    if (segments.length === 0) {
      body = JSON.stringify({
        mirrors: c.mirrors.map((m) => ({ mirror: m.name, roots: `/${ROOTS}/${encodeURIComponent(m.name)}` })),
      })
    } else {
      const m = segments.length === 1 ? c.mirrors.find((x) => x.name === segments[0]) : undefined
      if (!m) return c.done(req, 404, c.plain(res, 404, '404 Not Found: no such mirror'), t0)
      const q = new URLSearchParams(query)
      const before = q.has('before') ? Number(q.get('before')) : undefined
      const limit = q.has('limit') ? Number(q.get('limit')) : undefined
      const page = await c.reader.scans(m.name, {
        ...(before !== undefined && Number.isFinite(before) ? { before } : {}),
        ...(limit !== undefined && Number.isFinite(limit) ? { limit } : {}),
      })
      body = JSON.stringify({
        mirror: m.name,
        roots: page.scans.map(rootEntry),
        next: page.next === null ? null : `/${ROOTS}/${encodeURIComponent(m.name)}?before=${page.next}`,
      })
    }
    res.writeHead(200, [
      'Content-Type',
      'application/json',
      'Content-Length',
      String(Buffer.byteLength(body)),
      'Cache-Control',
      'no-cache',
    ])
    res.end(req.method === 'HEAD' ? undefined : body)
    return c.done(req, 200, req.method === 'HEAD' ? 0 : Buffer.byteLength(body), t0)
  }

  // ---- /ipfs/<cid>[/path] as a plain download ----

  async #ipfs(
    req: IncomingMessage,
    res: ServerResponse,
    segments: string[],
    slash: boolean,
    query: string,
    t0: number,
  ): Promise<undefined> {
    const c = this.#c
    const src = c.blocks!
    const [cidText, ...path] = segments
    const root = cidText === undefined ? undefined : parseCidText(cidText)
    if (!root)
      return c.done(req, 400, c.plain(res, 400, `400 Bad Request: /ipfs/${cidText ?? ''} is not a CID`), t0)
    // What a root CID and a path name never changes: the walk and a file's size are kept.
    const key = `${root}/${path.join('/')}`
    let walked = this.#walked.get(key)
    if (!walked) {
      const entry = await walkTo(src, root, path)
      walked = { entry, kind: await kindOf(src, entry) }
      if (walked.kind.kind === 'file') this.#walked.set(key, walked)
    }
    const { entry, kind } = walked
    const cid = entry.cid.toString()
    const rawPath = (req.url ?? '/').split('?', 1)[0]!
    if (kind.kind === 'dir') {
      if (!slash) return this.#redirectSlash(req, res, t0)
      const { entries: links, truncated } = await dirEntries(src, kind, MAX_LISTING)
      const entries: ListEntry[] = []
      for (const l of links) {
        let to: DagEntry = { cid: l.cid, tsize: l.tsize, roots: [], parents: [], path: [] }
        let k = await kindOf(src, to)
        if (k.kind === 'symlink') {
          // Shown as what it leads to, and only when that is inside this root (as mirror listings).
          try {
            to = await walkOn(src, entry, [l.name])
            k = await kindOf(src, to)
          } catch (err) {
            if (err instanceof TrustlessSymlinkError || err instanceof TrustlessNoSuchPathError) continue
            throw err
          }
        }
        entries.push({
          name: l.name,
          dir: k.kind === 'dir',
          size: k.kind === 'file' ? k.size : (to.tsize ?? 0),
          mtimeMs: Number.NaN,
          cid: to.cid.toString(),
        })
      }
      return this.#listing(req, res, entries, truncated, query, t0)
    }
    if (slash && path.length > 0) return c.done(req, 404, c.plain(res, 404, '404 Not Found'), t0)
    // The file as the index knew it: at this path of that scan's tree, or anywhere by its CID.
    // The path as resolved (through any symlink): the index's records name real paths.
    const rel = entry.path.join('/')
    let known: Holder | undefined
    const scan = rel !== '' && c.versions ? await this.#scanOfRoot(root.toString()) : undefined
    if (scan && c.versions) {
      const m = c.mirrors.find((x) => x.name === scan.mirror)
      const f = m ? await c.versions.at(m.name, rel, scan.id).catch(() => undefined) : undefined
      if (m && f && f.cid === cid)
        known = {
          mirror: m,
          path: f.path,
          size: f.size,
          mtimeMs: f.mtimeMs,
          ...(f.sha256 ? { sha256: f.sha256 } : {}),
          state: 'past',
        }
    }
    known ??= (await this.#holders(cid))[0]
    let size: number | undefined
    if (kind.kind === 'file') size = kind.size
    else if (kind.kind === 'unknown') size = known?.size
    if (size === undefined) throw new TrustlessNotHeldError(cid)
    const q = new URLSearchParams(query)
    const name = q.get('filename') ?? (path.length > 0 ? path[path.length - 1]! : (known?.path ?? cid))
    const rep = this.#representation(
      name,
      cid,
      size,
      known?.mtimeMs,
      known?.sha256,
      { roots: entry.roots, root: root.toString(), path: rawPath },
      ['Cache-Control', IMMUTABLE, 'X-Content-Type-Options', 'nosniff'],
    )
    // A name that is not the path's last segment (`?filename=`, or a bare CID) is a download.
    if (q.has('filename') || path.length === 0) {
      const safe = name
        .slice(name.lastIndexOf('/') + 1)
        .replace(/[^\x20-\x7e]/g, '_')
        .replace(/["\\]/g, '_')
      if (q.has('filename') || known) rep.head.push('Content-Disposition', `inline; filename="${safe}"`)
    }
    const body = await this.#bodyOf(undefined, cid, known ? { ...known, size } : undefined)
    if (body.kind === 'fetch') body.file.size = size
    return c.send(req, res, rep, body, t0)
  }

  /** The served mirror's scan whose root is `root`, if it is one. */
  async #scanOfRoot(root: string): Promise<ScanSummary | undefined> {
    for (const m of this.#c.mirrors) {
      const hit = await this.#rootScans.of(m.name, root).catch(() => undefined)
      if (hit) return hit
    }
    return undefined
  }
}

function rootEntry(s: ScanSummary): Record<string, unknown> {
  return {
    scan: s.id,
    ended: s.ended,
    rootCid: s.rootCid,
    url: `/ipfs/${s.rootCid}/`,
    files: s.files,
    bytes: s.bytes,
  }
}
