/**
 * One scan of a mirror: the walker thread lists the tree in key order while this thread reads the
 * stored index in the same order and merge-joins the two. An entry whose kind and stat (size, mtime,
 * ctime, inode) match its present record costs no hashing and no write; everything else is hashed
 * through `src/cid` (a HashPool), and directories are re-encoded only when something below them changed.
 */
import { lstatSync, readlinkSync, realpathSync, statSync } from 'node:fs'
import { resolve } from 'node:path'
import type { DirEntryLike, EntryKind, HashPool } from '../cid/index.ts'
import {
  MirrorRootNotDirectoryError,
  MirrorRootNotFoundError,
  ScanAbortedError,
  UnreadablePathError,
} from './errors.ts'
import { compareKeys, isAncestor, pathOf } from './keys.ts'
import { encodeRecord, type ScanProgress, type ScanSummary, type StoredRecord } from './records.ts'
import {
  discardStatCache,
  installStatCache,
  loadStatCache,
  StatCacheWriter,
  splitStatCache,
  statCacheEntries,
  statCacheFiles,
} from './statcache.ts'
import { cidKey, encodeJournal, type JournalEntry, type MirrorStore, mirrorsLevel } from './store.ts'
import { Walker } from './walker.ts'

export interface ScanOptions {
  signal?: AbortSignal
  /** Called at most every `progressIntervalMs` (default 100) and once at the end of each phase. */
  onProgress?: (p: ScanProgress) => void
  progressIntervalMs?: number
  /** A pool to hash with; one is made (and destroyed) for the scan otherwise. */
  pool?: HashPool
  /**
   * A walk compared with a stat cache of at least this many entries is split over two walker threads
   * (default 4096; tests lower it to split small trees).
   */
  splitWalkAt?: number
}

/** Walker threads for a walk compared with a stat cache (the machines this is made for have 2 cores). */
const WALK_THREADS = 2
const SPLIT_WALK_AT = 4096

const KINDS: EntryKind[] = ['file', 'dir', 'symlink']
/** Entries waiting in order behind the oldest unhashed one. */
const MAX_QUEUE = 8192
/** Files handed to the hash pool and not finished. */
const MAX_JOBS = 1024
/** Writes go out when this many are buffered, or after FLUSH_MS; one batch is written while the next fills. */
const FLUSH_OPS = 4096
const FLUSH_MS = 1000

type CidLib = typeof import('../cid/index.ts')
let cidLib: CidLib | undefined

/**
 * The CID engine, loaded on first use: an unchanged rescan hashes nothing and re-encodes no directory,
 * so it never pays for loading it (multiformats, dag-pb, the CAR code: a sizeable share of startup).
 */
async function loadCid(): Promise<CidLib> {
  if (!cidLib) {
    cidLib = await import('../cid/index.ts')
  }
  return cidLib
}

interface Hashed {
  cid: string
  /** The CID's bytes when at hand (fresh hashes); parsed from `cid` otherwise. */
  bytes: Uint8Array | undefined
  tsize: number
  size: number
  target?: string
  reused: boolean
}

/** One path in key order: walked (on disk now), stored (committed record), or both. */
interface Ev {
  key: string
  /** -1: not on disk; else 0 file, 1 dir, 2 symlink. */
  kind: number
  size: number
  mtimeMs: number
  ctimeMs: number
  ino: number
  /** The committed record at this key. */
  prev: StoredRecord | undefined
  /** An uncommitted record at this key, left by an interrupted scan. */
  stale: StoredRecord | undefined
  /** The relative path, once computed. */
  path: string | undefined
  done: boolean
  res: Hashed | undefined
  err: unknown
  /** Kind and stat equal the present record: nothing to hash or write. */
  unchanged: boolean
}

interface Child {
  key: string
  cid: string
  bytes: Uint8Array | undefined
  tsize: number
}

interface Frame {
  ev: Ev
  children: Child[]
  dirty: boolean
}

function statEqual(r: StoredRecord, ev: Ev): boolean {
  return r.size === ev.size && r.mtimeMs === ev.mtimeMs && r.ctimeMs === ev.ctimeMs && r.ino === ev.ino
}

