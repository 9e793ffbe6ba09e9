import * as dagPB from '@ipld/dag-pb'
import { murmur364 } from '@multiformats/murmur3'
import { UnixFS } from 'ipfs-unixfs'
import { CID } from 'multiformats/cid'
import * as Digest from 'multiformats/hashes/digest'
import { sha256 } from './chunks.ts'
import { DagMisbuiltError } from './errors.ts'
import { encodePB, linkTsizes, type RawLink, varintLen } from './pb.ts'
import { DAG_PB_CODEC, HAMT_FANOUT, HAMT_HASH_TYPE, HAMT_THRESHOLD, RAW_CODEC, SHA2_256 } from './profile.ts'
import type { DirEntryLike, NodeCid } from './types.ts'

const EMPTY = new Uint8Array(0)

/** Receives every block a builder makes, children before parents. */
export type BlockSink = (cid: CID, bytes: Uint8Array) => void

export { sha256 } from './chunks.ts'

/** CIDv1 raw of a 32-byte sha2-256 digest. */
export function rawCid(digest: Uint8Array): CID {
  return CID.createV1(RAW_CODEC, Digest.create(SHA2_256, digest))
}

/** A node just built: its CID, cumulative size and block. */
interface BuiltNode extends NodeCid {
  bytes: Uint8Array
}

/**
 * Check an encoded dag-pb block against what its builder meant, hash it, hand it to `sink`. The node's
 * cumulative size is its length plus the link Tsizes read back from its own bytes, so it always agrees
 * with the block; and each of those must be the `expected` one (in link order), or the block is
 * refused before it is hashed or stored. This is the guard against the wrong-CID heisenbug of issue
 * 10 (a link's Tsize seen to come out as another node's under a loaded V8): whatever goes wrong
 * between the inputs and the bytes, a node that disagrees with its inputs never gets a CID.
 */
function buildBlock(bytes: Uint8Array, expected: readonly number[], sink?: BlockSink): BuiltNode {
  const written = linkTsizes(bytes)
  let childTsize = 0
  for (let i = 0; i < written.length || i < expected.length; i++) {
    if (written[i] !== expected[i]) throw new DagMisbuiltError(i, written[i], expected[i])
    childTsize += written[i]!
  }
  const cid = CID.createV1(DAG_PB_CODEC, Digest.create(SHA2_256, sha256(bytes)))
  sink?.(cid, bytes)
  return { cid, tsize: bytes.length + childTsize, bytes }
}

/** Check and hash an encoded dag-pb block (see `buildBlock`), hand it to `sink`, return its CID and cumulative size. */
export function dagPbBlock(bytes: Uint8Array, expected: readonly number[], sink?: BlockSink): NodeCid {
  const { cid, tsize } = buildBlock(bytes, expected, sink)
  return { cid, tsize }
}

/** A child of a dag-pb File node: its CID, cumulative DAG size and the file bytes under it. */
export interface FileChild {
  cid: CID
  tsize: number
  size: number
}

/** A dag-pb UnixFS File node over `children` (links with empty names, `blocksizes`). */
export function fileNode(children: FileChild[], sink?: BlockSink): FileChild {
  let size = 0
  const expected: number[] = []
  const blockSizes: bigint[] = []
  const links: RawLink[] = []
  for (const c of children) {
    size += c.size
    expected.push(c.tsize)
    blockSizes.push(BigInt(c.size))
    links.push({ hash: c.cid.bytes, name: EMPTY, tsize: c.tsize })
  }
  const Data = new UnixFS({ type: 'file', blockSizes }).marshal()
  const { cid, tsize } = buildBlock(encodePB(links, Data), expected, sink)
  return { cid, tsize, size }
}

/** A UnixFS Symlink node. The target is kept byte for byte. */
export function symlinkNode(target: string | Uint8Array, sink?: BlockSink): NodeCid {
  const data = typeof target === 'string' ? Buffer.from(target, 'utf8') : target
  const Data = new UnixFS({ type: 'symlink', data }).marshal()
  return dagPbBlock(dagPB.encode({ Data, Links: [] }), [], sink)
}

/** Bytes one link adds to a dag-pb block (boxo `linkSerializedSize`). */
export function linkSerializedSize(nameLen: number, cidLen: number, tsize: number): number {
  const linkLen = 1 + varintLen(cidLen) + cidLen + 1 + varintLen(nameLen) + nameLen + 1 + varintLen(tsize)
  return 1 + varintLen(linkLen) + linkLen
}

/** The Data field of a basic directory without mode or mtime: `0a 02 08 01`. */
const DIR_DATA = new UnixFS({ type: 'directory' }).marshal()
const DIR_DATA_SIZE = 2 + DIR_DATA.length

interface NamedEntry {
  entry: DirEntryLike
  nameBytes: Buffer
}

