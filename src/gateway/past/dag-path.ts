/**
 * A path inside a UnixFS DAG, walked through the blocks this gateway holds (the index's block map keeps
 * every directory node and HAMT shard ever written, and the local node's blockstore): each block is
 * checked against its CID by the BlockSource before it is read, so what is found is what the root CID
 * says. Unlike the trustless walk, the terminal's own block is not needed: a file whose bytes left this
 * disk is still found, with its CID and size from the link that names it (a raw leaf's Tsize is its
 * size), and its bytes are fetched back by CID.
 */
import * as dagPb from '@ipld/dag-pb'
import { UnixFS } from 'ipfs-unixfs'
import type { CID } from 'multiformats/cid'
import { type DagNode, decodeNode, hamtLookup, hamtPrefixLength } from '../trustless/dag.ts'
import {
  TrustlessNoSuchPathError,
  TrustlessNotHeldError,
  TrustlessSymlinkError,
} from '../trustless/errors.ts'
import type { BlockGetter } from '../trustless/walk.ts'

const RAW = 0x55
const DAG_PB = 0x70
/** Symlinks followed on one path at most (Linux allows 40): a loop ends here. */
const MAX_SYMLINKS = 32

export interface DagEntry {
  cid: CID
  /** The Tsize of the link that named it (undefined for the root itself). */
  tsize: number | undefined
  /** The CID of each block stepped to, the root first and `cid` last, symlinks included (X-Ipfs-Roots). */
  roots: CID[]
  /** The directories from the root to the entry's parent, as resolved (symlinks followed). */
  parents: CID[]
  /** The entry's path from the root, as resolved: the names of its real directories and its own. */
  path: string[]
}

/** What a DAG entry is, from its own block when this gateway holds it. */
export type DagKind =
  | { kind: 'file'; size: number }
  | { kind: 'dir'; node: Extract<DagNode, { kind: 'dir' | 'hamt' }>; bytes: Uint8Array }
  /** A UnixFS symlink (resolved by the walk, never served as a file). */
  | { kind: 'symlink'; target: string }
  /** Another dag-pb node or codec: not served. */
  | { kind: 'other' }
  /** A dag-pb block not held here: a file or a directory, unknown until it is fetched. */
  | { kind: 'unknown' }

/** The link named `name` in a basic directory block, with its Tsize. */
function linkIn(bytes: Uint8Array, cid: CID): number | undefined {
  const l = dagPb.decode(bytes).Links.find((x) => x.Hash.equals(cid))
  return l?.Tsize
}

/** The target of a UnixFS symlink block, or undefined for any other block. */
function symlinkTarget(cid: CID, bytes: Uint8Array): string | undefined {
  if (cid.code !== DAG_PB) return undefined
  try {
    const data = dagPb.decode(bytes).Data
    if (!data) return undefined
    const fs = UnixFS.unmarshal(data)
    return fs.type === 'symlink' ? Buffer.from(fs.data ?? new Uint8Array()).toString('utf8') : undefined
  } catch {
    return undefined
  }
}

interface Step {
  cid: CID
  tsize: number | undefined
  name: string
}

/** Follows `segments` from `root`; TrustlessNotHeldError for a root not held, NoSuchPath for a name not there. */
export function walkTo(
  src: BlockGetter,
  root: CID,
  segments: string[],
  signal?: AbortSignal,
  opts: { symlinks?: 'follow' | 'keep' } = {},
): Promise<DagEntry> {
  return walkOn(
    src,
    { cid: root, tsize: undefined, roots: [root], parents: [], path: [] },
    segments,
    signal,
    opts,
  )
}

/**
 * Follows `segments` on from `from` (the root, or a directory an earlier walk reached). A UnixFS symlink
 * met on the way or at the end is resolved as a mirror path's is: against its parent directory, within
 * the same root (an absolute target, or one climbing above the root, is not followed: the walk throws
 * TrustlessSymlinkError, as it does past MAX_SYMLINKS hops). Every block read is the BlockGetter's,
 * checked against its CID.
 */
export async function walkOn(
  src: BlockGetter,
  from: DagEntry,
  segments: string[],
  signal?: AbortSignal,
  /** `keep`: a symlink is a node like any other (the trustless walk's DAG as it is): no name below it. */
  opts: { symlinks?: 'follow' | 'keep' } = {},
): Promise<DagEntry> {
  const follow = opts.symlinks !== 'keep'
  const root = from.parents[0] ?? from.cid
  const stack: Step[] = [
    ...from.parents.map((cid, i) => ({ cid, tsize: undefined, name: i === 0 ? '' : from.path[i - 1]! })),
    { cid: from.cid, tsize: from.tsize, name: from.path.at(-1) ?? '' },
  ]
  const roots = [...from.roots]
  const queue = [...segments]
  const where = `/ipfs/${root}/${[...from.path, ...segments].join('/')}`
  const blocks = new Map<string, Uint8Array | undefined>()
  const read = async (cid: CID): Promise<Uint8Array | undefined> => {
    const k = cid.toString()
    if (!blocks.has(k)) blocks.set(k, await src.get(cid, signal))
    return blocks.get(k)
  }
  let hops = 0
  for (;;) {
    const top = stack[stack.length - 1]!
    const bytes = top.cid.code === DAG_PB ? await read(top.cid) : undefined
    const target = follow && bytes ? symlinkTarget(top.cid, bytes) : undefined
    if (target !== undefined) {
      const shown = `${top.name || top.cid} -> ${target}`
      if (stack.length === 1)
        throw new TrustlessSymlinkError(where, `${shown}: a symlink with no directory to resolve it in`)
      if (target.startsWith('/') || target === '')
        throw new TrustlessSymlinkError(
          where,
          `${shown} is not followed: not a relative path inside this root`,
        )
      if (++hops > MAX_SYMLINKS)
        throw new TrustlessSymlinkError(
          where,
          `more than ${MAX_SYMLINKS} symlinks on the way (a loop), not followed`,
        )
      stack.pop()
      // '..' and '.' come only from targets: a request's segments never hold them (request-path.ts).
      queue.unshift(...target.split('/'))
      continue
    }
    const seg = queue.shift()
    if (seg === undefined)
      return {
        cid: top.cid,
        tsize: top.tsize,
        roots,
        parents: stack.slice(0, -1).map((s) => s.cid),
        path: stack.slice(1).map((s) => s.name),
      }
    if (seg === '' || seg === '.') continue
    if (seg === '..') {
      if (stack.length === 1)
        throw new TrustlessSymlinkError(where, 'a symlink leads above the root, not followed')
      stack.pop()
      continue
    }
    const cid = top.cid
    if (!bytes) {
      if (cid.equals(root) && stack.length === 1) throw new TrustlessNotHeldError(root.toString())
      throw new TrustlessNoSuchPathError(where, seg)
    }
    const node = decodeNode(cid, bytes)
    let next: CID | undefined
    let holder = bytes
    if (node.kind === 'dir') next = node.links.find((l) => l.name === seg)?.cid
    else if (node.kind === 'hamt')
      next = await hamtLookup(node, seg, async (shard) => {
        const child = await read(shard)
        if (!child) throw new TrustlessNoSuchPathError(where, seg)
        const n = decodeNode(shard, child)
        if (n.kind !== 'hamt') return undefined
        holder = child
        return n
      })
    if (!next) throw new TrustlessNoSuchPathError(where, seg)
    stack.push({ cid: next, tsize: linkIn(holder, next), name: seg })
    roots.push(next)
  }
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
  const target = symlinkTarget(cid, bytes)
  return target === undefined ? { kind: 'other' } : { kind: 'symlink', target }
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
