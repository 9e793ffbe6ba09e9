/**
 * Chunk reading and digests: what a hash worker needs for one-chunk files and for chunk ranges. Kept
 * apart from the DAG builders (layout.ts, nodes.ts) so that a worker loads multiformats, dag-pb and
 * ipfs-unixfs only when it meets a file of more than one chunk.
 */
import { hash as oneShotHash } from 'node:crypto'
import { readSync } from 'node:fs'
import { CHUNK_SIZE } from './profile.ts'

const WASM_PAGE = 64 * 1024
/** The one part of the WebAssembly global used here (the project's `lib` has no WebAssembly types). */
declare const WebAssembly: { Memory: new (d: { initial: number }) => { buffer: ArrayBuffer } }

/**
 * A buffer to read file chunks into, starting on a page boundary. `read` copies from the page cache,
 * whose pages are page-aligned, and that copy runs 3 to 5 times slower into a buffer that starts 16
 * bytes into a page, which is where malloc puts a 1 MiB Buffer (measured here: 1.9 against 6 to 10 GB/s;
 * `bench/lib/floor.ts` reads the same way). A WebAssembly memory is page-aligned by construction. Each
 * one reserves address space for its guard regions (gigabytes, not memory): keep a few and reuse them,
 * as the hash workers and `hash.ts` do.
 */
export function chunkBuffer(size = CHUNK_SIZE): Buffer {
  try {
    const memory = new WebAssembly.Memory({ initial: Math.ceil(size / WASM_PAGE) })
    return Buffer.from(memory.buffer, 0, size)
  } catch {
    // No room for the reservation (a `ulimit -v`): slower reads, same results.
    return Buffer.allocUnsafeSlow(size)
  }
}

export function sha256(bytes: Uint8Array): Buffer {
  return oneShotHash('sha256', bytes, 'buffer')
}

/**
 * The digest of `bytes` written into `out` at `offset`. Asking for a `binary` (latin1) string and copying it in is
 * cheaper than a Buffer result (no backing store per digest): 2.5 µs against 3.9 µs for a 2 KiB input,
 * which counts when every small file of a tree is one call.
 */
export function sha256Into(bytes: Uint8Array, out: Buffer, offset: number): void {
  out.write(oneShotHash('sha256', bytes, 'binary'), offset, 32, 'latin1')
}

/** Fill `buf` from `fd` at `position`; short only at end of file. */
export function readFull(fd: number, buf: Uint8Array, position: number): number {
  let got = 0
  while (got < buf.length) {
    const n = readSync(fd, buf, got, buf.length - got, position + got)
    if (n === 0) break
    got += n
  }
  return got
}

/**
 * Digests of `count` chunks from chunk `first`, into `out` (32 bytes each). Returns the bytes read;
 * less than the range only when the file ends inside it.
 */
export function hashRangeSync(fd: number, buf: Buffer, first: number, count: number, out: Buffer): number {
  let total = 0
  for (let i = 0; i < count; i++) {
    const n = readFull(fd, buf, (first + i) * CHUNK_SIZE)
    if (n === 0) break
    sha256Into(buf.subarray(0, n), out, i * 32)
    total += n
    if (n < buf.length) break
  }
  return total
}
