/**
 * A streaming reader of CARv1 sections: `varint(length) CID bytes`, one per block. A trustless
 * gateway's answer starts with a header section (its roots), which is skipped: the walk that reads the
 * blocks knows which CID it expects, so the header's roots decide nothing. A Filecoin piece read with
 * a Range holds a file's sections without a header.
 *
 * Bytes are not checked here (the walk does that, block by block); this only cuts the stream, and
 * throws SourceAnswerError on a stream that is not CAR (a length past the limit, a CID that does not
 * decode) or that ends inside a section.
 */
import { CID } from 'multiformats/cid'
import { SourceAnswerError } from './errors.ts'

export interface CarBlock {
  cid: CID
  /**
   * The block's bytes as the chunks they arrived in (views, not copies: a 1 MiB leaf spans many
   * network chunks, and copying it whole costs more than hashing it). `length` is their sum.
   */
  parts: Uint8Array[]
  length: number
}

/** A block section longer than this is no UnixFS block we would accept (the spec's limit is 2 MiB). */
const MAX_SECTION = 4 * 1024 * 1024

/** Chunks received and not yet consumed, read from the front without copying where it can. */
class Pending {
  #chunks: Uint8Array[] = []
  #head = 0
  length = 0

  push(chunk: Uint8Array): void {
    if (chunk.length === 0) return
    this.#chunks.push(chunk)
    this.length += chunk.length
  }

  /** The byte at `i` from the front (i < length). */
  at(i: number): number {
    let off = this.#head + i
    for (const c of this.#chunks) {
      if (off < c.length) return c[off]!
      off -= c.length
    }
    throw new RangeError('past the pending bytes')
  }

  /** Remove and return the first `n` bytes (n <= length) as views of the chunks holding them. */
  takeParts(n: number): Uint8Array[] {
    const out: Uint8Array[] = []
    let left = n
    while (left > 0) {
      const c = this.#chunks[0]!
      const piece = Math.min(c.length - this.#head, left)
      out.push(c.subarray(this.#head, this.#head + piece))
      left -= piece
      this.#advance(piece)
    }
    return out
  }

  /** Remove and return the first `n` bytes (n <= length): a view when one chunk holds them. */
  take(n: number): Uint8Array {
    const first = this.#chunks[0]!
    if (this.#head + n <= first.length) {
      const out = first.subarray(this.#head, this.#head + n)
      this.#advance(n)
      return out
    }
    const out = new Uint8Array(n)
    let filled = 0
    while (filled < n) {
      const c = this.#chunks[0]!
      const piece = Math.min(c.length - this.#head, n - filled)
      out.set(c.subarray(this.#head, this.#head + piece), filled)
      filled += piece
      this.#advance(piece)
    }
    return out
  }

  #advance(n: number): void {
    this.length -= n
    this.#head += n
    while (this.#chunks.length > 0 && this.#head >= this.#chunks[0]!.length) {
      this.#head -= this.#chunks[0]!.length
      this.#chunks.shift()
    }
  }
}

/** The unsigned LEB128 varint at the front, and its length in bytes; undefined when it is not all here. */
function peekVarint(p: Pending, where: string): { value: number; size: number } | undefined {
  let value = 0
  let mul = 1
  for (let i = 0; i < 8; i++) {
    if (i >= p.length) return undefined
    const b = p.at(i)
    value += (b & 0x7f) * mul
    if ((b & 0x80) === 0) return { value, size: i + 1 }
    mul *= 128
  }
  throw new SourceAnswerError(where, 'a CAR section length that is no varint')
}

/**
 * The blocks of a CAR stream, in the order they come. `header: true` expects (and skips) the CARv1
 * header first; `false` reads bare sections (a byte range of a piece).
 */
export async function* carBlocks(
  stream: AsyncIterable<Uint8Array>,
  opts: { header: boolean; where: string },
): AsyncGenerator<CarBlock> {
  const p = new Pending()
  let needHeader = opts.header
  let want: number | undefined
  let sizeLen = 0
  for await (const chunk of stream) {
    p.push(chunk)
    for (;;) {
      if (want === undefined) {
        const v = peekVarint(p, opts.where)
        if (!v) break
        if (v.value === 0 || v.value > MAX_SECTION)
          throw new SourceAnswerError(opts.where, `a CAR section of ${v.value} bytes`)
        want = v.value
        sizeLen = v.size
      }
      if (p.length < sizeLen + want) break
      p.take(sizeLen)
      if (needHeader) {
        p.take(want)
        want = undefined
        needHeader = false
        continue
      }
      // The CID is at most a few dozen bytes: decode it from a small copy, keep the rest as views.
      const headLen = Math.min(want, 128)
      const head = p.take(headLen)
      let cid: CID
      let cidLen: number
      try {
        const [c, rest] = CID.decodeFirst(head)
        cid = c
        cidLen = headLen - rest.length
      } catch (err) {
        throw new SourceAnswerError(
          opts.where,
          `a CAR section whose CID does not decode (${(err as Error).message})`,
        )
      }
      const parts: Uint8Array[] = []
      if (cidLen < headLen) parts.push(head.subarray(cidLen))
      if (want > headLen) parts.push(...p.takeParts(want - headLen))
      const length = want - cidLen
      want = undefined
      yield { cid, parts, length }
    }
  }
  if (p.length > 0 || want !== undefined)
    throw new SourceAnswerError(opts.where, 'the CAR ends inside a block')
}
