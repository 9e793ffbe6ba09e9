import { availableParallelism } from 'node:os'
import { Worker } from 'node:worker_threads'
import { CID } from 'multiformats/cid'
import { FileChangedError, fsError, HashPoolError } from './errors.ts'
import { layoutFromDigests } from './layout.ts'
import {
  BIG,
  CID_BYTES,
  CID_TEXT,
  DEFERRED,
  FAILED,
  NOT_FILE,
  type WorkerError,
  type WorkerReply,
  type WorkerRequest,
} from './pool-protocol.ts'
import { CHUNK_SIZE } from './profile.ts'
import type { FileCid } from './types.ts'

/** Files up to this size are hashed whole by one worker; bigger ones are split into chunk ranges. */
const SPLIT_ABOVE = 32 * CHUNK_SIZE
/** Chunks per range message of a split file. */
const RANGE_CHUNKS = 16
/** A batch is sent once it holds this many files or (known) bytes; a worker stops after that many bytes. */
const BATCH_FILES = 256
const BATCH_BYTES = 8 * CHUNK_SIZE
/** Messages queued per worker, so that it never waits for the main thread. */
const MAX_INFLIGHT = 2

const NO_STAT: [number, number, number] = [Number.NaN, Number.NaN, Number.NaN]

const WORKER_URL = new URL(
  import.meta.url.endsWith('.ts') ? './hash-worker.ts' : './hash-worker.js',
  import.meta.url,
)

/** Called once per file with its CID or its error. */
export type HashDone = (err: unknown, result?: FileCid) => void

/**
 * Called once per file with its error, or its CID as base32 text and as bytes (no CID object: the
 * index keeps the text and hands the bytes to directory encoding), its size and its Tsize. For a file
 * submitted without a size, also the mtimeMs, ctimeMs and inode of what was hashed (NaN otherwise): the
 * stat that goes with the CID, taken on the open file. `sha256`: the whole file's SHA-256, for a file of
 * more than one chunk submitted with `digest` (a one-chunk file's CID is its SHA-256 already).
 */
export type RawHashDone = (
  err: unknown,
  cid?: string,
  bytes?: Uint8Array,
  size?: number,
  tsize?: number,
  mtimeMs?: number,
  ctimeMs?: number,
  ino?: number,
  sha256?: Uint8Array,
) => void

interface BatchTask {
  t: 'files'
  paths: string[]
  sizes: number[]
  done: RawHashDone[]
  /** Per file 1 when its whole-file SHA-256 is wanted. */
  digest: number[]
  bytes: number
}

/** One big file split into chunk ranges. */
interface SplitFile {
  path: string
  size: number
  chunks: number
  digests: Uint8Array
  remaining: number
  failed: boolean
  done: RawHashDone
  /** mtimeMs, ctimeMs, ino from the worker's stat (NaN when the size was given). */
  stat: [number, number, number]
}

interface RangeTask {
  t: 'range'
  file: SplitFile
  first: number
  count: number
}

type Task = BatchTask | RangeTask

interface Slot {
  worker: Worker
  inflight: Map<number, Task>
}

function rebuildError(path: string, e: WorkerError): unknown {
  return fsError(path, Object.assign(new Error(e.message), { code: e.code }))
}

/**
 * Hashes files in worker threads (one per core by default). Small files travel in batches (one
 * message for up to 256 of them, answered with packed CIDs); a big file's chunk ranges are spread over
 * all workers, since leaf digests are independent, and laid out on this thread.
 */
export class HashPool {
  readonly threads: number
  readonly #slots: Slot[] = []
  readonly #queue: Task[] = []
  #batch: BatchTask | undefined
  #nextId = 1
  #pendingFiles = 0
  #destroyed = false
  #flushScheduled = false
  #waitersBelow: { limit: number; resolve: () => void }[] = []

  constructor(opts?: { threads?: number }) {
    this.threads = Math.max(1, opts?.threads ?? availableParallelism())
    for (let i = 0; i < this.threads; i++) this.#slots.push(this.#spawn())
  }

