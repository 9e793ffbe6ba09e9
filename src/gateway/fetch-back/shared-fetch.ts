/**
 * One network fetch of one evicted file, shared by every request for it. Verified bytes are written,
 * in order, to a temp file; readers (the first client, later ones, Range requests) read that file as
 * it grows, so bytes reach the first client while the cache file is written and a range of a file
 * still arriving is answered when its bytes are in. When the last byte is in: fsync, the file's mtime
 * set back to the index's, rename into the mirror tree, then the index is told (DESIGN promise 6: no
 * partial file ever appears in the tree). A source that fails part-way is followed by the next from the
 * byte it stopped at; when every source failed, the temp file is removed and nothing is cached.
 */
import type { FileHandle } from 'node:fs/promises'
import { mkdir, open, rename, unlink, utimes } from 'node:fs/promises'
import { dirname } from 'node:path'
import type { CID } from 'multiformats/cid'
import { isCidmirrorError } from '../../errors.ts'
import type { EvictedFile } from '../index.ts'
import {
  FetchBackCacheShortError,
  FetchFailedError,
  FetchTimeoutError,
  SourceTimeoutError,
} from './errors.ts'
import type { SeenLeaves } from './file-walk.ts'
import type { Leaf } from './leaf-plan.ts'
import type { FetchBackMetrics } from './metrics.ts'
import type { FetchSource } from './sources.ts'

export interface SourceTimeouts {
  /** To a source's first verified byte (connection, headers, first block). */
  firstByteMs: number
  /** Between two verified blocks. */
  idleMs: number
}

export interface SharedFetchEvents {
  /** Called once the file is in the tree; its failure is logged, the file stays. */
  cached(file: EvictedFile, source: string): Promise<void>
  /**
   * A transient fetch's bytes are all in and verified, in `tmp` (still open for its readers): the cache
   * of past fetches may take the file (a rename); the readers read on from their open file either way.
   */
  fetched?(file: EvictedFile, tmp: string): Promise<void>
  log?: (level: 'info' | 'warn', obj: Record<string, unknown>, msg: string) => void
}

/** Read size for readers that read the cache file (those behind the fetch's head). */
const READ_CHUNK = 1024 * 1024
/**
 * The newest verified bytes stay in memory (at least this many, and every chunk whose write has not
 * finished): readers at the head (the first client) take them from there, not back from the file.
 */
const HEAD_WINDOW = 8 * 1024 * 1024
/** Chunks are written to the cache file in vectored writes of about this many bytes. */
const WRITE_BATCH = 1024 * 1024
/** Writes to the cache file under way at once, in bytes, before the fetch waits for the oldest. */
const WRITES_IN_FLIGHT = 64 * 1024 * 1024

interface HeadChunk {
  at: number
  bytes: Uint8Array
  /** Its write to the cache file finished. */
  stored: boolean
}

function leafKey(cid: CID): string {
  return Buffer.from(cid.multihash.bytes).toString('base64')
}

/** `it`'s values, each within `ms` (the first within `firstMs`); on a time-out `abort` is called. */
export async function* timed<T>(
  it: AsyncIterator<T>,
  firstMs: number,
  ms: number,
  abort: () => void,
  source: string,
): AsyncGenerator<T> {
  let first = true
  try {
    for (;;) {
      const limit = first ? firstMs : ms
      let timer: NodeJS.Timeout | undefined
      const timeout = new Promise<never>((_, reject) => {
        timer = setTimeout(() => {
          abort()
          reject(
            new SourceTimeoutError(source, limit, first ? 'first verified block' : 'next verified block'),
          )
        }, limit)
      })
      let r: IteratorResult<T>
      try {
        r = await Promise.race([it.next(), timeout])
      } finally {
        clearTimeout(timer)
      }
      if (r.done) return
      first = false
      yield r.value
    }
  } finally {
    // After a time-out the source's request is aborted; its iterator ends by itself.
    it.return?.()?.catch(() => {})
  }
}

export class SharedFetch {
  readonly file: EvictedFile
  readonly target: string
  readonly tmp: string
  /** Verified bytes, from offset 0 (in the head window or in the cache file). */
  written = 0
  state: 'queued' | 'running' | 'done' | 'failed' = 'queued'
  error: Error | undefined
  /** The source that gave the first byte (then the one that finished, once done). */
  source: string | undefined
  /** Resolves at the first verified byte (or when done: an empty file); rejects when it failed before. */
  readonly started: Promise<void>
  /** Settles when the fetch is over (cached or failed); never rejects. */
  readonly finished: Promise<void>

