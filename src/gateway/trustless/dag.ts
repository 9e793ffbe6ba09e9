/**
 * What the trustless endpoint needs to know of a block to walk a DAG without deserializing files:
 * its links in order, and for UnixFS what kind of node it is (a file with its block sizes, a basic or
 * a HAMT directory). dag-pb, raw, dag-cbor and dag-json are understood; any other codec is a leaf.
 */
import * as dagCbor from '@ipld/dag-cbor'
import * as dagJson from '@ipld/dag-json'
import * as dagPb from '@ipld/dag-pb'
import { UnixFS } from 'ipfs-unixfs'
import { CID } from 'multiformats/cid'
import { murmur64 } from '../../cid/index.ts'

const RAW = 0x55
const DAG_PB = 0x70
const DAG_CBOR = 0x71
const DAG_JSON = 0x0129
const IDENTITY = 0x00

export function isIdentity(cid: CID): boolean {
  return cid.multihash.code === IDENTITY
}

export interface PbLink {
  cid: CID
  name: string
  /** The link's Tsize when it has one: a raw leaf's own size (a one-chunk file's bytes). */
  tsize?: number
}

export type DagNode =
  /** A raw block: file bytes. */
  | { kind: 'raw'; size: number }
  /** A UnixFS file (or raw) dag-pb node: inline data, then one child per block size. */
  | { kind: 'file'; links: PbLink[]; inline: number; blockSizes: number[]; size: number }
  | { kind: 'dir'; links: PbLink[] }
  | { kind: 'hamt'; links: PbLink[]; fanout: number }
  /** A symlink, metadata or non-UnixFS dag-pb node: its links are all there is to walk. */
  | { kind: 'pb'; links: PbLink[] }
  /** DAG-CBOR or DAG-JSON: a value whose CIDs are its links. */
  | { kind: 'ipld'; value: unknown; links: CID[] }
  /** A codec this endpoint does not decode: a leaf. */
  | { kind: 'opaque' }

/** Decodes a block (already verified against `cid`); a block that does not decode is opaque, never an error. */
export function decodeNode(cid: CID, bytes: Uint8Array): DagNode {
  try {
    switch (cid.code) {
      case RAW:
        return { kind: 'raw', size: bytes.length }
      case DAG_PB:
        return decodePb(bytes)
      case DAG_CBOR: {
        const value = dagCbor.decode(bytes)
        return { kind: 'ipld', value, links: linksOf(value) }
      }
      case DAG_JSON: {
        const value = dagJson.decode(bytes)
        return { kind: 'ipld', value, links: linksOf(value) }
      }
      default:
        return { kind: 'opaque' }
    }
  } catch {
    return { kind: 'opaque' }
  }
}

function decodePb(bytes: Uint8Array): DagNode {
  const pb = dagPb.decode(bytes)
  const links = pb.Links.map(
    (l): PbLink => ({
      cid: l.Hash,
      name: l.Name ?? '',
      ...(l.Tsize !== undefined ? { tsize: l.Tsize } : {}),
    }),
  )
  if (!pb.Data) return { kind: 'pb', links }
  let fs: UnixFS
  try {
    fs = UnixFS.unmarshal(pb.Data)
  } catch {
    return { kind: 'pb', links }
  }
  switch (fs.type) {
    case 'file':
    case 'raw': {
      const blockSizes = fs.blockSizes.map(Number)
      const inline = fs.data?.length ?? 0
      return { kind: 'file', links, inline, blockSizes, size: Number(fs.fileSize()) }
    }
    case 'directory':
      return { kind: 'dir', links }
    case 'hamt-sharded-directory':
      return { kind: 'hamt', links, fanout: Number(fs.fanout ?? 256n) }
    default:
      return { kind: 'pb', links }
  }
}

/** The CIDs in an IPLD value, in the order its encoding lists them (dag-cbor sorts map keys). */
function linksOf(value: unknown, out: CID[] = []): CID[] {
  const cid = CID.asCID(value)
  if (cid) {
    out.push(cid)
    return out
  }
  if (Array.isArray(value)) for (const v of value) linksOf(v, out)
  else if (value !== null && typeof value === 'object' && !(value instanceof Uint8Array))
    for (const v of Object.values(value)) linksOf(v, out)
  return out
}

