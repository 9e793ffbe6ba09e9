import { closeSync, fstatSync, openSync } from 'node:fs'
import { type FileHandle, open } from 'node:fs/promises'
import { chunkBuffer, readFull, sha256 } from './chunks.ts'
import { fsError } from './errors.ts'
import { BalancedLayout } from './layout.ts'
import type { BlockSink } from './nodes.ts'
import { CHUNK_SIZE } from './profile.ts'
import type { FileCid } from './types.ts'

/** Open a regular file for reading; our errors for a missing or unreadable path. */
export function openForRead(path: string): number {
  let fd: number
  try {
    fd = openSync(path, 'r')
  } catch (err) {
    throw fsError(path, err)
  }
  try {
    if (fstatSync(fd).isDirectory()) throw Object.assign(new Error('is a directory'), { code: 'EISDIR' })
  } catch (err) {
    closeSync(fd)
    throw fsError(path, err)
  }
  return fd
}

/**
 * Hash a whole file synchronously through one reusable chunk buffer of CHUNK_SIZE bytes: one
 * `readSync` per chunk, no other allocation per chunk than its 32-byte digest. For worker threads and
 * small files.
 */
export function hashFileSync(path: string, buf: Buffer): FileCid {
  const fd = openForRead(path)
  try {
    return hashOpenFileSync(fd, buf)
  } catch (err) {
    throw fsError(path, err)
  } finally {
    closeSync(fd)
  }
}

/**
 * As hashFileSync, for an open file descriptor (read from offset 0 to its end). `firstRead`: the
 * caller already read the first chunk into `buf`, this many bytes. `whole`: also fed every chunk, in
 * order (the whole file's digest, from the reads the CID needs anyway).
 */
export function hashOpenFileSync(
  fd: number,
  buf: Buffer,
  firstRead?: number,
  whole?: { update(b: Uint8Array): unknown },
): FileCid {
  const layout = new BalancedLayout()
  let position = 0
  for (;;) {
    const n = position === 0 && firstRead !== undefined ? firstRead : readFull(fd, buf, position)
    if (n > 0) {
      const chunk = buf.subarray(0, n)
      layout.addLeaf(sha256(chunk), n)
      whole?.update(chunk)
    }
    position += n
    if (n < buf.length) break
  }
  return layout.finish()
}

let sharedBuf: Buffer | undefined

/** The main thread's reusable chunk buffer. */
export function mainThreadBuffer(): Buffer {
  sharedBuf ??= chunkBuffer()
  return sharedBuf
}

async function openHandle(path: string): Promise<FileHandle> {
  let fh: FileHandle
  try {
    fh = await open(path, 'r')
  } catch (err) {
    throw fsError(path, err)
  }
  try {
    if ((await fh.stat()).isDirectory()) throw Object.assign(new Error('is a directory'), { code: 'EISDIR' })
  } catch (err) {
    await fh.close()
    throw fsError(path, err)
  }
  return fh
}

async function readFullAsync(fh: FileHandle, buf: Buffer, position: number): Promise<number> {
  let got = 0
  while (got < buf.length) {
    const { bytesRead } = await fh.read(buf, got, buf.length - got, position + got)
    if (bytesRead === 0) break
    got += bytesRead
  }
  return got
}

/** Chunk buffers of finished async hashes, reused by the next ones. */
const freeBuffers: Buffer[] = []
const takeBuffer = (): Buffer => freeBuffers.pop() ?? chunkBuffer()

/**
 * Hash a file in this thread without blocking the event loop on reads: two reusable chunk buffers,
 * the next chunk read while the current one is hashed.
 */
export async function hashFileAsync(path: string): Promise<FileCid> {
  const fh = await openHandle(path)
  let cur = takeBuffer()
  let next = takeBuffer()
  let pending: Promise<number> | undefined
  try {
    const layout = new BalancedLayout()
    let position = 0
    let reading: Promise<number> = readFullAsync(fh, cur, 0)
    pending = reading
    for (;;) {
      let n: number
      try {
        n = await reading
      } catch (err) {
        throw fsError(path, err)
      }
      pending = undefined
      const full = n === cur.length
      if (full) {
        reading = readFullAsync(fh, next, position + n)
        pending = reading
      }
      if (n > 0) layout.addLeaf(sha256(cur.subarray(0, n)), n)
      position += n
      if (!full) break
      ;[cur, next] = [next, cur]
    }
    return layout.finish()
  } finally {
    await pending?.catch(() => 0)
    await fh.close()
    if (freeBuffers.length < 4) freeBuffers.push(cur, next)
  }
}

/**
 * The blocks of a small file (read with blocking reads), leaves and File nodes, children before
 * parents, and its root. Each block's bytes are fresh.
 */
export function fileBlocksSync(path: string): {
  blocks: { cid: FileCid['cid']; bytes: Uint8Array }[]
  root: FileCid
} {
  const fd = openForRead(path)
  try {
    const blocks: { cid: FileCid['cid']; bytes: Uint8Array }[] = []
    const layout = new BalancedLayout((cid, bytes) => {
      blocks.push({ cid, bytes })
    })
    const buf = mainThreadBuffer()
    let position = 0
    for (;;) {
      const n = readFull(fd, buf, position)
      if (n > 0) {
        const bytes = Uint8Array.prototype.slice.call(buf, 0, n) // a copy the consumer keeps
        layout.addLeaf(sha256(bytes), n, bytes)
      }
      position += n
      if (n < CHUNK_SIZE) break
    }
    const root = layout.finish()
    return { blocks, root }
  } catch (err) {
    throw fsError(path, err)
  } finally {
    closeSync(fd)
  }
}

/**
 * The blocks of a file, leaves and File nodes, children before parents; the last one is the root.
 * Each block's bytes are fresh (the consumer may keep them).
 */
export async function* fileBlocks(
  path: string,
): AsyncGenerator<{ cid: FileCid['cid']; bytes: Uint8Array }, FileCid> {
  const fh = await openHandle(path)
  try {
    const out: { cid: FileCid['cid']; bytes: Uint8Array }[] = []
    const sink: BlockSink = (cid, bytes) => {
      out.push({ cid, bytes })
    }
    const layout = new BalancedLayout(sink)
    let position = 0
    for (;;) {
      const buf = Buffer.allocUnsafe(CHUNK_SIZE)
      let n: number
      try {
        n = await readFullAsync(fh, buf, position)
      } catch (err) {
        throw fsError(path, err)
      }
      if (n > 0) {
        const bytes = buf.subarray(0, n)
        layout.addLeaf(sha256(bytes), n, bytes)
      }
      position += n
      yield* out.splice(0)
      if (n < CHUNK_SIZE) break
    }
    const root = layout.finish()
    yield* out.splice(0)
    return root
  } finally {
    await fh.close()
  }
}
