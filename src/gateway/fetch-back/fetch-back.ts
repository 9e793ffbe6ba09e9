/**
 * The gateway's fetch-back (issue 13, DESIGN promise 2): an evicted file's CID fetched from the sources
 * of plan.ts in order, verified block by block, streamed to the client while the cache file is
 * written, shared by every request for the file, within limits on fetches and bytes in flight.
 */
import { randomBytes } from 'node:crypto'
import { mkdirSync, readdirSync, unlinkSync } from 'node:fs'
import { type FileHandle, open, stat } from 'node:fs/promises'
import { basename, dirname, join } from 'node:path'
import type { Dispatcher } from 'undici'
import { type CopyRecord, checkRelPath, type PathRecord, type PlacedStat } from '../../index/index.ts'
import { type IpfsNode, parseCid } from '../../ipfs/index.ts'
import type { ByteRange, EvictedFile, FetchBack, FetchBackResult } from '../index.ts'
import { FetchBackCacheShortError, FetchFailedError } from './errors.ts'
import type { HolderNodes } from './holder-sources.ts'
import { type KnownNodes, knownLeaves, type Leaf } from './leaf-plan.ts'
import { FetchLimits } from './limits.ts'
import { type FetchBackFigures, FetchBackMetrics } from './metrics.ts'
import { PastCache, type PastCacheOptions } from './past-cache.ts'
import { planSources } from './plan.ts'
import { rangedBytes } from './ranged-read.ts'
import { SharedFetch, type SourceTimeouts } from './shared-fetch.ts'
import type { FetchSource } from './sources.ts'

/**
 * The index's local states of one mirror (`MirrorIndex.local`): told when a file is back in the tree,
 * with the stat it has there and the time, from which the janitor counts `refetched_ttl`.
 */
export interface RefetchRecorder {
  markRefetched(
    relPath: string,
    opts: { cid: string; stat: PlacedStat; at?: number },
  ): Promise<PathRecord | undefined>
}

/** The copies part of the index the fetch-back reads (CopyStore). */
export interface CopySource {
  of(cid: string): Promise<CopyRecord[]>
  trees(mirror: string): Promise<CopyRecord[]>
}

type LogFn = (obj: Record<string, unknown>, msg: string) => void

export interface FetchBackOptions {
  /** Each mirror's root folder (where fetched files go back); undefined for a mirror not known. */
  rootOf(mirror: string): string | undefined
  /** The local IPFS node (first source). */
  node?: IpfsNode
  /** Its HTTP gateway (`http://127.0.0.1:8080`): its trustless CAR is the fastest verified path. */
  localGateway?: string
  /** Trustless HTTP gateways tried last (`[gateway] fetch_from`). */
  gateways?: string[]
  /** Recorded copies: holders' and Filecoin providers' retrieval URLs. */
  copies?: CopySource
  /** The holders' RPC APIs by copy target (`[[replication.targets]]`): read directly (holder-sources.ts). */
  holders?: HolderNodes
  /**
   * The files' inner dag-pb nodes known locally (the index's `BlockReader`): with them a file's leaves
   * are known before it is fetched, so gateways may send its plain bytes, each leaf checked against
   * its CID, and a Range far ahead of the fetch is asked for on its own. Without them (or for a file
   * whose nodes were never mapped) every source sends a CAR.
   */
  nodes?: KnownNodes
  /**
   * Each mirror's index local states (`openMirrorIndex(...).local`), told when a file is cached again
   * (present, its stat, `refetchedAt`); without one, the next scan finds the file present.
   */
  recorderOf?(mirror: string): RefetchRecorder | undefined
  /** Network fetches at once (default 4) and bytes of files being fetched at once (default 4 GiB). */
  maxFetches?: number
  maxBytesInFlight?: number
  /** Per source: time to the first verified byte (default 15 s) and between blocks (default 30 s). */
  firstByteMs?: number
  idleMs?: number
  /**
   * Folder of a mirror's temp files, on the mirror's file system (a rename moves them into the tree).
   * Default `<parent of root>/.cidmirror-fetch/<mirror dir name>`: outside the tree, so neither a scan
   * nor rsync's `--delete` meets a partial file.
   */
  tmpDirOf?(mirror: string, root: string): string
  log?: { info: LogFn; warn: LogFn }
  /**
   * Where transient fetches (`EvictedFile.transient`: files that left the mirror) are kept for the next
   * download of the same CID, and how many bytes at most (past-cache.ts); none without it, or at 0 bytes.
   */
  pastCache?: PastCacheOptions
  /** undici dispatcher for the HTTP sources (default undici's global one). */
  dispatcher?: Dispatcher
}

