/**
 * A path inside a UnixFS DAG, walked through the blocks this gateway holds (the index's block map keeps
 * every directory node and HAMT shard ever written, and the local node's blockstore): each block is
 * checked against its CID by the BlockSource before it is read, so what is found is what the root CID
 * says. Unlike the trustless walk, the terminal's own block is not needed: a file whose bytes left this
 * disk is still found, with its CID and size from the link that names it (a raw leaf's Tsize is its
 * size), and its bytes are fetched back by CID.
 */
import * as dagPb from '@ipld/dag-pb'
import type { CID } from 'multiformats/cid'
import { type DagNode, decodeNode, hamtPrefixLength, hamtStep } from '../trustless/dag.ts'
import { TrustlessNoSuchPathError, TrustlessNotHeldError } from '../trustless/errors.ts'
import type { BlockGetter } from '../trustless/walk.ts'

const RAW = 0x55
const DAG_PB = 0x70

export interface DagEntry {
  cid: CID
  /** The Tsize of the link that named it (undefined for the root itself). */
  tsize: number | undefined
  /** The CID of each segment reached, the root first and `cid` last (X-Ipfs-Roots). */
  roots: CID[]
}

/** What a DAG entry is, from its own block when this gateway holds it. */
export type DagKind =
  | { kind: 'file'; size: number }
  | { kind: 'dir'; node: Extract<DagNode, { kind: 'dir' | 'hamt' }>; bytes: Uint8Array }
  /** A symlink, another dag-pb node or codec: not served as a file (symlinks are not followed). */
  | { kind: 'other' }
  /** A dag-pb block not held here: a file or a directory, unknown until it is fetched. */
  | { kind: 'unknown' }

/** The link named `name` in a basic directory block, with its Tsize. */
function linkIn(bytes: Uint8Array, cid: CID): number | undefined {
  const l = dagPb.decode(bytes).Links.find((x) => x.Hash.equals(cid))
  return l?.Tsize
}

/** Follows `segments` from `root`; TrustlessNotHeldError for a root not held, NoSuchPath for a name not there. */
export async function walkTo(
  src: BlockGetter,
  root: CID,
  segments: string[],
  signal?: AbortSignal,
): Promise<DagEntry> {
  const roots: CID[] = [root]
  let cid = root
  let tsize: number | undefined
  const where = (): string => `/ipfs/${root}/${segments.join('/')}`
  for (const seg of segments) {
    const bytes = await src.get(cid, signal)
    if (!bytes) {
      if (cid === root) throw new TrustlessNotHeldError(root.toString())
      throw new TrustlessNoSuchPathError(where(), seg)
    }
    const node = cid.code === DAG_PB ? decodeNode(cid, bytes) : { kind: 'opaque' as const }
    let next: CID | undefined
    let holder = bytes
    if (node.kind === 'dir') next = node.links.find((l) => l.name === seg)?.cid
    else if (node.kind === 'hamt') {
      let shard = node
      for (let depth = 0; ; depth++) {
        const step = hamtStep(shard, seg, depth)
        if (!step) break
        if ('entry' in step) {
          next = step.entry
          break
        }
        const child = await src.get(step.shard, signal)
        if (!child) throw new TrustlessNoSuchPathError(where(), seg)
        const n = decodeNode(step.shard, child)
        if (n.kind !== 'hamt') break
        shard = n
        holder = child
      }
    }
    if (!next) throw new TrustlessNoSuchPathError(where(), seg)
    tsize = linkIn(holder, next)
    cid = next
    roots.push(next)
  }
  return { cid, tsize, roots }
}

/** What `entry` is: a raw leaf is a file of its Tsize; a dag-pb node is read if held. */
export async function kindOf(src: BlockGetter, entry: DagEntry, signal?: AbortSignal): Promise<DagKind> {
  const { cid } = entry
  if (cid.code === RAW) {
    if (entry.tsize !== undefined) return { kind: 'file', size: entry.tsize }
    const bytes = await src.get(cid, signal)
    return bytes ? { kind: 'file', size: bytes.length } : { kind: 'unknown' }
  }
  if (cid.code !== DAG_PB) return { kind: 'other' }
  const bytes = await src.get(cid, signal)
  if (!bytes) return { kind: 'unknown' }
  const node = decodeNode(cid, bytes)
  if (node.kind === 'file') return { kind: 'file', size: node.size }
  if (node.kind === 'dir' || node.kind === 'hamt') return { kind: 'dir', node, bytes }
  return { kind: 'other' }
}

export interface DagDirEntry {
  name: string
  cid: CID
  tsize: number
}

/** The entries of a directory (a HAMT's from all its shards), by name; at most `max`. */
export async function dirEntries(
  src: BlockGetter,
  dir: Extract<DagKind, { kind: 'dir' }>,
  max: number,
  signal?: AbortSignal,
): Promise<{ entries: DagDirEntry[]; truncated: boolean }> {
  const out: DagDirEntry[] = []
  const take = (bytes: Uint8Array, strip: number): CID[] => {
    const shards: CID[] = []
    for (const l of dagPb.decode(bytes).Links) {
      const name = l.Name ?? ''
      if (strip > 0 && name.length === strip) shards.push(l.Hash)
      else out.push({ name: name.slice(strip), cid: l.Hash, tsize: l.Tsize ?? 0 })
    }
    return shards
  }
  if (dir.node.kind === 'dir') take(dir.bytes, 0)
  else {
    const queue: { bytes: Uint8Array; fanout: number }[] = [{ bytes: dir.bytes, fanout: dir.node.fanout }]
    while (queue.length > 0 && out.length < max) {
      const { bytes, fanout } = queue.shift()!
      for (const s of take(bytes, hamtPrefixLength(fanout))) {
        const child = await src.get(s, signal)
        if (!child) continue
        const n = decodeNode(s, child)
        if (n.kind === 'hamt') queue.push({ bytes: child, fanout: n.fanout })
      }
    }
  }
  out.sort((a, b) => Buffer.compare(Buffer.from(a.name), Buffer.from(b.name)))
  return { entries: out.slice(0, max), truncated: out.length > max }
}