  readonly #cid: CID
  #fh: FileHandle | undefined
  /** Chunks at the head, oldest first; everything before the first is in the cache file. */
  #head: HeadChunk[] = []
  #headBytes = 0
  #writes: Promise<void>[] = []
  #batch: HeadChunk[] = []
  #batchBytes = 0
  #writeBytes = 0
  #writeError: Error | undefined
  #readers = 0
  /** Where each whole leaf taken lies in the file, for sources that send a repeated leaf once. */
  readonly #leaves = new Map<string, { at: number; length: number }>()
  readonly #seen: SeenLeaves = {
    onLeaf: (cid, at, length) => {
      const k = leafKey(cid)
      if (!this.#leaves.has(k)) this.#leaves.set(k, { at, length })
    },
    earlier: async (cid) => {
      const l = this.#leaves.get(leafKey(cid))
      if (!l || l.at + l.length > this.written) return undefined
      return this.#bytesAt(l.at, l.length)
    },
  }
  #waiters = new Set<() => void>()
  #resolveStarted!: () => void
  #rejectStarted!: (err: Error) => void
  #resolveFinished!: () => void

  constructor(file: EvictedFile, cid: CID, target: string, tmp: string) {
    this.file = file
    this.#cid = cid
    this.target = target
    this.tmp = tmp
    this.started = new Promise((resolve, reject) => {
      this.#resolveStarted = resolve
      this.#rejectStarted = reject
    })
    this.started.catch(() => {})
    this.finished = new Promise((resolve) => {
      this.#resolveFinished = resolve
    })
  }

