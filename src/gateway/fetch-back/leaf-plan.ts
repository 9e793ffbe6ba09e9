/**
 * A file's leaves known before any byte is fetched: for a multi-chunk file the index keeps its inner
 * dag-pb nodes (the block map, `index/nodes/<cid>`), so walking them from the file's CID gives every
 * raw leaf's CID, offset and length, each node checked against the CID its parent names. With that
 * plan a source may send the file's plain bytes (or any leaf-aligned range of them): each leaf's bytes
 * are hashed against its own CID before they go out (leaf-bytes.ts), so the answer is as verified as a
 * trustless CAR, without the CAR's framing or a DAG walk over the network.
 *
 * Undefined when the plan cannot be made from what is known locally (a node the index never mapped,
 * leaves that are not raw sha2-256 blocks, inline data in a node): the source then reads a CAR.
 */
import { createHash } from 'node:crypto'
import * as dagPb from '@ipld/dag-pb'
import { UnixFS } from 'ipfs-unixfs'
import type { CID } from 'multiformats/cid'

/** One raw leaf of a file: its bytes are `offset..offset+length-1` of the file and hash to `cid`. */
export interface Leaf {
  cid: CID
  offset: number
  length: number
}

/** Where the file's inner nodes are read from (the index's `BlockReader`): undefined for one not known. */
export interface KnownNodes {
  get(cid: CID): Promise<Uint8Array | undefined>
}

const RAW = 0x55
const DAG_PB = 0x70
const SHA2_256 = 0x12
/** A file's DAG deeper than this is no balanced UnixFS layout we made: read it as a CAR instead. */
const MAX_DEPTH = 16

function hashesTo(cid: CID, bytes: Uint8Array): boolean {
  return createHash('sha256').update(bytes).digest().equals(cid.multihash.digest)
}

/**
 * The raw leaves of the file `root` of `size` bytes, in file order, from the nodes known locally; or
 * undefined when some node is not known or the DAG is not one a byte stream can be checked against.
 */
export async function knownLeaves(root: CID, size: number, nodes: KnownNodes): Promise<Leaf[] | undefined> {
  if (root.multihash.code !== SHA2_256 || size === 0) return undefined
  // A one-chunk file: its raw CID is the SHA-256 of its bytes.
  if (root.code === RAW) return [{ cid: root, offset: 0, length: size }]
  if (root.code !== DAG_PB) return undefined
  const leaves: Leaf[] = []
  let offset = 0
  const walk = async (cid: CID, expect: number | undefined, depth: number): Promise<boolean> => {
    if (depth > MAX_DEPTH || cid.multihash.code !== SHA2_256) return false
    if (cid.code === RAW) {
      if (expect === undefined) return false
      leaves.push({ cid, offset, length: expect })
      offset += expect
      return true
    }
    if (cid.code !== DAG_PB) return false
    let bytes: Uint8Array | undefined
    try {
      bytes = await nodes.get(cid)
    } catch {
      return false
    }
    // The block map's entries are hints: a node is used only when it hashes to the CID naming it.
    if (!bytes || !hashesTo(cid, bytes)) return false
    let node: dagPb.PBNode
    let fs: UnixFS
    try {
      node = dagPb.decode(bytes)
      fs = UnixFS.unmarshal(node.Data ?? new Uint8Array())
    } catch {
      return false
    }
    if (fs.type !== 'file' && fs.type !== 'raw') return false
    if (fs.data && fs.data.length > 0) return false
    const total = Number(fs.fileSize())
    if (expect !== undefined && total !== expect) return false
    if (node.Links.length !== fs.blockSizes.length || node.Links.length === 0) return false
    for (let i = 0; i < node.Links.length; i++) {
      const len = Number(fs.blockSizes[i]!)
      if (len === 0) continue
      if (!(await walk(node.Links[i]!.Hash, len, depth + 1))) return false
    }
    return true
  }
  if (!(await walk(root, undefined, 0)) || offset !== size) return undefined
  return leaves
}

/** The leaves holding file bytes `from..to` (inclusive) and the leaf-aligned byte span they cover. */
export function leafSpan(
  leaves: Leaf[],
  from: number,
  to: number,
): { want: Leaf[]; first: number; last: number } {
  const want = leaves.slice(leafAt(leaves, from), leafAt(leaves, to) + 1)
  const end = want[want.length - 1]!
  return { want, first: want[0]!.offset, last: end.offset + end.length - 1 }
}

/** The index of the leaf holding file offset `at` (0 <= at < size). */
function leafAt(leaves: Leaf[], at: number): number {
  let lo = 0
  let hi = leaves.length - 1
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1
    if (leaves[mid]!.offset <= at) lo = mid
    else hi = mid - 1
  }
  return lo
}