  #spawn(): Slot {
    const worker = new Worker(WORKER_URL)
    const slot: Slot = { worker, inflight: new Map() }
    worker.unref()
    worker.on('message', (reply: WorkerReply) => this.#onReply(slot, reply))
    worker.on('error', (err) => this.#onDeath(slot, err))
    worker.on('exit', (code) => {
      if (!this.#destroyed) this.#onDeath(slot, new Error(`hash worker exited with code ${code}`))
    })
    return slot
  }

  /** Files handed to the pool and not yet answered. */
  get pending(): number {
    return this.#pendingFiles
  }

  /** Resolves once fewer than `limit` files are pending: back-pressure for walkers. */
  belowLimit(limit: number): Promise<void> {
    if (this.#pendingFiles < limit || this.#destroyed) return Promise.resolve()
    return new Promise((resolve) => this.#waitersBelow.push({ limit, resolve }))
  }

  /** The CID of the file at `path`, whose size (from stat) is `size`. */
  hashFile(path: string, size: number): Promise<FileCid> {
    return new Promise<FileCid>((resolve, reject) => {
      this.submit(path, size, (err, r) => (err ? reject(err) : resolve(r!)))
    })
  }

  /**
   * As hashFile, with a callback (no promise per file). `size` may be undefined: a worker then stats
   * the file and hands it back for splitting when it is big.
   */
  submit(path: string, size: number | undefined, done: HashDone): void {
    this.submitRaw(path, size, (err, _text, bytes, size, tsize) => {
      if (err) done(err)
      else done(null, { cid: CID.decode(bytes!), size: size!, tsize: tsize! })
    })
  }

  /**
   * As submit, answering with the CID as text and bytes instead of a CID object. `digest`: also the
   * whole file's SHA-256, from the same reads; such a file is hashed by one worker, never split.
   */
  submitRaw(path: string, size: number | undefined, done: RawHashDone, digest = false): void {
    if (this.#destroyed) {
      done(new HashPoolError('hash pool destroyed'))
      return
    }
    this.#pendingFiles++
    if (size !== undefined && size > SPLIT_ABOVE && this.threads > 1 && !digest)
      this.#split(path, size, done, NO_STAT)
    else this.#addToBatch(path, size, done, digest)
    this.#pump()
  }

  #addToBatch(path: string, size: number | undefined, done: RawHashDone, digest: boolean): void {
    let batch = this.#batch
    if (!batch) {
      batch = { t: 'files', paths: [], sizes: [], done: [], digest: [], bytes: 0 }
      this.#batch = batch
    }
    batch.paths.push(path)
    batch.sizes.push(size ?? -1)
    batch.done.push(done)
    batch.digest.push(digest ? 1 : 0)
    batch.bytes += size ?? 0
    if (batch.paths.length >= BATCH_FILES || batch.bytes >= BATCH_BYTES) {
      this.#queue.push(batch)
      this.#batch = undefined
    }
  }

  #split(path: string, size: number, done: RawHashDone, stat: [number, number, number]): void {
    const chunks = Math.ceil(size / CHUNK_SIZE)
    const file: SplitFile = {
      path,
      size,
      chunks,
      digests: new Uint8Array(chunks * 32),
      remaining: 0,
      failed: false,
      done,
      stat,
    }
    for (let first = 0; first < chunks; first += RANGE_CHUNKS) {
      file.remaining++
      this.#queue.push({ t: 'range', file, first, count: Math.min(RANGE_CHUNKS, chunks - first) })
    }
  }

  #pump(): void {
    for (;;) {
      let best: Slot | undefined
      for (const s of this.#slots) if (!best || s.inflight.size < best.inflight.size) best = s
      if (!best || best.inflight.size >= MAX_INFLIGHT) break
      let task = this.#queue.shift()
      if (!task && this.#batch && best.inflight.size === 0) {
        // A worker is idle: send what has gathered rather than wait for a full batch.
        task = this.#batch
        this.#batch = undefined
      }
      if (!task) break
      this.#send(best, task)
    }
    if (this.#batch && !this.#flushScheduled) {
      this.#flushScheduled = true
      setImmediate(() => {
        this.#flushScheduled = false
        if (this.#batch && !this.#destroyed) {
          this.#queue.push(this.#batch)
          this.#batch = undefined
          this.#pump()
        }
      })
    }
  }

  #send(slot: Slot, task: Task): void {
    const id = this.#nextId++
    slot.inflight.set(id, task)
    if (slot.inflight.size === 1) slot.worker.ref()
    const msg: WorkerRequest =
      task.t === 'files'
        ? {
            t: 'files',
            id,
            paths: task.paths.join('\x00'),
            sizes: Float64Array.from(task.sizes),
            splitAbove: this.threads > 1 ? SPLIT_ABOVE : 0,
            maxBytes: BATCH_BYTES,
            digest: Uint8Array.from(task.digest),
          }
        : {
            t: 'range',
            id,
            path: task.file.path,
            first: task.first,
            count: task.count,
            last: task.first + task.count === task.file.chunks,
          }
    slot.worker.postMessage(msg)
  }

  #settled(n: number): void {
    this.#pendingFiles -= n
    if (this.#waitersBelow.length === 0) return
    const still: { limit: number; resolve: () => void }[] = []
    for (const w of this.#waitersBelow) {
      if (this.#pendingFiles < w.limit) w.resolve()
      else still.push(w)
    }
    this.#waitersBelow = still
  }

  #onReply(slot: Slot, reply: WorkerReply): void {
    const task = slot.inflight.get(reply.id)
    if (!task) return
    slot.inflight.delete(reply.id)
    if (slot.inflight.size === 0) slot.worker.unref()
    if (task.t === 'files' && reply.t === 'files') this.#batchDone(task, reply)
    else if (task.t === 'range' && reply.t === 'range') this.#rangeDone(task, reply)
    this.#pump()
  }

  #batchDone(task: BatchTask, reply: Extract<WorkerReply, { t: 'files' }>): void {
    const { status, cids, sizes, stats, text, whole, hasWhole } = reply
    let errorAt = 0
    let settled = 0
    let deferred: BatchTask | undefined
    for (let i = 0; i < task.paths.length; i++) {
      const s = status[i]
      const path = task.paths[i]!
      const done = task.done[i]!
      if (s === DEFERRED) {
        deferred ??= { t: 'files', paths: [], sizes: [], done: [], digest: [], bytes: 0 }
        deferred.paths.push(path)
        deferred.sizes.push(task.sizes[i]!)
        deferred.done.push(done)
        deferred.digest.push(task.digest[i]!)
      } else if (s === BIG) {
        this.#split(path, sizes[2 * i]!, done, [stats[3 * i]!, stats[3 * i + 1]!, stats[3 * i + 2]!])
      } else if (s === NOT_FILE) {
        settled++
        done(new FileChangedError(path, 'no longer a regular file'))
      } else if (s === FAILED) {
        while (reply.errors[errorAt] && reply.errors[errorAt]!.index < i) errorAt++
        const e = reply.errors[errorAt]
        settled++
        done(e ? rebuildError(path, e) : new HashPoolError(`no result for ${path}`))
      } else {
        settled++
        done(
          null,
          text.slice(i * CID_TEXT, (i + 1) * CID_TEXT),
          cids.subarray(i * CID_BYTES, (i + 1) * CID_BYTES),
          sizes[2 * i]!,
          sizes[2 * i + 1]!,
          stats[3 * i]!,
          stats[3 * i + 1]!,
          stats[3 * i + 2]!,
          hasWhole[i] === 1 ? whole.subarray(i * 32, (i + 1) * 32) : undefined,
        )
      }
    }
    // Deferred files go first, so that a directory's files finish together; split into one batch per
    // worker, or a batch of files of unknown size (several MiB each: it was deferred) would go from one
    // worker to the next, a file at a time, while the others wait.
    if (deferred) this.#queue.unshift(...this.#splitBatch(deferred))
    this.#settled(settled)
  }