/** Every link of a node, in DAG order (what `dag-scope=all` follows). */
export function linksOfNode(node: DagNode): CID[] {
  switch (node.kind) {
    case 'file':
    case 'dir':
    case 'hamt':
    case 'pb':
      return node.links.map((l) => l.cid)
    case 'ipld':
      return node.links
    default:
      return []
  }
}

/** Hex digits of a HAMT link's slot prefix for `fanout` (256: two). */
export function hamtPrefixLength(fanout: number): number {
  return (fanout - 1).toString(16).length
}

/**
 * The HAMT slot of `name` at `depth` (boxo's hashBits: murmur3-x64-64 of the name, log2(fanout) bits
 * per level, most significant first).
 */
export function hamtSlot(name: string, depth: number, fanout: number): number {
  const bits = Math.log2(fanout)
  if (!Number.isInteger(bits) || bits < 1) throw new RangeError(`HAMT fanout ${fanout} is not a power of two`)
  const hash = murmur64(new TextEncoder().encode(name))
  let slot = 0
  for (let i = 0; i < bits; i++) {
    const bit = depth * bits + i
    const byte = hash[bit >> 3]
    if (byte === undefined) throw new RangeError('HAMT deeper than its hash')
    slot = (slot << 1) | ((byte >> (7 - (bit & 7))) & 1)
  }
  return slot
}

/**
 * One step of a HAMT lookup: the link of `name` in this shard (`entry`), the child shard to look in
 * next (`shard`), or nothing.
 */
function hamtStep(
  node: Extract<DagNode, { kind: 'hamt' }>,
  name: string,
  depth: number,
): { entry: CID } | { shard: CID } | undefined {
  const slot = hamtSlot(name, depth, node.fanout)
  const plen = hamtPrefixLength(node.fanout)
  for (const l of node.links) {
    if (Number.parseInt(l.name.slice(0, plen), 16) !== slot) continue
    if (l.name.length === plen) return { shard: l.cid }
    if (l.name.slice(plen) === name) return { entry: l.cid }
  }
  return undefined
}

/**
 * The link of `name` in a HAMT directory, looked up shard by shard from `top`; `shard` loads the child
 * shard to look in next (undefined when that block is no HAMT shard: the name is not there).
 */
export async function hamtLookup(
  top: Extract<DagNode, { kind: 'hamt' }>,
  name: string,
  shard: (cid: CID) => Promise<Extract<DagNode, { kind: 'hamt' }> | undefined>,
): Promise<CID | undefined> {
  let node = top
  for (let depth = 0; ; depth++) {
    const step = hamtStep(node, name, depth)
    if (!step) return undefined
    if ('entry' in step) return step.entry
    const child = await shard(step.shard)
    if (!child) return undefined
    node = child
  }
}

/** Inner shards of a HAMT node (links named by a slot alone), which `dag-scope=entity` includes. */
export function hamtShards(node: Extract<DagNode, { kind: 'hamt' }>): CID[] {
  const plen = hamtPrefixLength(node.fanout)
  return node.links.filter((l) => l.name.length === plen).map((l) => l.cid)
}

/**
 * Follows `segments` inside an IPLD value: the CID reached (with the segments left after it), or the
 * value's end when the path stops inside the block; undefined when a segment names nothing.
 */
export function ipldStep(
  value: unknown,
  segments: string[],
): { cid: CID; rest: string[] } | { inside: true } | undefined {
  let v = value
  for (let i = 0; i < segments.length; i++) {
    const seg = segments[i]!
    if (Array.isArray(v)) {
      if (!/^(0|[1-9][0-9]*)$/.test(seg)) return undefined
      v = v[Number(seg)]
    } else if (v !== null && typeof v === 'object' && !(v instanceof Uint8Array) && !CID.asCID(v)) {
      if (!Object.hasOwn(v, seg)) return undefined
      v = (v as Record<string, unknown>)[seg]
    } else return undefined
    if (v === undefined) return undefined
    const cid = CID.asCID(v)
    if (cid) return { cid, rest: segments.slice(i + 1) }
  }
  return { inside: true }
}
