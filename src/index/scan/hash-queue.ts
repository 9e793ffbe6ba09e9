/**
 * The hash queue: files and symlinks are hashed out of order (a HashPool's threads), but their entries
 * must be applied in key order, since a directory's CID needs its children's in order. Entries wait
 * here, in order, behind the oldest one still hashing; `drain` applies them from the front as they
 * finish. The queue holds at most `MAX_QUEUE` entries and `MAX_JOBS` jobs run at once, which bounds
 * memory whatever the tree.
 *
 * Jobs answer through callbacks (no promise per file); `drain` sleeps until some job finishes.
 */
import { readlinkSync } from 'node:fs'
import type { HashPool } from '../../cid/index.ts'
import { pathOf } from '../keys.ts'
import type { ScanProgress } from '../records.ts'
import { Kind } from '../walk-protocol.ts'
import type { CidLib } from './cid-lib.ts'
import type { Entry, Hashed } from './entry.ts'

/** Entries waiting in order behind the oldest unhashed one. */
const MAX_QUEUE = 8192
/** Files handed to the hash pool and not finished. */
const MAX_JOBS = 1024
/** Applied entries the queue's array keeps at its front before it is compacted. */
const COMPACT_AT = 4096

export interface HashQueueOptions {
  /** The mirror root: entries' paths are relative to it. */
  root: string
  /** Its `filesQueued` and `bytesQueued` follow the jobs. */
  progress: ScanProgress
  /** A pool to hash with; one is made on first use (and destroyed by `destroy`) otherwise. */
  pool: HashPool | undefined
  /** Throws when the scan was aborted (checked after each wait for a job). */
  throwIfAborted: () => void
  /** Also each multi-chunk file's whole SHA-256 (`whole_file_digest`). */
  wholeDigest: boolean
}

export class HashQueue {
  readonly #opts: HashQueueOptions
  /** Made on first use: an unchanged rescan needs no hash threads (each costs a module load on a core). */
  #ownPool: HashPool | undefined
  #jobs = 0
  #wake: (() => void) | undefined
  readonly #queue: Entry[] = []
  /** The first entry of `#queue` not applied yet. */
  #head = 0

  constructor(opts: HashQueueOptions) {
    this.#opts = opts
  }

  /** No entry waits: one that needs no hash can be applied at once. */
  get empty(): boolean {
    return this.#head === this.#queue.length
  }

  /** Starts hashing the entry (a file or a symlink); it is `hashing` until its result or error is set. */
  hash(lib: CidLib, e: Entry): void {
    e.hashing = true
    this.#jobs++
    const progress = this.#opts.progress
    // A listed file (walk-protocol.ts `listed`) has no stat yet: the pool's worker stats it.
    const listed = Number.isNaN(e.size)
    const queued = listed ? 0 : e.size
    progress.filesQueued++
    progress.bytesQueued += queued
    const finish = (): void => {
      e.hashing = false
      this.#jobs--
      progress.filesQueued--
      progress.bytesQueued -= queued
      const w = this.#wake
      this.#wake = undefined
      w?.()
    }
    const rel = pathOf(e.key)
    e.path = rel
    const root = this.#opts.root
    const path = e.key === '' ? root : `${root}/${rel}`
    if (e.kind === Kind.Symlink) {
      hashSymlink(lib, path).then(
        (r) => {
          e.result = r
          finish()
        },
        (err) => {
          e.error = err
          finish()
        },
      )
      return
    }
    this.#pool(lib).submitRaw(
      path,
      listed ? undefined : e.size,
      (err, cid, bytes, size, tsize, mtimeMs, ctimeMs, ino, sha256) => {
        if (err) e.error = err
        else {
          e.result = { cid: cid!, bytes, tsize: tsize!, size: size!, reused: false }
          if (sha256) e.result.sha256 = Buffer.from(sha256).toString('base64')
          if (listed) {
            e.size = size!
            e.mtimeMs = mtimeMs!
            e.ctimeMs = ctimeMs!
            e.ino = ino!
          }
        }
        finish()
      },
      this.#opts.wholeDigest,
    )
  }

  #pool(lib: CidLib): HashPool {
    if (this.#opts.pool) return this.#opts.pool
    this.#ownPool ??= new lib.HashPool()
    return this.#ownPool
  }

  /** Puts the entry at the back of the queue (hashing or not: it is applied after those before it). */
  push(e: Entry): void {
    this.#queue.push(e)
  }

  /**
   * Applies entries from the front, in order, while they are finished, calling `applied` after each.
   * Waits for the front one only when the queue or the jobs are at their bound, or with `all` (then
   * until the queue is empty).
   */
  async drain(all: boolean, apply: (e: Entry) => Promise<void>, applied: () => void): Promise<void> {
    const queue = this.#queue
    while (this.#head < queue.length) {
      const front = queue[this.#head]!
      if (front.hashing) {
        if (!all && queue.length - this.#head < MAX_QUEUE && this.#jobs < MAX_JOBS) break
        while (front.hashing) await this.#someJobDone()
        this.#opts.throwIfAborted()
      }
      queue[this.#head++] = undefined as unknown as Entry
      await apply(front)
      applied()
    }
    if (this.#head === queue.length) {
      queue.length = 0
      this.#head = 0
    } else if (this.#head > COMPACT_AT) {
      queue.splice(0, this.#head)
      this.#head = 0
    }
  }

  #someJobDone(): Promise<void> {
    return new Promise<void>((resolve) => {
      this.#wake = resolve
    })
  }

  /** Destroys the pool this queue made, if it made one. */
  async destroy(): Promise<void> {
    await this.#ownPool?.destroy()
  }
}

async function hashSymlink(lib: CidLib, path: string): Promise<Hashed> {
  const target = readlinkSync(path)
  const n = await lib.cidOfSymlink(target)
  const size = Buffer.byteLength(target)
  return { cid: n.cid.toString(), bytes: n.cid.bytes, tsize: n.tsize, size, target, reused: false }
}