export const FETCH_BACK_DEFAULTS = {
  maxFetches: 4,
  maxBytesInFlight: 4 * 1024 ** 3,
  firstByteMs: 15_000,
  idleMs: 30_000,
}

/**
 * A Range starting this far past what the shared fetch has taken is asked of the sources on its own
 * (when the file's leaves are known) rather than waiting for the fetch to reach it.
 */
const RANGE_AHEAD = 8 * 1024 * 1024

/** What a fetch reads from: its sources in order and, when known, the file's leaves. */
interface Plan {
  sources: FetchSource[]
  leaves: Leaf[] | undefined
}

/** The sources that can start a read at any byte (not the node's CAR export, not a piece's sections). */
function seekable(plan: Plan): FetchSource[] {
  return plan.sources.filter((s) => s.seeks)
}

function defaultTmpDir(_mirror: string, root: string): string {
  return join(dirname(root), '.cidmirror-fetch', basename(root))
}

/** The abort reason of `signal` as a rejection, for races with it. */
function aborted(signal: AbortSignal): Promise<never> {
  return new Promise((_, reject) => {
    if (signal.aborted) return reject(signal.reason)
    signal.addEventListener('abort', () => reject(signal.reason), { once: true })
  })
}

/** Bytes `start..end` of the file at `path` (or already open: `fh`, for a past-cache entry), closed at the end. */
async function* readDisk(
  path: string,
  start: number,
  end: number,
  opened?: FileHandle,
): AsyncGenerator<Uint8Array> {
  const fh = opened ?? (await open(path, 'r'))
  try {
    for (let pos = start; pos <= end; ) {
      const buf = Buffer.allocUnsafe(Math.min(end + 1 - pos, 1024 * 1024))
      const { bytesRead } = await fh.read(buf, 0, buf.length, pos)
      if (bytesRead === 0) throw new FetchBackCacheShortError(path, pos)
      pos += bytesRead
      yield bytesRead === buf.length ? buf : buf.subarray(0, bytesRead)
    }
  } finally {
    await fh.close()
  }
}

/** One shared fetch per file of the tree, and per CID for transient ones (the same bytes wherever they were). */
function keyOf(file: EvictedFile): string {
  return file.transient ? `\x01${file.cid}` : `${file.mirror}\x00${file.path}\x00${file.cid}`
}

export class NetworkFetchBack implements FetchBack {
  readonly metrics = new FetchBackMetrics()
  readonly #o: FetchBackOptions
  readonly #limits: FetchLimits
  readonly #timeouts: SourceTimeouts
  readonly #fetches = new Map<string, SharedFetch>()
  /** Each shared fetch's plan, made when it starts (before admission, so ranged reads need not wait). */
  readonly #plans = new WeakMap<SharedFetch, Promise<Plan>>()
  readonly #cleaned = new Set<string>()
  readonly #pastCache: PastCache | undefined

