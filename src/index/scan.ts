/**
 * One scan of a mirror: the walker threads list the tree in key order while this thread reads the
 * stored index in the same order and merge-joins the two. An entry whose kind and stat (size, mtime,
 * ctime, inode) match its committed record costs no hashing and no write; everything else is hashed
 * through `src/cid` (a HashPool), and directories are re-encoded only when something below them changed.
 *
 * The parts, in scan/: a cursor per source (walk-cursor.ts, stored-cursor.ts), the hints an
 * interrupted scan left (hints.ts), the hash queue that puts hashed entries back in key order
 * (hash-queue.ts), what each entry does to the index (apply.ts), the directory stack (dir-stack.ts),
 * and the writes, where the crash-safety promise is kept (writes.ts).
 */
import { realpathSync, statSync } from 'node:fs'
import { resolve } from 'node:path'
import type { HashPool } from '../cid/index.ts'
import {
  MirrorRootNotDirectoryError,
  MirrorRootNotFoundError,
  ScanAbortedError,
  UnreadablePathError,
} from './errors.ts'
import { compareKeys } from './keys.ts'
import { clearGone, goneKeys } from './local.ts'
import type { ScanProgress, ScanSummary, StoredRecord } from './records.ts'
import { Apply } from './scan/apply.ts'
import { loadCid, loadedCid } from './scan/cid-lib.ts'
import { DirStack } from './scan/dir-stack.ts'
import { type Entry, kindName, newEntry, recordMatches } from './scan/entry.ts'
import { HashQueue } from './scan/hash-queue.ts'
import { Hints } from './scan/hints.ts'
import { ProgressReporter } from './scan/progress.ts'
import { READ_BATCH, StoredCursor } from './scan/stored-cursor.ts'
import { ScanWalk, SPLIT_WALK_AT } from './scan/walk.ts'
import { WalkCursor } from './scan/walk-cursor.ts'
import { ScanWrites } from './scan/writes.ts'
import { StatCacheWriter } from './statcache.ts'
import { type MirrorStore, mirrorsLevel, type RawReader } from './store.ts'
import { Kind } from './walk-protocol.ts'

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
  /**
   * Also compute each multi-chunk file it hashes' whole SHA-256, from the same reads (such a file is
   * hashed by one thread, not split): the record's `sha256`, the gateway's `Repr-Digest`. Default off.
   */
  wholeFileDigest?: boolean
}

/** unixfs-v1-2025's chunk size (cid/profile.ts): a file larger than this has more than one leaf. */
const CHUNK_BYTES = 1024 * 1024