  /** `task` as up to `threads` batches of consecutive files, in order. */
  #splitBatch(task: BatchTask): BatchTask[] {
    const n = task.paths.length
    const parts = Math.min(this.threads, n)
    if (parts < 2) return [task]
    const out: BatchTask[] = []
    for (let p = 0; p < parts; p++) {
      const from = Math.floor((n * p) / parts)
      const to = Math.floor((n * (p + 1)) / parts)
      const sizes = task.sizes.slice(from, to)
      out.push({
        t: 'files',
        paths: task.paths.slice(from, to),
        sizes,
        done: task.done.slice(from, to),
        digest: task.digest.slice(from, to),
        bytes: sizes.reduce((sum, size) => sum + Math.max(0, size), 0),
      })
    }
    return out
  }

  #rangeDone(task: RangeTask, reply: Extract<WorkerReply, { t: 'range' }>): void {
    const file = task.file
    file.remaining--
    if (file.failed) return
    const fail = (err: unknown) => {
      file.failed = true
      // Drop its ranges still queued.
      for (let i = this.#queue.length - 1; i >= 0; i--) {
        const q = this.#queue[i]!
        if (q.t === 'range' && q.file === file) this.#queue.splice(i, 1)
      }
      this.#settled(1)
      file.done(err)
    }
    if (reply.error) {
      fail(rebuildError(file.path, reply.error))
      return
    }
    const expected = Math.min(task.count * CHUNK_SIZE, file.size - task.first * CHUNK_SIZE)
    if (reply.bytes !== expected) {
      fail(new FileChangedError(file.path, file.size, task.first * CHUNK_SIZE + reply.bytes))
      return
    }
    if (task.first + task.count === file.chunks && !reply.eofAfter) {
      fail(new FileChangedError(file.path, file.size, file.size + 1))
      return
    }
    file.digests.set(reply.digests, task.first * 32)
    if (file.remaining === 0) {
      this.#settled(1)
      let result: FileCid
      try {
        result = layoutFromDigests(file.digests, file.size)
      } catch (err) {
        file.done(err)
        return
      }
      file.done(null, result.cid.toString(), result.cid.bytes, result.size, result.tsize, ...file.stat)
    }
  }

  #onDeath(slot: Slot, err: unknown): void {
    const i = this.#slots.indexOf(slot)
    if (i < 0) return
    const failure = new HashPoolError(`hash worker failed: ${(err as Error)?.message ?? err}`, { cause: err })
    const tasks = [...slot.inflight.values()]
    slot.inflight.clear()
    // Replace the dead worker so the pool keeps going.
    this.#slots[i] = this.#spawn()
    void slot.worker.terminate()
    this.#fail(tasks, failure)
    this.#pump()
  }

  #fail(tasks: Task[], failure: unknown): void {
    for (const task of tasks) {
      if (task.t === 'files') {
        this.#settled(task.done.length)
        for (const d of task.done) d(failure)
      } else if (!task.file.failed) {
        task.file.failed = true
        this.#settled(1)
        task.file.done(failure)
      }
    }
  }

  /** Stop the workers; pending work fails with HashPoolError. */
  async destroy(): Promise<void> {
    if (this.#destroyed) return
    this.#destroyed = true
    const tasks = [...this.#queue, ...(this.#batch ? [this.#batch] : [])]
    for (const s of this.#slots) tasks.push(...s.inflight.values())
    this.#queue.length = 0
    this.#batch = undefined
    await Promise.all(this.#slots.map((s) => s.worker.terminate()))
    this.#fail(tasks, new HashPoolError('hash pool destroyed'))
    for (const w of this.#waitersBelow) w.resolve()
    this.#waitersBelow = []
  }
}
