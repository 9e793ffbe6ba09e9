/**
 * The CID engine: UnixFS CIDs exactly as Kubo v0.43 `ipfs add` computes them under the
 * `unixfs-v1-2025` profile (IPIP-499), and CARv1 export. Pure: bytes in, CIDs and CARs out.
 */
import type { CID } from 'multiformats/cid'
import { BalancedLayout } from './layout.ts'
import { directoryNode, sha256, symlinkNode } from './nodes.ts'
import { CHUNK_SIZE } from './profile.ts'
import { cidOfFileInThread } from './tree.ts'
import type { DirEntryLike, FileCid, NodeCid } from './types.ts'

export { fromBase32, toBase32 } from './base32.ts'
export { type Block, exportCar, TreeChangedError, treeBlocks } from './car.ts'
export { chunkBuffer, readFull } from './chunks.ts'
export * from './errors.ts'
export { fileBlocks } from './hash.ts'
export {
  type BlockSink,
  basicDirectorySize,
  directoryNode,
  isSharded,
  murmur64,
  sha256,
  symlinkNode,
} from './nodes.ts'
export { canonicalCid } from './parse.ts'
export { HashPool } from './pool.ts'
export * as profile from './profile.ts'
export { cidOfTree, type TreeOptions } from './tree.ts'
export type { DirEntryCid, DirEntryLike, EntryKind, FileCid, NodeCid } from './types.ts'

/** The CID of a file holding `bytes`. */
export async function cidOfBytes(bytes: Uint8Array): Promise<FileCid> {
  const layout = new BalancedLayout()
  for (let off = 0; off < bytes.length; off += CHUNK_SIZE) {
    const chunk = bytes.subarray(off, Math.min(off + CHUNK_SIZE, bytes.length))
    layout.addLeaf(sha256(chunk), chunk.length)
  }
  return layout.finish()
}

/** The CID of the file at `path`, hashed in this thread, streaming 1 MiB chunks. */
export function cidOfFile(path: string): Promise<FileCid> {
  return cidOfFileInThread(path)
}

/** The CID of a symlink pointing at `target` (a UnixFS Symlink node). */
export async function cidOfSymlink(target: string | Uint8Array): Promise<NodeCid> {
  return symlinkNode(target)
}

/**
 * The CID of a directory holding `entries` (any order): a basic directory, or a HAMT when its block
 * would exceed the profile's 256 KiB.
 */
export async function cidOfDirectory(entries: DirEntryLike[]): Promise<NodeCid> {
  return directoryNode(entries)
}

export type { CID }
