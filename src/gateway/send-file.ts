/**
 * Large files straight from disk with backpressure: reads of `bufferBytes` (1 MiB) into page-aligned
 * buffers (the page cache copies into those 3-5x faster, DEVELOPING.md), two per response so the next
 * read runs while the socket takes the last one, and a buffer is read into again only once the socket
 * has taken it (the write's callback), so a slow client holds at most two buffers. The buffers come
 * from one bounded pool: however many clients, the gateway's read buffers stay under `max` of them.
 */
import { read } from 'node:fs'
import type { ServerResponse } from 'node:http'
import { chunkBuffer } from '../cid/index.ts'

export class BufferPool {
  readonly size: number
  readonly #max: number
  #made = 0
  readonly #free: Buffer[] = []
  readonly #waiting: ((b: Buffer) => void)[] = []

  constructor(size: number, max: number) {
    this.size = size
    this.#max = Math.max(2, max)
  }

  /** A free buffer now, or undefined when every one is in use. */
  tryAcquire(): Buffer | undefined {
    const b = this.#free.pop()
    if (b !== undefined) return b
    if (this.#made < this.#max) {
      this.#made++
      return chunkBuffer(this.size)
    }
    return undefined
  }

  acquire(): Promise<Buffer> {
    const b = this.tryAcquire()
    if (b !== undefined) return Promise.resolve(b)
    return new Promise((resolve) => this.#waiting.push(resolve))
  }

  release(b: Buffer): void {
    const next = this.#waiting.shift()
    if (next) next(b)
    else this.#free.push(b)
  }

  get inUse(): number {
    return this.#made - this.#free.length
  }
}

function readAt(fd: number, buf: Buffer, length: number, position: number): Promise<number> {
  return new Promise((resolve, reject) => {
    read(fd, buf, 0, length, position, (err, n) => (err ? reject(err) : resolve(n)))
  })
}

function writeOut(res: ServerResponse, chunk: Buffer): Promise<Error | null | undefined> {
  return new Promise((resolve) => {
    res.write(chunk, (err) => resolve(err))
  })
}

/**
 * Writes bytes `start`..`end` (inclusive) of `fd` to `res` (whose headers are set) and ends it; returns
 * the bytes the socket took. A client that goes away stops the reads; a file that shrinks under the
 * read destroys the response rather than ending it short (the length was promised).
 */
export async function sendRange(
  res: ServerResponse,
  fd: number,
  start: number,
  end: number,
  pool: BufferPool,
): Promise<number> {
  const bufs: Buffer[] = [await pool.acquire()]
  const second = pool.tryAcquire()
  if (second) bufs.push(second)
  const taken: Promise<Error | null | undefined>[] = bufs.map(() => Promise.resolve(null))
  let pos = start
  let sent = 0
  let failed = false
  try {
    for (let i = 0; pos <= end && !res.destroyed; i = (i + 1) % bufs.length) {
      if ((await taken[i]) || res.destroyed) {
        failed = true
        break
      }
      const buf = bufs[i]!
      const n = await readAt(fd, buf, Math.min(buf.length, end - pos + 1), pos)
      if (n === 0) {
        res.destroy(new Error('the file shrank while it was sent'))
        failed = true
        break
      }
      const chunk = n === buf.length ? buf : buf.subarray(0, n)
      taken[i] = writeOut(res, chunk).then((err) => {
        if (!err) sent += n
        return err
      })
      pos += n
    }
    const errs = await Promise.all(taken)
    if (errs.some(Boolean)) failed = true
    if (!failed && !res.destroyed) res.end()
  } catch (err) {
    res.destroy(err as Error)
    await Promise.all(taken)
  } finally {
    for (const b of bufs) pool.release(b)
  }
  return sent
}