/** A multi-chunk file's record without its whole SHA-256 (a one-chunk file's CID is its digest). */
function lacksDigest(r: StoredRecord): boolean {
  return r.kind === 'file' && r.size > CHUNK_BYTES && r.sha256 === undefined
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

/** What the scan found in the database before merging. */
interface Begun {
  id: number
  /** A scan was running (`meta/scanning`) when this one began: one was interrupted. */
  interrupted: boolean
  hasJournal: boolean
  previous: ScanSummary | undefined
  paths: RawReader<StoredRecord>
  firstPaths: [string, StoredRecord][]
  /** The stat cache this thread writes, for a first scan (its walk has no stats). */
  cacheOut: StatCacheWriter | undefined
}

/**
 * Marks the scan as running, reads the first stored records and, with no stat cache, starts the
 * walk (listed when nothing at all is stored). Undoes what it did on failure.
 */
async function begin(store: MirrorStore, root: string, startedMs: number, walk: ScanWalk): Promise<Begun> {
  let paths: RawReader<StoredRecord> | undefined
  let cacheOut: StatCacheWriter | undefined
  try {
    await store.ready()
    const previous = await store.lastScan()
    const { id, interrupted } = await store.beginScan(startedMs)
    walk.walker.setToken(id)
    await mirrorsLevel(store.db).put(store.mirror, { root, sublevel: store.mirror })
    const hasJournal = await store.hasJournal()
    paths = store.readPaths()
    const firstPaths = await paths.nextv(READ_BATCH)
    if (!walk.cache) {
      // Nothing stored, not even an interrupted scan's work: no file has anything to be compared with.
      const listed = firstPaths.length === 0 && !hasJournal
      // Such a walk writes no stat cache (it has no stats): this thread writes it, as entries settle.
      if (listed) cacheOut = new StatCacheWriter(walk.files.temp)
      walk.startPlain(listed)
    }
    return { id, interrupted, hasJournal, previous, paths, firstPaths, cacheOut }
  } catch (err) {
    cacheOut?.abort()
    await walk.walker.close()
    await paths?.close()
    walk.discardCache()
    throw err
  }
}

function newSummary(
  store: MirrorStore,
  id: number,
  root: string,
  startedMs: number,
  resumed: boolean,
): ScanSummary {
  return {
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
    resumed,
    rootCid: '',
    rootTsize: 0,
  }
}

/**
 * The merge-join's next entry: the smaller key of the two cursors, taken from the walk, the index, or
 * both when they are equal. Undefined when both are at their end. Both cursors must have a batch.
 */
function takeNext(walk: WalkCursor, stored: StoredCursor, lastCommitted: number): Entry | undefined {
  const wk = walk.key
  const sk = stored.key
  if (wk === undefined && sk === undefined) return undefined
  const c = wk === undefined ? 1 : sk === undefined ? -1 : compareKeys(wk, sk)
  const e = newEntry(c <= 0 ? wk! : sk!)
  if (c <= 0) walk.take(e)
  if (c >= 0) {
    const r = stored.take()
    if (r.scan <= lastCommitted) e.committed = r
    else e.leftover = r
  }
  return e
}

export async function runScan(
  store: MirrorStore,
  rootArg: string,
  opts: ScanOptions = {},
): Promise<ScanSummary> {
  const root = checkRoot(rootArg)
  const { signal } = opts
  signal?.throwIfAborted()
  const startedMs = Date.now()
  const gone = await goneKeys(store)
  const walk = new ScanWalk(store, root, opts.splitWalkAt ?? SPLIT_WALK_AT)
  const { id, interrupted, hasJournal, previous, paths, firstPaths, cacheOut } = await begin(
    store,
    root,
    startedMs,
    walk,
  )
  const walker = walk.walker
  const throwIfAborted = (): void => {
    if (signal?.aborted) throw new ScanAbortedError(store.mirror)
  }

  const s = newSummary(store, id, root, startedMs, interrupted)
  const wholeDigest = opts.wholeFileDigest === true
  if (wholeDigest) s.wholeFileDigest = true
  // The option just turned on: records of files unchanged since have no digest yet, so no shortcut
  // over an unchanged tree. With the option on, a multi-chunk file's record without a digest is
  // hashed again, once (turned on, or hashed on this thread after it changed mid-hash, or a hint).
  const backfill = wholeDigest && previous?.wholeFileDigest !== true
  const reporter = new ProgressReporter(s, previous, opts.onProgress, opts.progressIntervalMs ?? 100)
  const progress = reporter.progress
  const writes = new ScanWrites(store, id, startedMs)
  const dirs = new DirStack(writes)
  const apply = new Apply({ root, summary: s, dirs, writes, cacheOut, gone })
  const hints = new Hints(id, hasJournal ? store.readJournal() : undefined)
  const hashes = new HashQueue({
    root,
    progress,
    pool: opts.pool,
    throwIfAborted,
    wholeDigest,
  })
  let cacheInstalled = false

  const applyEntry = (e: Entry): Promise<void> => apply.entry(e)
  const reportProgress = (): void => reporter.report(false)
  const drain = async (all: boolean): Promise<void> => {
    await hashes.drain(all, applyEntry, reportProgress)
    await writes.flush(false)
  }

  const abortListener = (): void => {
    void walker.close()
  }
  signal?.addEventListener('abort', abortListener)

  try {
    const same = (await walk.cacheTrusted(
      store,
      root,
      previous?.root,
      !interrupted && !hasJournal && !backfill,
    ))
      ? await walker.settle()
      : undefined
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
      reporter.report(true)
      await store.commit(id, s, { keepStatCache: true })
      reporter.report(true)
      return s
    }

    const walked = await WalkCursor.open(walker)
    const stored = new StoredCursor(paths, firstPaths)
    const last = store.last
    for (;;) {
      if (walked.batchUsed) {
        throwIfAborted()
        progress.walked += walked.batchLength
        reporter.report(false)
        await writes.flush(false)
        await walked.nextBatch()
      }
      if (stored.batchUsed) await stored.nextBatch()
      const e = takeNext(walked, stored, last)
      if (!e) break
      if (e.kind === Kind.File || e.kind === Kind.Symlink) {
        const kind = kindName(e.kind)
        if (recordMatches(e.committed, kind, e) && !(wholeDigest && lacksDigest(e.committed))) {
          // Unchanged: no hash, no write.
          if (hashes.empty) {
            if (!dirs.holds(e.key)) await dirs.closeUntil(e.key)
            apply.unchanged(e)
            continue
          }
          e.unchanged = true
        } else {
          const hint = await hints.for(e, kind)
          if (hint) e.result = hint
          else hashes.hash(loadedCid() ?? (await loadCid()), e)
        }
      }
      if (hashes.empty && !e.hashing) await apply.entry(e)
      else {
        hashes.push(e)
        await drain(false)
      }
    }
    await drain(true)
    await dirs.closeUntil(undefined)
    if (dirs.root) {
      s.rootCid = dirs.root.cid
      s.rootTsize = dirs.root.tsize
    }
    s.ended = new Date().toISOString()
    progress.phase = 'commit'
    reporter.report(true)
    await writes.flush(true)
    throwIfAborted()
    await store.commit(id, s)
    await clearGone(store, gone)
    const cacheWritten = cacheOut
      ? apply.cacheTrue && cacheOut.finish(id, root)
      : apply.cacheTrue && (await walker.cacheWritten())
    if (cacheWritten) {
      walk.installCache()
      cacheInstalled = true
      await store.setStatCacheToken(id)
    }
    reporter.report(true)
    return s
  } catch (err) {
    try {
      await writes.flush(true) // keep what was hashed for the next scan
    } catch {}
    if (signal?.aborted && !(err instanceof ScanAbortedError))
      throw new ScanAbortedError(store.mirror, { cause: err })
    throw err
  } finally {
    signal?.removeEventListener('abort', abortListener)
    await walker.close()
    if (!cacheInstalled) {
      cacheOut?.abort()
      walk.discardCache()
    }
    await paths.close()
    await hints.close()
    await hashes.destroy()
  }
}
