import type { CID } from 'multiformats/cid'

/** What a UnixFS node under the `unixfs-v1-2025` profile resolves to. */
export interface NodeCid {
  cid: CID
  /**
   * Cumulative DAG size, the `Tsize` a parent link carries: block length for a raw leaf,
   * encoded length plus the children's Tsize for a dag-pb node (as Kubo's `node.Size()`).
   */
  tsize: number
}

/** A file's CID plus the byte count read from it. */
export interface FileCid extends NodeCid {
  size: number
}

/** One named child of a directory. */
export interface DirEntryCid extends NodeCid {
  name: string
}

export type EntryKind = 'file' | 'symlink' | 'dir'

/**
 * A directory entry as directory encoding needs it: the CID only as bytes. A DirEntryCid is one; so is
 * `{ name, cid: { bytes, byteLength }, tsize }` built from stored CIDs without CID objects.
 */
export interface DirEntryLike {
  name: string
  cid: { readonly bytes: Uint8Array; readonly byteLength: number }
  tsize: number
}
