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

import { createHash } from 'node:crypto'
import * as dagPb from '@ipld/dag-pb'
import { UnixFS } from 'ipfs-unixfs'
import type { CID } from 'multiformats/cid'
import { BlockMismatchError, UnsupportedHashError } from '../../ipfs/index.ts'
import type { CarBlock } from './car-blocks.ts'
import { SourceAnswerError } from './errors.ts'
import { sha256Off } from './sha256-pool.ts'

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

const SHA2_256 = 0x12

/** Throw unless the parts hash to `cid` (sha2-256, what the `unixfs-v1-2025` profile makes). */
function verifyParts(cid: CID, parts: Uint8Array[], where: string): void {
  if (cid.multihash.code !== SHA2_256) throw new UnsupportedHashError(cid.toString(), cid.multihash.code)
  const h = createHash('sha256')
  for (const p of parts) h.update(p)
  if (!h.digest().equals(cid.multihash.digest)) throw new BlockMismatchError(cid.toString(), where)
}

function concat(parts: Uint8Array[], length: number): Uint8Array {
  return parts.length === 1 ? parts[0]! : Buffer.concat(parts, length)
}

/** Blocks read ahead of the walk, each being hashed in the worker meanwhile. */
const AHEAD = 4
/** Blocks at least this big are hashed in the worker; smaller ones (dag-pb nodes) here. */
const OFF_THREAD = 64 * 1024

interface HashedBlock extends CarBlock {
  /** The SHA-256 of the block's bytes, when the worker computed it. */
  digest?: Uint8Array
}

/** One block's bytes, contiguous and owning its whole ArrayBuffer (so it can be transferred). */
function owned(block: CarBlock): Uint8Array {
  const b = block.parts.length === 1 ? block.parts[0]! : Buffer.concat(block.parts, block.length)
  if (block.parts.length > 1 && b.byteOffset === 0 && b.buffer.byteLength === b.length) return b
  const copy = new Uint8Array(new ArrayBuffer(b.length))
  copy.set(b)
  return copy
}

/**
 * `blocks`, up to AHEAD ahead of the consumer, each large one made contiguous and its SHA-256 computed
 * in the worker thread (sha256-pool.ts) while the main thread reads and parses the next ones.
 */
async function* hashedAhead(blocks: AsyncIterable<CarBlock>): AsyncGenerator<HashedBlock> {
  const it = blocks[Symbol.asyncIterator]()
  const queue: Promise<IteratorResult<HashedBlock>>[] = []
  const pull = () =>
    it.next().then(async (r): Promise<IteratorResult<HashedBlock>> => {
      if (r.done) return r
      const b = r.value
      if (b.length < OFF_THREAD || b.cid.multihash.code !== SHA2_256) return r
      const { bytes, digest } = await sha256Off(owned(b))
      return { done: false, value: { cid: b.cid, parts: [bytes], length: bytes.length, digest } }
    })
  let ended = false
  try {
    for (;;) {
      while (!ended && queue.length < AHEAD) {
        // A read ahead that fails is thrown when its turn comes, not as an unhandled rejection.
        const next = pull()
        next.catch(() => {})
        queue.push(next)
      }
      const r = await queue.shift()!
      if (r.done) {
        ended = true
        if (queue.length === 0) return
        continue
      }
      yield r.value
    }
  } finally {
    await it.return?.(undefined)
  }
}

function sameBlock(a: CID, b: CID): boolean {
  if (a.code !== b.code) return false
  const x = a.multihash.bytes
  const y = b.multihash.bytes
  return x.length === y.length && Buffer.from(x.buffer, x.byteOffset, x.length).equals(y)
}