function named(entries: DirEntryLike[]): NamedEntry[] {
  const out = entries.map((entry) => ({ entry, nameBytes: Buffer.from(entry.name, 'utf8') }))
  // Go sorts links with strings.Compare: byte order of the UTF-8 names.
  out.sort((a, b) => Buffer.compare(a.nameBytes, b.nameBytes))
  return out
}

/**
 * The size boxo's `block` estimation gives a basic directory of these entries: the exact length of its
 * dag-pb block.
 */
export function basicDirectorySize(entries: DirEntryLike[]): number {
  let size = DIR_DATA_SIZE
  for (const e of entries) {
    size += linkSerializedSize(Buffer.byteLength(e.name, 'utf8'), e.cid.byteLength, e.tsize)
  }
  return size
}

/** Whether Kubo shards a directory of these entries under the profile. */
export function isSharded(entries: DirEntryLike[]): boolean {
  return basicDirectorySize(entries) > HAMT_THRESHOLD
}

/** A directory node: basic dag-pb Directory, or a HAMT past the profile's threshold. */
export function directoryNode(entries: DirEntryLike[], sink?: BlockSink): NodeCid {
  const sorted = named(entries)
  if (basicDirectorySize(entries) > HAMT_THRESHOLD) return hamtNode(sorted, 0, sink)
  const expected: number[] = []
  const links: RawLink[] = sorted.map(({ entry, nameBytes }) => {
    expected.push(entry.tsize)
    return { hash: entry.cid.bytes, name: nameBytes, tsize: entry.tsize }
  })
  return dagPbBlock(encodePB(links, DIR_DATA), expected, sink)
}

/** Link name prefixes of a 256-wide HAMT: `%02X` of the slot. */
const HEX_BYTES = Array.from({ length: HAMT_FANOUT }, (_, i) =>
  Buffer.from(i.toString(16).toUpperCase().padStart(2, '0'), 'latin1'),
)
const HASH_BYTES = 8

interface HashedEntry extends NamedEntry {
  hash: Uint8Array
}

/** murmur3-x64-64 of a name, the 8 bytes boxo's HAMT consumes (synchronous in @multiformats/murmur3). */
export function murmur64(bytes: Uint8Array): Uint8Array {
  const d = murmur364.digest(bytes)
  if (d instanceof Promise) throw new Error('murmur3 hasher is unexpectedly async')
  return d.digest
}

function hamtNode(sorted: NamedEntry[], depth: number, sink?: BlockSink): NodeCid {
  const hashed: HashedEntry[] = sorted.map((e) => ({ ...e, hash: murmur64(e.nameBytes) }))
  const { cid, tsize } = shard(hashed, depth, sink)
  return { cid, tsize }
}

/** The cumulative size of a node, from its block alone. */
function tsizeOfBlock(bytes: Uint8Array): number {
  let sum = bytes.length
  for (const t of linkTsizes(bytes)) sum += t
  return sum
}

/**
 * One level of boxo's HAMT (fanout 256, murmur3-x64-64 of the name, 8 bits per level): a slot
 * holding one entry links it as `XX<name>`; a slot holding more becomes a child shard linked as `XX`.
 * This is the shape boxo reaches by inserting the entries one by one.
 */
function shard(entries: HashedEntry[], depth: number, sink?: BlockSink): BuiltNode {
  if (depth >= HASH_BYTES) throw new Error('sharded directory too deep')
  const slots = new Map<number, HashedEntry[]>()
  for (const e of entries) {
    const idx = e.hash[depth]!
    const slot = slots.get(idx)
    if (slot) slot.push(e)
    else slots.set(idx, [e])
  }
  const bitfield = new Uint8Array(HAMT_FANOUT / 8)
  const links: RawLink[] = []
  // What each link's Tsize must be: an entry's own, or a child shard's as read from its block (not
  // from the number the child returned, so a value lost on the way is caught).
  const expected: number[] = []
  for (const idx of [...slots.keys()].sort((a, b) => a - b)) {
    const slot = slots.get(idx)!
    bitfield[bitfield.length - 1 - (idx >> 3)]! |= 1 << (idx & 7)
    if (slot.length === 1) {
      const { entry, nameBytes } = slot[0]!
      links.push({
        hash: entry.cid.bytes,
        name: Buffer.concat([HEX_BYTES[idx]!, nameBytes]),
        tsize: entry.tsize,
      })
      expected.push(entry.tsize)
    } else {
      const child = shard(slot, depth + 1, sink)
      links.push({ hash: child.cid.bytes, name: HEX_BYTES[idx]!, tsize: child.tsize })
      expected.push(tsizeOfBlock(child.bytes))
    }
  }
  // go-bitfield's Bytes(): big-endian, leading zero bytes dropped.
  let first = 0
  while (first < bitfield.length && bitfield[first] === 0) first++
  const Data = new UnixFS({
    type: 'hamt-sharded-directory',
    data: bitfield.subarray(first),
    hashType: BigInt(HAMT_HASH_TYPE),
    fanout: BigInt(HAMT_FANOUT),
  }).marshal()
  return buildBlock(encodePB(links, Data), expected, sink)
}
