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
import { FetchFailedError, FetchTimeoutError, SourceTimeoutError } from './errors.ts'
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
  log?: (level: 'info' | 'warn', obj: Record<string, unknown>, msg: string) => void
}

/** Read size for readers: the cache file is written block by block (1 MiB). */
const READ_CHUNK = 1024 * 1024

/** `it`'s values, each within `ms` (the first within `firstMs`); on a time-out `abort` is called. */
async function* timed<T>(
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
  /** Verified bytes in the temp file, from offset 0. */
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
  #readers = 0
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

  /** Fetch from `sources` in order (admission already granted); settles `finished`. */
  async run(
    sources: FetchSource[],
    limits: SourceTimeouts,
    metrics: FetchBackMetrics,
    events: SharedFetchEvents,
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
            .bytes({ cid: this.#cid, size: file.size }, this.written, ctl.signal)
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
      await this.#fh.sync()
      const mtime = new Date(file.mtimeMs)
      await utimes(this.tmp, mtime, mtime)
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

  async #write(chunk: Uint8Array): Promise<void> {
    let off = 0
    while (off < chunk.length) {
      const { bytesWritten } = await this.#fh!.write(chunk, off, chunk.length - off, this.written)
      off += bytesWritten
      this.written += bytesWritten
    }
    this.#wake()
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

  async #closeIfIdle(): Promise<void> {
    if (this.#readers > 0 || (this.state !== 'done' && this.state !== 'failed')) return
    const fh = this.#fh
    this.#fh = undefined
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
          if (!this.#fh && !own) own = await open(this.target, 'r')
          const fh = this.#fh ?? own!
          const len = Math.min(this.written, end + 1) - pos
          const buf = Buffer.allocUnsafe(Math.min(len, READ_CHUNK))
          const { bytesRead } = await fh.read(buf, 0, buf.length, pos)
          if (bytesRead === 0) throw new Error(`the cache file of ${this.file.path} ended at ${pos}`)
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