  /**
   * Fetch from `sources` in order (admission already granted); settles `finished`. With the file's
   * `leaves` known, sources may send plain bytes checked leaf by leaf.
   */
  async run(
    sources: FetchSource[],
    limits: SourceTimeouts,
    metrics: FetchBackMetrics,
    events: SharedFetchEvents,
    leaves?: Leaf[],
  ): Promise<void> {
    this.state = 'running'
    const { file } = this
    const reasons: string[] = []
    let allTimeouts = true
    try {
      await mkdir(dirname(this.tmp), { recursive: true })
      this.#fh = await open(this.tmp, 'wx+')
      for (const src of sources) {
        if (this.written === file.size) break
        const ctl = new AbortController()
        const began = performance.now()
        let gotFirst = false
        try {
          const it = src
            .bytes(
              { cid: this.#cid, size: file.size, seen: this.#seen, ...(leaves ? { leaves } : {}) },
              this.written,
              ctl.signal,
            )
            [Symbol.asyncIterator]()
          for await (const chunk of timed(
            it,
            limits.firstByteMs,
            limits.idleMs,
            () => ctl.abort(),
            src.name,
          )) {
            await this.#write(chunk)
            metrics.bytes(src.name, src.kind, chunk.length)
            if (!gotFirst) {
              gotFirst = true
              metrics.firstByte(src.name, src.kind, performance.now() - began)
              if (this.source === undefined) {
                this.source = src.name
                this.#resolveStarted()
              }
            }
          }
          if (this.written === file.size) {
            this.source = src.name
            metrics.done(src.name, src.kind)
          }
        } catch (err) {
          ctl.abort()
          const timeout = err instanceof SourceTimeoutError
          if (!timeout) allTimeouts = false
          const msg = isCidmirrorError(err) ? err.message : `${src.name}: ${(err as Error)?.message ?? err}`
          reasons.push(msg)
          metrics.failure(src.name, src.kind, msg, timeout)
          events.log?.(
            'warn',
            { mirror: file.mirror, path: file.path, cid: file.cid, source: src.name, at: this.written },
            `fetch-back source failed: ${msg}`,
          )
        }
      }
      if (this.written !== file.size) {
        throw allTimeouts && reasons.length > 0
          ? new FetchTimeoutError(file.path, file.cid, reasons)
          : new FetchFailedError(file.path, file.cid, reasons)
      }
      await this.#drainWrites()
      if (file.transient) {
        this.state = 'done'
        metrics.completed++
        this.source ??= 'none'
        this.#resolveStarted()
        events.log?.(
          'info',
          { mirror: file.mirror, path: file.path, cid: file.cid, source: this.source, bytes: file.size },
          "fetched back for its clients only (not the tree's)",
        )
        await events.fetched?.(file, this.tmp).catch(() => {})
        return
      }
      await this.#fh.sync()
      // In seconds with the fraction: a Date would cut the index's mtime to whole milliseconds.
      await utimes(this.tmp, file.mtimeMs / 1000, file.mtimeMs / 1000)
      await mkdir(dirname(this.target), { recursive: true })
      await rename(this.tmp, this.target)
      this.state = 'done'
      metrics.completed++
      if (this.source === undefined) {
        // An empty file: no source was needed.
        this.source = 'none'
      }
      this.#resolveStarted()
      events.log?.(
        'info',
        { mirror: file.mirror, path: file.path, cid: file.cid, source: this.source, bytes: file.size },
        'fetched back and cached',
      )
      try {
        await events.cached(file, this.source)
      } catch (err) {
        events.log?.(
          'warn',
          { mirror: file.mirror, path: file.path, err: (err as Error).message },
          'fetched back, but the index could not be told',
        )
      }
    } catch (err) {
      this.state = 'failed'
      this.error = err as Error
      metrics.failed++
      await unlink(this.tmp).catch(() => {})
      this.#rejectStarted(err as Error)
      events.log?.(
        'warn',
        { mirror: file.mirror, path: file.path, cid: file.cid, err: (err as Error).message },
        'fetch-back failed; nothing cached',
      )
    } finally {
      this.#wake()
      this.#resolveFinished()
      await this.#closeIfIdle()
    }
  }

  /** Takes a verified chunk: readers see it at once (from memory); its write to the file is queued. */
  async #write(chunk: Uint8Array): Promise<void> {
    if (this.#writeError) throw this.#writeError
    const entry: HeadChunk = { at: this.written, bytes: chunk, stored: false }
    this.#head.push(entry)
    this.#headBytes += chunk.length
    this.written += chunk.length
    this.#wake()
    this.#batch.push(entry)
    this.#batchBytes += chunk.length
    if (this.#batchBytes >= WRITE_BATCH || this.#batch.length >= 512) await this.#flush()
  }

  /** Queues one vectored write of the chunks taken since the last; waits while too much is queued. */
  async #flush(): Promise<void> {
    if (this.#batch.length === 0) return
    const batch = this.#batch
    const bytes = this.#batchBytes
    this.#batch = []
    this.#batchBytes = 0
    const w: Promise<void> = this.#store(batch, bytes).then(() => {
      this.#writes.splice(this.#writes.indexOf(w), 1)
    })
    this.#writes.push(w)
    this.#writeBytes += bytes
    while (this.#writeBytes > WRITES_IN_FLIGHT) await this.#writes[0]
    if (this.#writeError) throw this.#writeError
  }

  async #store(batch: HeadChunk[], bytes: number): Promise<void> {
    try {
      let buffers = batch.map((e) => e.bytes)
      let at = batch[0]!.at
      let left = bytes
      while (left > 0) {
        const { bytesWritten } =
          buffers.length === 1
            ? await this.#fh!.write(buffers[0]!, 0, buffers[0]!.length, at)
            : await this.#fh!.writev(buffers, at)
        left -= bytesWritten
        at += bytesWritten
        if (left > 0) {
          // A short write: go on from where it stopped.
          let skip = bytesWritten
          const rest: Uint8Array[] = []
          for (const b of buffers) {
            if (skip >= b.length) skip -= b.length
            else {
              rest.push(skip > 0 ? b.subarray(skip) : b)
              skip = 0
            }
          }
          buffers = rest
        }
      }
      for (const e of batch) e.stored = true
    } catch (err) {
      this.#writeError ??= err as Error
    } finally {
      this.#writeBytes -= bytes
      this.#trimHead()
    }
  }

  async #drainWrites(): Promise<void> {
    await this.#flush()
    await Promise.all(this.#writes)
    if (this.#writeError) throw this.#writeError
  }

  /** Drops stored chunks from the front of the head window once it holds more than HEAD_WINDOW. */
  #trimHead(): void {
    while (
      this.#head.length > 0 &&
      this.#head[0]!.stored &&
      this.#headBytes - this.#head[0]!.bytes.length >= HEAD_WINDOW
    ) {
      this.#headBytes -= this.#head.shift()!.bytes.length
    }
  }

  #wake(): void {
    const w = [...this.#waiters]
    this.#waiters.clear()
    for (const f of w) f()
  }

  #progress(signal: AbortSignal): Promise<void> {
    return new Promise((resolve, reject) => {
      if (signal.aborted) return reject(signal.reason)
      const done = () => {
        signal.removeEventListener('abort', onAbort)
        resolve()
      }
      const onAbort = () => {
        this.#waiters.delete(done)
        reject(signal.reason)
      }
      signal.addEventListener('abort', onAbort, { once: true })
      this.#waiters.add(done)
    })
  }

