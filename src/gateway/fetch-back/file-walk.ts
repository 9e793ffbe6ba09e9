/**
 * The bytes of a UnixFS file read from a stream of blocks in depth-first order (the order of a
 * trustless gateway's `order=dfs` CAR, of `ipfs dag export`, of a file's sections in a piece written
 * root first), each block checked against the CID its parent names before any of its bytes are
 * yielded (DESIGN promise 2). Starting from the root CID alone, every block is reached through a
 * verified parent, so the bytes yielded are the file's and in its order.
 *
 * A range is served by skipping the leaves outside it: a source that honoured `entity-bytes` leaves
 * them out, one that did not sends them and they are checked for their place and dropped.
 */
import * as dagPb from '@ipld/dag-pb'
import { UnixFS } from 'ipfs-unixfs'
import type { CID } from 'multiformats/cid'
import { verifyBlock } from '../../ipfs/index.ts'
import type { CarBlock } from './car-blocks.ts'
import { SourceAnswerError } from './errors.ts'

const RAW = 0x55
const DAG_PB = 0x70
const IDENTITY = 0x00

/** An inclusive byte range of the file. */
export interface WalkRange {
  start: number
  end: number
}

interface Expected {
  cid: CID
  /** The file offset of this node's first byte. */
  offset: number
  /** Its byte length as the parent states it; undefined for the root. */
  size: number | undefined
  /** Whether any of its bytes fall in the range. */
  needed: boolean
}

function sameBlock(a: CID, b: CID): boolean {
  if (a.code !== b.code) return false
  const x = a.multihash.bytes
  const y = b.multihash.bytes
  return x.length === y.length && Buffer.from(x.buffer, x.byteOffset, x.length).equals(y)
}

/** Repeated leaves (a file of zeros) come once from a source that deduplicates: keep the last few. */
class RecentBlocks {
  #map = new Map<string, Uint8Array>()
  static readonly MAX = 8
  key(cid: CID): string {
    return `${cid.code}:${Buffer.from(cid.multihash.bytes).toString('base64')}`
  }
  get(cid: CID): Uint8Array | undefined {
    return this.#map.get(this.key(cid))
  }
  add(cid: CID, bytes: Uint8Array): void {
    const k = this.key(cid)
    if (this.#map.has(k)) return
    if (this.#map.size >= RecentBlocks.MAX) this.#map.delete(this.#map.keys().next().value!)
    this.#map.set(k, bytes)
  }
}

/**
 * The bytes `range` of the file `root` (whose size the index says is `size`), from `blocks`. Throws
 * BlockMismatchError for a block that does not hash to its CID, and SourceAnswerError for a block out
 * of place, a DAG that is not a file of that size, or a stream that ends before the range does.
 */
export async function* fileBytes(
  blocks: AsyncIterable<CarBlock>,
  root: CID,
  size: number,
  range: WalkRange,
  where: string,
): AsyncGenerator<Uint8Array> {
  const it = blocks[Symbol.asyncIterator]()
  const recent = new RecentBlocks()
  const stack: Expected[] = [{ cid: root, offset: 0, size: undefined, needed: true }]
  let pending: CarBlock | undefined
  let emitted = 0
  const wanted = range.end - range.start + 1

  function* slice(bytes: Uint8Array, offset: number): Generator<Uint8Array> {
    const from = Math.max(range.start - offset, 0)
    const to = Math.min(range.end + 1 - offset, bytes.length)
    if (to > from) {
      emitted += to - from
      yield from === 0 && to === bytes.length ? bytes : bytes.subarray(from, to)
    }
  }

  function* take(e: Expected, bytes: Uint8Array): Generator<Uint8Array> {
    if (e.cid.code === RAW || e.cid.multihash.code === IDENTITY) {
      if (e.size !== undefined && e.size !== bytes.length)
        throw new SourceAnswerError(
          where,
          `block ${e.cid} holds ${bytes.length} bytes, its parent says ${e.size}`,
        )
      if (e === rootEntry && bytes.length !== size)
        throw new SourceAnswerError(where, `${root} is ${bytes.length} bytes, the index says ${size}`)
      if (e.needed) yield* slice(bytes, e.offset)
      return
    }
    if (e.cid.code !== DAG_PB) throw new SourceAnswerError(where, `block ${e.cid} is neither raw nor dag-pb`)
    let node: dagPb.PBNode
    let fs: UnixFS
    try {
      node = dagPb.decode(bytes)
      fs = UnixFS.unmarshal(node.Data ?? new Uint8Array())
    } catch (err) {
      throw new SourceAnswerError(where, `block ${e.cid} is no UnixFS node (${(err as Error).message})`)
    }
    if (fs.type !== 'file' && fs.type !== 'raw')
      throw new SourceAnswerError(where, `${e.cid} is a UnixFS ${fs.type}, not a file`)
    const total = Number(fs.fileSize())
    if (e === rootEntry && total !== size)
      throw new SourceAnswerError(where, `${root} is a file of ${total} bytes, the index says ${size}`)
    if (e.size !== undefined && e.size !== total)
      throw new SourceAnswerError(where, `block ${e.cid} covers ${total} bytes, its parent says ${e.size}`)
    const data = fs.data ?? new Uint8Array()
    if (e.needed && data.length > 0) yield* slice(data, e.offset)
    if (node.Links.length !== fs.blockSizes.length)
      throw new SourceAnswerError(
        where,
        `block ${e.cid} has ${node.Links.length} links and ${fs.blockSizes.length} sizes`,
      )
    let off = e.offset + data.length
    const children: Expected[] = []
    for (let i = 0; i < node.Links.length; i++) {
      const len = Number(fs.blockSizes[i]!)
      const needed = e.needed && off <= range.end && off + len - 1 >= range.start && len > 0
      children.push({ cid: node.Links[i]!.Hash, offset: off, size: len, needed })
      off += len
    }
    for (let i = children.length - 1; i >= 0; i--) stack.push(children[i]!)
  }

  const rootEntry = stack[0]!
  if (wanted <= 0) return
  try {
    while (stack.length > 0) {
      const e = stack[stack.length - 1]!
      if (e.cid.multihash.code === IDENTITY) {
        stack.pop()
        yield* take(e, e.cid.multihash.digest)
        continue
      }
      if (!pending) {
        const r = await it.next()
        if (r.done) break
        pending = r.value
      }
      if (sameBlock(pending.cid, e.cid)) {
        verifyBlock(e.cid, pending.bytes, where)
        stack.pop()
        const bytes = pending.bytes
        pending = undefined
        if (e.cid.code === RAW) recent.add(e.cid, bytes)
        yield* take(e, bytes)
        if (emitted >= wanted) return
        continue
      }
      if (!e.needed) {
        // A block outside the range that the source rightly left out.
        stack.pop()
        continue
      }
      const again = recent.get(e.cid)
      if (again) {
        stack.pop()
        yield* take(e, again)
        if (emitted >= wanted) return
        continue
      }
      throw new SourceAnswerError(where, `sent block ${pending.cid} where ${e.cid} was expected`)
    }
    if (emitted < wanted)
      throw new SourceAnswerError(where, `the answer ends after ${emitted} of ${wanted} bytes (truncated)`)
  } finally {
    await it.return?.()
  }
}