  constructor(opts: FetchBackOptions) {
    this.#o = opts
    this.#pastCache =
      opts.pastCache && opts.pastCache.maxBytes > 0 ? new PastCache(opts.pastCache) : undefined
    this.#limits = new FetchLimits({
      maxFetches: opts.maxFetches ?? FETCH_BACK_DEFAULTS.maxFetches,
      maxBytes: opts.maxBytesInFlight ?? FETCH_BACK_DEFAULTS.maxBytesInFlight,
    })
    this.#timeouts = {
      firstByteMs: opts.firstByteMs ?? FETCH_BACK_DEFAULTS.firstByteMs,
      idleMs: opts.idleMs ?? FETCH_BACK_DEFAULTS.idleMs,
    }
  }

  /** Figures for `/_status` and `/metrics`. */
  figures(): FetchBackFigures {
    return {
      active: this.#limits.running,
      queued: this.#limits.queued,
      bytesInFlight: this.#limits.bytesInFlight,
      completed: this.metrics.completed,
      failed: this.metrics.failed,
      joined: this.metrics.joined,
      sources: this.metrics.sources(),
      ...(this.#pastCache ? { pastCache: this.#pastCache.figures() } : {}),
    }
  }

  async open(file: EvictedFile, range: ByteRange | undefined, signal: AbortSignal): Promise<FetchBackResult> {
    const root = this.#o.rootOf(file.mirror)
    if (root === undefined)
      throw new FetchFailedError(file.path, file.cid, [`no root folder is known for mirror ${file.mirror}`])
    checkRelPath(file.path)
    const cid = parseCid(file.cid)
    const start = range?.start ?? 0
    const end = Math.min(range?.end ?? file.size - 1, file.size - 1)
    const target = join(root, file.path)

    const cache = file.transient ? this.#pastCache : undefined
    if (cache) {
      // Downloaded before: its verified bytes from the cache of past fetches, not the network again.
      const hit = await cache.open(file.cid, file.size)
      if (hit) return { source: 'past-cache', body: readDisk(hit.path, start, end, hit.fh) }
    }

    const key = keyOf(file)
    let f = this.#fetches.get(key)
    if (f && !f.joinable) f = undefined
    if (!f && !file.transient) {
      // Cached a moment ago (the caller read the record before the index was told).
      const st = await stat(target).catch(() => undefined)
      if (st?.isFile() && st.size === file.size && Math.trunc(st.mtimeMs) === Math.trunc(file.mtimeMs))
        return { source: 'cache', body: readDisk(target, start, end) }
      // Another request may have started the fetch while this one looked at the disk.
      f = this.#fetches.get(key)
    }
    if (f) this.metrics.joined++
    else {
      // A file the cache may keep is written in its folder, so keeping it is a rename.
      const tmpDir =
        cache?.fits(file.size) === true ? cache.dir : (this.#o.tmpDirOf ?? defaultTmpDir)(file.mirror, root)
      this.#cleanOnce(tmpDir)
      const tmp = join(tmpDir, `${randomBytes(8).toString('hex')}.part`)
      // A transient file never reaches the tree: its temp file is all there is, removed after the last reader.
      f = new SharedFetch(file, cid, file.transient ? tmp : target, tmp)
      this.#fetches.set(key, f)
      const plan = this.#plan(f)
      plan.catch(() => {})
      this.#plans.set(f, plan)
      this.#start(f, plan)
    }
    if (range && start >= f.written + RANGE_AHEAD) {
      const plan = await Promise.race([this.#plans.get(f)!, aborted(signal)]).catch((err) => {
        if (signal.aborted) throw err
        return undefined
      })
      if (plan?.leaves && seekable(plan).length > 0 && start >= f.written + RANGE_AHEAD) {
        const release = await this.#rangeSlot(f, start, end + 1 - start, signal)
        if (release)
          return this.#ranged(file, cid, plan as Plan & { leaves: Leaf[] }, start, end, signal, release)
      }
    }
    if (file.transient) {
      const release = f.hold()
      signal.addEventListener('abort', release, { once: true })
      try {
        await Promise.race([f.started, aborted(signal)])
      } catch (err) {
        release()
        throw err
      }
      const shared = f
      async function* held(): AsyncGenerator<Uint8Array> {
        try {
          yield* shared.read(start, end, signal)
        } finally {
          release()
        }
      }
      const body = held()
      // A reader that stops part-way (its response closed) ends its read, so the temp file can go.
      signal.addEventListener('abort', () => void body.return(undefined).catch(() => {}), { once: true })
      return { source: f.source ?? 'none', body }
    }
    await Promise.race([f.started, aborted(signal)])
    return { source: f.source ?? 'none', body: f.read(start, end, signal) }
  }

  /**
   * Admission of a ranged read of `bytes`, as of any network fetch (`fetch_concurrency`,
   * `fetch_bytes_in_flight`; queued in turn when full); undefined when the shared fetch reaches `start`
   * (or ends) first: the range is then read from it, with no request of its own.
   */
  async #rangeSlot(
    f: SharedFetch,
    start: number,
    bytes: number,
    signal: AbortSignal,
  ): Promise<(() => void) | undefined> {
    const done = new AbortController()
    const stop = AbortSignal.any([signal, done.signal])
    const admitted = this.#limits.acquire(bytes, stop)
    admitted.catch(() => {})
    try {
      const got = await Promise.race([admitted, f.reached(start, stop).then(() => undefined)])
      // Both in the same turn: the slot taken goes back.
      if (got === undefined)
        void admitted.then(
          (release) => release(),
          () => {},
        )
      return got
    } catch (err) {
      if (signal.aborted) throw err
      return undefined
    } finally {
      done.abort()
    }
  }

  /**
   * The range on its own (RANGE_AHEAD), resolved at its first verified byte; the shared fetch goes on.
   * `release` gives its admission back (once read, failed or abandoned). Rejects as `open` does when no
   * source gives the range's first bytes.
   */
  async #ranged(
    file: EvictedFile,
    cid: ReturnType<typeof parseCid>,
    plan: Plan & { leaves: Leaf[] },
    start: number,
    end: number,
    signal: AbortSignal,
    release: () => void,
  ): Promise<FetchBackResult> {
    const used: { source: string } = { source: 'none' }
    // Each source as it starts giving bytes, for the result's `source`.
    const sources = seekable(plan).map(
      (src): FetchSource => ({
        name: src.name,
        kind: src.kind,
        bytes: (f, from, sig, to) => {
          used.source = src.name
          return src.bytes(f, from, sig, to)
        },
      }),
    )
    const it = rangedBytes(
      { path: file.path, cid, size: file.size, leaves: plan.leaves, start, end },
      sources,
      this.#timeouts,
      this.metrics,
      signal,
    )
    let cleaned: Promise<unknown> | undefined
    // Once: the slot back, the source's request closed (also for a body its caller never reads).
    const cleanup = () => {
      cleaned ??= (async () => {
        release()
        signal.removeEventListener('abort', cleanup)
        await it.return(undefined).catch(() => {})
      })()
      return cleaned
    }
    signal.addEventListener('abort', cleanup, { once: true })
    try {
      const first = await it.next()
      const body = (async function* () {
        try {
          if (first.done) return
          yield first.value
          yield* it
        } finally {
          await cleanup()
        }
      })()
      return { source: used.source, body }
    } catch (err) {
      await cleanup()
      throw err
    }
  }

  /** The sources for the file (from the copies recorded) and its leaves when its nodes are known. */
  async #plan(f: SharedFetch): Promise<Plan> {
    const o = this.#o
    const copies = o.copies
      ? [...(await o.copies.of(f.file.cid)), ...(await o.copies.trees(f.file.mirror))]
      : []
    const sources = planSources(copies, {
      node: o.node,
      localGateway: o.localGateway,
      gateways: o.gateways,
      dispatcher: o.dispatcher,
      ...(o.holders ? { holders: o.holders } : {}),
    })
    const leaves = o.nodes ? await knownLeaves(parseCid(f.file.cid), f.file.size, o.nodes) : undefined
    return { sources, leaves }
  }

  async #start(f: SharedFetch, planned: Promise<Plan>): Promise<void> {
    const o = this.#o
    try {
      const release = await this.#limits.acquire(f.file.size)
      try {
        const { sources, leaves } = await planned
        await f.run(
          sources,
          this.#timeouts,
          this.metrics,
          {
            // Its temp file is in the cache's folder only when the cache may keep it (`open`).
            ...(this.#pastCache && dirname(f.tmp) === this.#pastCache.dir
              ? {
                  fetched: (file: EvictedFile, tmp: string) =>
                    this.#pastCache!.keep(tmp, file.cid, file.size, (obj, msg) => o.log?.warn(obj, msg)),
                }
              : {}),
            cached: async (file) => {
              const recorder = o.recorderOf?.(file.mirror)
              if (!recorder) return
              const st = await stat(f.target)
              const rec = await recorder.markRefetched(file.path, {
                cid: file.cid,
                stat: { size: st.size, mtimeMs: st.mtimeMs, ctimeMs: st.ctimeMs, ino: st.ino },
                at: Date.now(),
              })
              if (!rec)
                o.log?.warn(
                  { mirror: file.mirror, path: file.path, cid: file.cid },
                  'fetched back, but the index no longer holds this CID at that path; the next scan decides',
                )
            },
            log: o.log ? (level, obj, msg) => o.log![level](obj, msg) : undefined,
          },
          leaves,
        )
      } finally {
        release()
      }
    } catch (err) {
      // A failure before run() (reading the copies or the nodes): the fetch fails as a whole.
      await f.run([], this.#timeouts, this.metrics, { cached: async () => {} }).catch(() => {})
      o.log?.warn({ path: f.file.path, err: (err as Error).message }, 'fetch-back could not start')
    } finally {
      const key = keyOf(f.file)
      if (this.#fetches.get(key) === f) this.#fetches.delete(key)
    }
  }

  /** Temp files a crash left behind are removed the first time a mirror's folder is used. */
  #cleanOnce(dir: string): void {
    if (this.#cleaned.has(dir)) return
    this.#cleaned.add(dir)
    mkdirSync(dir, { recursive: true })
    for (const name of readdirSync(dir)) {
      if (name.endsWith('.part') && ![...this.#fetches.values()].some((f) => basename(f.tmp) === name)) {
        try {
          unlinkSync(join(dirname(join(dir, name)), name))
        } catch {}
      }
    }
  }
}