  /** Resolves once byte `pos` is verified (or the fetch is over, done or failed). */
  async reached(pos: number, signal: AbortSignal): Promise<void> {
    while (this.written <= pos && this.state !== 'done' && this.state !== 'failed')
      await this.#progress(signal)
  }

  /** Verified bytes `at..at+length-1` (taken already), from the head window or the cache file. */
  async #bytesAt(at: number, length: number): Promise<Uint8Array[]> {
    const out: Uint8Array[] = []
    const end = at + length - 1
    for (let pos = at; pos <= end; ) {
      let part = this.#fromHead(pos, end)
      if (!part) {
        const fileEnd = this.#head.length > 0 ? this.#head[0]!.at : this.written
        const buf = Buffer.allocUnsafe(Math.min(end + 1, fileEnd) - pos)
        const { bytesRead } = await this.#fh!.read(buf, 0, buf.length, pos)
        if (bytesRead === 0) throw new FetchBackCacheShortError(`the cache file of ${this.file.path}`, pos)
        part = buf.subarray(0, bytesRead)
      }
      out.push(part)
      pos += part.length
    }
    return out
  }

  /** The bytes from `pos` (up to `end`) of the head chunk holding `pos`, if one does. */
  #fromHead(pos: number, end: number): Uint8Array | undefined {
    const head = this.#head
    if (head.length === 0 || pos < head[0]!.at) return undefined
    for (let i = head.length - 1; i >= 0; i--) {
      const c = head[i]!
      if (pos >= c.at) {
        if (pos >= c.at + c.bytes.length) return undefined
        const from = pos - c.at
        const to = Math.min(c.bytes.length, end + 1 - c.at)
        return from === 0 && to === c.bytes.length ? c.bytes : c.bytes.subarray(from, to)
      }
    }
    return undefined
  }

  /**
   * Counts a reader from now on, before its first read (a transient fetch that ends before its first
   * client reads must keep its temp file for it); the returned release is idempotent.
   */
  hold(): () => void {
    this.#readers++
    let held = true
    return () => {
      if (!held) return
      held = false
      this.#readers--
      void this.#closeIfIdle()
    }
  }

  /** Whether a new request may read this fetch (a transient one's bytes are gone once it closed). */
  get joinable(): boolean {
    return !(this.file.transient && this.#closed)
  }

  #closed = false

  async #closeIfIdle(): Promise<void> {
    if (this.#readers > 0 || (this.state !== 'done' && this.state !== 'failed')) return
    const fh = this.#fh
    this.#fh = undefined
    if (this.file.transient && !this.#closed) {
      this.#closed = true
      await unlink(this.tmp).catch(() => {})
    }
    await fh?.close().catch(() => {})
  }

  /**
   * Bytes `start..end` (inclusive) as they become verified; throws the fetch's error when it failed
   * before reaching `end` (the HTTP side then aborts the connection).
   */
  async *read(start: number, end: number, signal: AbortSignal): AsyncGenerator<Uint8Array> {
    this.#readers++
    // A reader that starts after the fetch closed its temp file reads the cached file instead.
    let own: FileHandle | undefined
    try {
      let pos = start
      while (pos <= end) {
        if (this.state === 'failed') throw this.error
        if (pos < this.written) {
          const from = this.#fromHead(pos, end)
          if (from) {
            pos += from.length
            yield from
            continue
          }
          // Behind the head window: that part is in the cache file.
          if (!this.#fh && !own) own = await open(this.target, 'r')
          const fh = this.#fh ?? own!
          const fileEnd = this.#head.length > 0 ? this.#head[0]!.at : this.written
          const len = Math.min(fileEnd, end + 1) - pos
          const buf = Buffer.allocUnsafe(Math.min(len, READ_CHUNK))
          const { bytesRead } = await fh.read(buf, 0, buf.length, pos)
          if (bytesRead === 0) throw new FetchBackCacheShortError(`the cache file of ${this.file.path}`, pos)
          pos += bytesRead
          yield bytesRead === buf.length ? buf : buf.subarray(0, bytesRead)
        } else {
          await this.#progress(signal)
        }
      }
    } finally {
      this.#readers--
      await own?.close().catch(() => {})
      await this.#closeIfIdle()
    }
  }
}