function checkRoot(root: string): string {
  let real: string
  try {
    real = realpathSync(resolve(root))
    if (!statSync(real).isDirectory()) throw new MirrorRootNotDirectoryError(root)
  } catch (err) {
    if (err instanceof MirrorRootNotDirectoryError) throw err
    const code = (err as NodeJS.ErrnoException).code
    if (code === 'ENOENT' || code === 'ENOTDIR') throw new MirrorRootNotFoundError(root, { cause: err })
    throw new UnreadablePathError(root, (err as Error).message, { cause: err })
  }
  return real
}

export async function runScan(
  store: MirrorStore,
  rootArg: string,
  opts: ScanOptions = {},
): Promise<ScanSummary> {
  const root = checkRoot(rootArg)
  const { signal, onProgress } = opts
  signal?.throwIfAborted()
  const db = store.db
  const startedMs = Date.now()
  // The walk starts first, compared with the stat cache if there is one (statcache.ts), split over
  // two threads; whether the cache is to be believed is decided while it runs.
  const cacheFiles = statCacheFiles(db.location, store.mirror)
  const entries = statCacheEntries(cacheFiles.file)
  const threads = entries !== undefined && entries >= (opts.splitWalkAt ?? SPLIT_WALK_AT) ? WALK_THREADS : 1
  const walker = new Walker(root, { threads, write: cacheFiles.temp })
  // The threads boot (tens of milliseconds) while the cache is read and split.
  const cache = entries !== undefined ? loadStatCache(cacheFiles.file) : undefined
  if (cache) walker.start({ sab: cache.sab, parts: splitStatCache(cache, threads) })
  let previous: ScanSummary | undefined
  let id: number
  let interrupted: boolean
  let hasJournal: boolean
  let pIt: ReturnType<MirrorStore['readPaths']> | undefined
  let pFirst: [string, StoredRecord][]
  let cacheOut: StatCacheWriter | undefined
  try {
    await store.ready()
    previous = await store.lastScan()
    ;({ id, interrupted } = await store.beginScan(startedMs))
    walker.setToken(id)
    await mirrorsLevel(db).put(store.mirror, { root, sublevel: store.mirror })
    hasJournal = await store.hasJournal()
    pIt = store.readPaths()
    pFirst = await pIt.nextv(1000)
    // Nothing stored, not even an interrupted scan's work: no file has anything to be compared with.
    if (!cache) {
      const listed = pFirst.length === 0 && !hasJournal
      // Such a walk writes no stat cache (it has no stats): this thread writes it, as entries settle.
      if (listed) cacheOut = new StatCacheWriter(cacheFiles.temp)
      walker.start(undefined, { listed })
    }
  } catch (err) {
    cacheOut?.abort()
    await walker.close()
    await pIt?.close()
    discardStatCache(cacheFiles)
    throw err
  }

  const s: ScanSummary = {
    mirror: store.mirror,
    id,
    root,
    started: new Date(startedMs).toISOString(),
    ended: '',
    files: 0,
    dirs: 0,
    bytes: 0,
    added: 0,
    changed: 0,
    touched: 0,
    deleted: 0,
    unchanged: 0,
    evicted: 0,
    filesHashed: 0,
    bytesHashed: 0,
    reused: 0,
    resumed: interrupted,
    rootCid: '',
    rootTsize: 0,
  }
  const progress: ScanProgress = {
    phase: 'scan',
    walked: 0,
    filesHashed: 0,
    bytesHashed: 0,
    filesQueued: 0,
    bytesQueued: 0,
  }
  if (previous) progress.total = previous.files + previous.dirs + previous.evicted
  const interval = opts.progressIntervalMs ?? 100
  let lastReport = 0
  const report = (force: boolean): void => {
    if (!onProgress) return
    const now = Date.now()
    if (!force && now - lastReport < interval) return
    lastReport = now
    progress.filesHashed = s.filesHashed
    progress.bytesHashed = s.bytesHashed
    onProgress({ ...progress })
  }

  // Made on first use: an unchanged rescan needs no hash threads (each costs a module load on a core).
  let ownPool: HashPool | undefined
  const pool = (lib: CidLib): HashPool => {
    if (opts.pool) return opts.pool
    ownPool ??= new lib.HashPool()
    return ownPool
  }
  /** Cleared when this scan records some entry otherwise than its walker saw it: its cache is then not kept. */
  let cacheTrue = true
  let cacheInstalled = false
  const jIt = hasJournal ? store.readJournal() : undefined

  // Writes: direct puts for paths with no committed record, journal entries for the rest. Raw keys
  // and JSON text on the root database (store.ts); one batch in flight while the next fills.
  const { pPrefix, cPrefix, jPrefix } = store
  const idText = String(id)
  const out = store.rawWriter()
  let lastFlush = Date.now()
  const flush = async (force: boolean): Promise<void> => {
    if (out.length > 0 && (force || out.length >= FLUSH_OPS || Date.now() - lastFlush >= FLUSH_MS)) {
      lastFlush = Date.now()
      await out.send()
    }
    if (force) await out.settle()
  }

  const write = (ev: Ev, rec: StoredRecord): void => {
    const prev = ev.prev
    if (prev) {
      const value = encodeJournal(id, prev.state === 'deleted' ? null : prev.cid, rec)
      out.put(jPrefix + ev.key, value)
      return
    }
    const path = ev.path ?? pathOf(ev.key)
    out.put(pPrefix + ev.key, encodeRecord(rec))
    if (ev.stale && ev.stale.cid !== rec.cid) out.del(cPrefix + cidKey(ev.stale.cid, path))
    out.put(cPrefix + cidKey(rec.cid, path), idText)
  }

  const dropStale = (ev: Ev): void => {
    const st = ev.stale!
    out.del(pPrefix + ev.key)
    out.del(cPrefix + cidKey(st.cid, pathOf(ev.key)))
  }

  const newRecord = (ev: Ev, kind: EntryKind, cid: string, tsize: number, size: number): StoredRecord => {
    const rec: StoredRecord = {
      kind,
      cid,
      tsize,
      size,
      mtimeMs: ev.mtimeMs,
      ctimeMs: ev.ctimeMs,
      ino: ev.ino,
      firstSeen: ev.prev?.firstSeen ?? ev.stale?.firstSeen ?? startedMs,
      lastSynced: startedMs,
      state: 'present',
      scan: id,
    }
    return rec
  }

  // Journal hints from an interrupted scan, read forward as keys needing a hash come by.
  let jBuf: [string, JournalEntry][] = []
  let jPos = 0
  let jDone = !jIt
  const journalHint = async (key: string): Promise<StoredRecord | undefined> => {
    for (;;) {
      if (jPos === jBuf.length) {
        if (jDone) return undefined
        jBuf = await jIt!.nextv(1000)
        jPos = 0
        if (jBuf.length === 0) {
          jDone = true
          return undefined
        }
      }
      const [k, e] = jBuf[jPos]!
      const c = compareKeys(k, key)
      if (c < 0) {
        jPos++
        continue
      }
      if (c > 0) return undefined
      jPos++
      return e.scan !== id ? e.rec : undefined
    }
  }

  const hintFor = async (ev: Ev, kind: EntryKind): Promise<Hashed | undefined> => {
    let h = ev.stale
    if (!(h && h.kind === kind && h.state === 'present' && statEqual(h, ev)) && !jDone)
      h = await journalHint(ev.key)
    if (!h || h.kind !== kind || h.state !== 'present' || !statEqual(h, ev)) return undefined
    const out: Hashed = { cid: h.cid, bytes: undefined, tsize: h.tsize, size: h.size, reused: true }
    if (h.target !== undefined) out.target = h.target
    return out
  }

  const fullPath = (key: string): string => (key === '' ? root : `${root}/${pathOf(key)}`)

  const hashSymlink = async (lib: CidLib, path: string): Promise<Hashed> => {
    const target = readlinkSync(path)
    const n = await lib.cidOfSymlink(target)
    const size = Buffer.byteLength(target)
    return { cid: n.cid.toString(), bytes: n.cid.bytes, tsize: n.tsize, size, target, reused: false }
  }

  // Hash jobs answer through callbacks (no promise per file); `drain` sleeps on `wake` until the
  // oldest one is done.
  let jobs = 0
  let wake: (() => void) | undefined
  const start = (lib: CidLib, ev: Ev): void => {
    jobs++
    // A listed file (walk-protocol.ts `listed`) has no stat yet: the pool's worker stats it.
    const listed = Number.isNaN(ev.size)
    const queued = listed ? 0 : ev.size
    progress.filesQueued++
    progress.bytesQueued += queued
    const finish = (): void => {
      ev.done = true
      jobs--
      progress.filesQueued--
      progress.bytesQueued -= queued
      const w = wake
      wake = undefined
      w?.()
    }
    const rel = pathOf(ev.key)
    ev.path = rel
    const path = ev.key === '' ? root : `${root}/${rel}`
    if (ev.kind === 2) {
      hashSymlink(lib, path).then(
        (r) => {
          ev.res = r
          finish()
        },
        (err) => {
          ev.err = err
          finish()
        },
      )
      return
    }
    pool(lib).submitRaw(
      path,
      listed ? undefined : ev.size,
      (err, cid, bytes, size, tsize, mtimeMs, ctimeMs, ino) => {
        if (err) ev.err = err
        else {
          ev.res = { cid: cid!, bytes, tsize: tsize!, size: size!, reused: false }
          if (listed) {
            ev.size = size!
            ev.mtimeMs = mtimeMs!
            ev.ctimeMs = ctimeMs!
            ev.ino = ino!
          }
        }
        finish()
      },
    )
  }
  const untilDone = (ev: Ev): Promise<void> | undefined => {
    if (ev.done) return undefined
    return new Promise<void>((resolve) => {
      wake = resolve
    })
  }

  // Directory frames, innermost last.
  const stack: Frame[] = []

  const closeFrame = async (f: Frame): Promise<void> => {
    const ev = f.ev
    const p = ev.prev
    let cid: string
    let bytes: Uint8Array | undefined
    let tsize: number
    if (!f.dirty && p && p.kind === 'dir' && p.state === 'present') {
      cid = p.cid
      tsize = p.tsize
    } else {
      const lib = await loadCid()
      const off = ev.key === '' ? 0 : ev.key.length + 1
      const entries: DirEntryLike[] = f.children.map((c) => {
        const b = c.bytes ?? lib.fromBase32(c.cid)
        return { name: c.key.slice(off), cid: { bytes: b, byteLength: b.length }, tsize: c.tsize }
      })
      const n = await lib.cidOfDirectory(entries)
      bytes = n.cid.bytes
      cid = n.cid.toString()
      tsize = n.tsize
    }
    const changed = !(p && p.kind === 'dir' && p.state === 'present' && p.cid === cid)
    const parent = stack[stack.length - 1]
    if (parent) {
      parent.children.push({ key: ev.key, cid, bytes, tsize })
      if (changed) parent.dirty = true
    } else {
      s.rootCid = cid
      s.rootTsize = tsize
    }
    if (changed || !statEqual(p!, ev)) write(ev, newRecord(ev, 'dir', cid, tsize, 0))
  }

  /** Close directories that do not contain `key` (all of them for undefined). */
  const closeUntil = async (key: string | undefined): Promise<void> => {
    for (;;) {
      const top = stack[stack.length - 1]
      if (!top || (key !== undefined && isAncestor(top.ev.key, key))) return
      stack.pop()
      await closeFrame(top)
    }
  }

  const gone = (ev: Ev): void => {
    if (ev.stale) dropStale(ev)
    const p = ev.prev
    if (!p) return
    const top = stack[stack.length - 1]
    const parentOpen =
      top !== undefined &&
      isAncestor(top.ev.key, ev.key) &&
      ev.key.lastIndexOf('\x00') === (top.ev.key === '' ? -1 : top.ev.key.length)
    if (p.state === 'evicted') {
      // Removed on purpose: still part of the mirror and of its directory's CID.
      s.evicted++
      if (parentOpen) top.children.push({ key: ev.key, cid: p.cid, bytes: undefined, tsize: p.tsize })
      return
    }
    if (p.state === 'deleted') return
    if (p.kind !== 'dir') s.deleted++
    if (parentOpen) top.dirty = true
    const rec: StoredRecord = { ...p, state: 'deleted', scan: id }
    out.put(jPrefix + ev.key, encodeJournal(id, p.cid, rec))
  }

  const unchanged = (ev: Ev, p: StoredRecord): void => {
    stack[stack.length - 1]!.children.push({ key: ev.key, cid: p.cid, bytes: undefined, tsize: p.tsize })
    s.unchanged++
    s.files++
    if (ev.kind === 0) s.bytes += ev.size
  }

  /** Applies one event, in key order. */
  const handle = async (ev: Ev): Promise<void> => {
    await closeUntil(ev.key)
    if (ev.kind < 0) return gone(ev)
    if (ev.unchanged) return unchanged(ev, ev.prev!)
    if (ev.kind === 1) {
      s.dirs++
      if (ev.stale && ev.stale.kind !== 'dir') dropStale(ev)
      // A file or symlink that became a directory is a deletion.
      if (ev.prev && ev.prev.kind !== 'dir' && ev.prev.state !== 'deleted') s.deleted++
      stack.push({ ev, children: [], dirty: false })
      cacheOut?.add(ev.key, 1, 0, ev.mtimeMs, ev.ctimeMs, ev.ino)
      return
    }
    let r = ev.res
    if (!r) {
      const err = ev.err
      const lib = cidLib ?? (await loadCid())
      if (err instanceof lib.FileChangedError) {
        // Written to while we hashed: look again, once.
        cacheTrue = false
        const st = lstatSync(fullPath(ev.key), { throwIfNoEntry: false })
        if (!st?.isFile()) return gone({ ...ev, kind: -1 })
        ev.size = st.size
        ev.mtimeMs = st.mtimeMs
        ev.ctimeMs = st.ctimeMs
        ev.ino = st.ino
        const f = await lib.cidOfFile(fullPath(ev.key))
        if (f.size !== ev.size) throw err
        r = { cid: f.cid.toString(), bytes: f.cid.bytes, tsize: f.tsize, size: f.size, reused: false }
      } else if (err instanceof lib.PathNotFoundError || (err as NodeJS.ErrnoException)?.code === 'ENOENT') {
        cacheTrue = false
        return gone({ ...ev, kind: -1 })
      } else if (err !== undefined) {
        throw err
      } else {
        throw new Error(`no result for ${pathOf(ev.key)}`)
      }
    }
    const kind = KINDS[ev.kind]!
    const p = ev.prev
    if (r.reused) s.reused++
    else {
      s.filesHashed++
      if (kind === 'file') s.bytesHashed += r.size
    }
    if (kind === 'file') {
      s.files++
      s.bytes += ev.size
    } else s.files++
    const parent = stack[stack.length - 1]!
    parent.children.push({ key: ev.key, cid: r.cid, bytes: r.bytes, tsize: r.tsize })
    // Counts are of files and symlinks: a directory that became a file is an addition.
    const wasPresent = p !== undefined && p.state !== 'deleted' && p.kind !== 'dir'
    if (!wasPresent) s.added++
    else if (p.kind !== kind || p.cid !== r.cid) s.changed++
    else s.touched++
    if (!wasPresent || p.kind !== kind || p.cid !== r.cid || p.state !== 'present') parent.dirty = true
    const rec = newRecord(ev, kind, r.cid, r.tsize, kind === 'file' ? ev.size : r.size)
    if (r.target !== undefined) rec.target = r.target
    write(ev, rec)
    cacheOut?.add(ev.key, ev.kind, ev.size, ev.mtimeMs, ev.ctimeMs, ev.ino)
  }

  // The in-order queue behind the oldest unfinished hash.
  const queue: Ev[] = []
  let qHead = 0
  const drain = async (all: boolean): Promise<void> => {
    while (qHead < queue.length) {
      const head = queue[qHead]!
      if (!head.done) {
        if (!all && queue.length - qHead < MAX_QUEUE && jobs < MAX_JOBS) break
        while (!head.done) await untilDone(head)
        if (signal?.aborted) throw new ScanAbortedError(store.mirror)
      }
      queue[qHead++] = undefined as unknown as Ev
      await handle(head)
      report(false)
    }
    if (qHead === queue.length) {
      queue.length = 0
      qHead = 0
    } else if (qHead > 4096) {
      queue.splice(0, qHead)
      qHead = 0
    }
    await flush(false)
  }

  const abortListener = (): void => {
    void walker.close()
  }
  signal?.addEventListener('abort', abortListener)

  try {
    // Believed only when it is the cache of the committed index and no interrupted scan left work.
    const trusted =
      cache !== undefined &&
      !interrupted &&
      !hasJournal &&
      previous?.root === root &&
      cache.root === root &&
      cache.token === (await store.statCacheToken()) &&
      cache.checksumOk()
    const same = trusted ? await walker.settle() : undefined
    if (same && previous) {
      // The tree is entry for entry what the stat cache, and so the committed index, holds.
      s.files = same.files
      s.dirs = same.dirs
      s.bytes = same.bytes
      s.unchanged = same.files
      s.evicted = previous.evicted
      s.rootCid = previous.rootCid
      s.rootTsize = previous.rootTsize
      s.ended = new Date().toISOString()
      progress.walked = same.files + same.dirs
      progress.phase = 'commit'
      report(true)
      await store.commit(id, s, { keepStatCache: true })
      report(true)
      return s
    }

    let pb: [string, StoredRecord][] | null = pFirst.length === 0 ? null : pFirst
    let pNext = pb ? pIt.nextv(1000) : Promise.resolve([] as [string, StoredRecord][])
    let pi = 0
    let wb = await walker.next()
    let wi = 0
    const last = store.last

    for (;;) {
      if (wb && wi === wb.keys.length) {
        if (signal?.aborted) throw new ScanAbortedError(store.mirror)
        progress.walked += wb.keys.length
        report(false)
        await flush(false)
        wb = await walker.next()
        wi = 0
      }
      if (pb && pi === pb.length) {
        pb = await pNext
        pi = 0
        if (pb.length === 0) pb = null
        else pNext = pIt.nextv(1000)
      }
      const wk = wb ? wb.keys[wi] : undefined
      const pe = pb ? pb[pi] : undefined
      if (wk === undefined && pe === undefined) break
      const c = wk === undefined ? 1 : pe === undefined ? -1 : compareKeys(wk, pe[0])
      const ev: Ev = {
        key: c <= 0 ? wk! : pe![0],
        kind: -1,
        size: 0,
        mtimeMs: 0,
        ctimeMs: 0,
        ino: 0,
        prev: undefined,
        stale: undefined,
        path: undefined,
        done: true,
        res: undefined,
        err: undefined,
        unchanged: false,
      }
      if (c <= 0) {
        const o = wi * 5
        const nums = wb!.nums
        ev.kind = nums[o]!
        ev.size = nums[o + 1]!
        ev.mtimeMs = nums[o + 2]!
        ev.ctimeMs = nums[o + 3]!
        ev.ino = nums[o + 4]!
        wi++
      }
      if (c >= 0) {
        const r = pe![1]
        if (r.scan <= last) ev.prev = r
        else ev.stale = r
        pi++
      }
      if (ev.kind === 0 || ev.kind === 2) {
        const p = ev.prev
        const kind = KINDS[ev.kind]!
        if (p && p.state === 'present' && p.kind === kind && statEqual(p, ev)) {
          // Unchanged: no hash, no write.
          if (queue.length === qHead) {
            const top = stack[stack.length - 1]
            if (!top || !isAncestor(top.ev.key, ev.key)) await closeUntil(ev.key)
            unchanged(ev, p)
            continue
          }
          ev.unchanged = true
        } else {
          const hint = await hintFor(ev, kind)
          if (hint) ev.res = hint
          else {
            ev.done = false
            start(cidLib ?? (await loadCid()), ev)
          }
        }
      }
      if (queue.length === qHead && ev.done) await handle(ev)
      else {
        queue.push(ev)
        await drain(false)
      }
    }
    await drain(true)
    await closeUntil(undefined)
    s.ended = new Date().toISOString()
    progress.phase = 'commit'
    report(true)
    await flush(true)
    if (signal?.aborted) throw new ScanAbortedError(store.mirror)
    await store.commit(id, s)
    const cacheWritten = cacheOut
      ? cacheTrue && cacheOut.finish(id, root)
      : cacheTrue && (await walker.cacheWritten())
    if (cacheWritten) {
      installStatCache(cacheFiles)
      cacheInstalled = true
      await store.setStatCacheToken(id)
    }
    report(true)
    return s
  } catch (err) {
    try {
      await flush(true) // keep what was hashed for the next scan
    } catch {}
    if (signal?.aborted && !(err instanceof ScanAbortedError))
      throw new ScanAbortedError(store.mirror, { cause: err })
    throw err
  } finally {
    signal?.removeEventListener('abort', abortListener)
    await walker.close()
    if (!cacheInstalled) {
      cacheOut?.abort()
      discardStatCache(cacheFiles)
    }
    await pIt.close()
    await jIt?.close()
    await ownPool?.destroy()
  }
}