/** Repeated leaves (a file of zeros) come once from a source that deduplicates: keep the last few. */
class RecentBlocks {
  #map = new Map<string, CarBlock>()
  static readonly MAX = 8
  key(cid: CID): string {
    return `${cid.code}:${Buffer.from(cid.multihash.bytes).toString('base64')}`
  }
  get(cid: CID): CarBlock | undefined {
    return this.#map.get(this.key(cid))
  }
  add(block: CarBlock): void {
    const k = this.key(block.cid)
    if (this.#map.has(k)) return
    if (this.#map.size >= RecentBlocks.MAX) this.#map.delete(this.#map.keys().next().value!)
    this.#map.set(k, block)
  }
}

/**
 * The bytes `range` of the file `root` (whose size the index says is `size`), from `blocks`. Throws
 * BlockMismatchError for a block that does not hash to its CID, and SourceAnswerError for a block out
 * of place, a DAG that is not a file of that size, or a stream that ends before the range does.
 */
/**
 * What the caller keeps of the bytes already taken, for sources that send a repeated block once (a
 * Filecoin piece's sections are deduplicated): `onLeaf` learns where each whole leaf was yielded,
 * `earlier` gives such a leaf's bytes back when the DAG names it again.
 */
export interface SeenLeaves {
  onLeaf(cid: CID, offset: number, length: number): void
  earlier(cid: CID): Promise<Uint8Array[] | undefined>
}

export async function* fileBytes(
  blocks: AsyncIterable<CarBlock>,
  root: CID,
  size: number,
  range: WalkRange,
  where: string,
  seen?: SeenLeaves,
): AsyncGenerator<Uint8Array> {
  const it = hashedAhead(blocks)
  const recent = new RecentBlocks()
  const stack: Expected[] = [{ cid: root, offset: 0, size: undefined, needed: true }]
  let pending: HashedBlock | undefined
  let ended = false
  let emitted = 0
  const wanted = range.end - range.start + 1

  /** The parts of bytes lying at file offset `offset` on, cut to the range. */
  function* slice(parts: Uint8Array[], offset: number): Generator<Uint8Array> {
    let at = offset
    for (const p of parts) {
      const from = Math.max(range.start - at, 0)
      const to = Math.min(range.end + 1 - at, p.length)
      if (to > from) {
        emitted += to - from
        yield from === 0 && to === p.length ? p : p.subarray(from, to)
      }
      at += p.length
      if (at > range.end) return
    }
  }

  function* take(e: Expected, block: CarBlock): Generator<Uint8Array> {
    if (e.cid.code === RAW) {
      if (e.size !== undefined && e.size !== block.length)
        throw new SourceAnswerError(
          where,
          `block ${e.cid} holds ${block.length} bytes, its parent says ${e.size}`,
        )
      if (e === rootEntry && block.length !== size)
        throw new SourceAnswerError(where, `${root} is ${block.length} bytes, the index says ${size}`)
      if (e.needed) {
        // One contiguous chunk per leaf: a 1 MiB copy costs less than carrying ~16 network chunks
        // through the cache writes, the head window and every reader (measured: GC and writev).
        yield* slice([concat(block.parts, block.length)], e.offset)
        if (e.offset >= range.start && e.offset + block.length - 1 <= range.end)
          seen?.onLeaf(e.cid, e.offset, block.length)
      }
      return
    }
    const bytes = concat(block.parts, block.length)
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
    if (e.needed && data.length > 0) yield* slice([data], e.offset)
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
        // An identity CID carries its bytes: nothing to fetch or check.
        stack.pop()
        const digest = e.cid.multihash.digest
        yield* take(e, { cid: e.cid, parts: [digest], length: digest.length })
        continue
      }
      if (!pending && !ended) {
        const r = await it.next()
        if (r.done) ended = true
        else pending = r.value
      }
      if (pending && sameBlock(pending.cid, e.cid)) {
        if (pending.digest) {
          if (!Buffer.from(pending.digest).equals(e.cid.multihash.digest))
            throw new BlockMismatchError(e.cid.toString(), where)
        } else verifyParts(e.cid, pending.parts, where)
        stack.pop()
        const block = pending
        pending = undefined
        if (e.cid.code === RAW) recent.add(block)
        yield* take(e, block)
        if (emitted >= wanted) return
        continue
      }
      if (!e.needed) {
        // A block outside the range that the source rightly left out.
        stack.pop()
        continue
      }
      let again = recent.get(e.cid)
      if (!again && e.cid.code === RAW && seen) {
        const parts = await seen.earlier(e.cid)
        if (parts) {
          const block = { cid: e.cid, parts, length: parts.reduce((n, p) => n + p.length, 0) }
          // What was taken before was checked then; what comes back from the cache file is checked again.
          verifyParts(e.cid, parts, 'the cache file')
          again = block
        }
      }
      if (again) {
        stack.pop()
        yield* take(e, again)
        if (emitted >= wanted) return
        continue
      }
      // The stream ended with a needed block missing: reported as truncated below.
      if (!pending) break
      throw new SourceAnswerError(where, `sent block ${pending.cid} where ${e.cid} was expected`)
    }
    if (emitted < wanted)
      throw new SourceAnswerError(where, `the answer ends after ${emitted} of ${wanted} bytes (truncated)`)
  } finally {
    await it.return?.(undefined)
  }
}
