import type { CidmirrorError } from '../errors.ts'

/** What every IPFS node operation accepts: a signal that stops it (the request is cancelled). */
export interface Signal {
  signal?: AbortSignal
}

/** A peer as the node reports it: its ID and the multiaddrs it can be dialled at. */
export interface PeerInfo {
  peerId: string
  addresses: string[]
}

/** How a CID is pinned on a node: itself, recursively, or as a descendant of a recursive pin. */
export type PinType = 'recursive' | 'direct' | 'indirect'

/**
 * The blocks a CAR holds (the trustless gateway's `dag-scope`): `block` the root block alone, `entity`
 * what is needed to read the root as one UnixFS entity (a file's whole DAG; a directory's own node, or
 * its HAMT shards, without the children), `all` the whole DAG.
 */
export type CarScope = 'block' | 'entity' | 'all'

/**
 * The state of one in-place reference (one block whose bytes the node reads from a file):
 * `ok` it reads and hashes right; `changed` the file's bytes at that offset changed; `no-file` the file
 * is gone; `missing` the node holds no reference for that block; `error` the file cannot be read, or
 * the entry is corrupt.
 */
export type ReferenceStatus = 'ok' | 'changed' | 'no-file' | 'missing' | 'error'

export interface ReferenceCheck {
  /** The block's CID. */
  cid: string
  status: ReferenceStatus
  /** Absolute path of the file the reference reads from (absent for `missing`). */
  path?: string
  /** Byte offset and length of the block in that file. */
  offset?: number
  size?: number
  /** The node's own words when the status is not `ok`. */
  message?: string
}

export interface ReferenceOptions extends Signal {
  /** The CID the index holds for the file: a different result throws ReferenceMismatchError. */
  expect?: string
  /** Pin the file on the node too (default false: the local node's files are kept by the tree, not by a pin each). */
  pin?: boolean
}

/** A file for referenceFiles, with the CID the index holds for it when known. */
export interface FileToReference {
  path: string
  expect?: string
}

/** What referenceFiles says of one file: the CID the node computed, or why it is not referenced. */
export type ReferenceResult = { path: string; cid: string } | { path: string; error: CidmirrorError }

export interface PinOptions extends Signal {
  /** Default true: the whole DAG; false pins the root block only. */
  recursive?: boolean
  /** A label shown by `ipfs pin ls --names` (Kubo), so an operator sees which pins are cidmirror's. */
  name?: string
}

export interface BlockOptions extends Signal {
  /** Only this node's blockstore: fail with BlockNotFoundError rather than ask the network. */
  offline?: boolean
}

export interface CarOptions extends BlockOptions {
  scope?: CarScope
}

export interface FindProvidersOptions extends Signal {
  /** Stop after this many distinct providers (default 20). */
  limit?: number
}

export interface VerifyOptions extends Signal {
  /** Only these blocks; default every in-place reference the node holds. */
  cids?: string[]
}

export interface DropResult {
  /** References removed because their file is gone, changed or unreadable. */
  dropped: number
  /** Every block of the DAG is held and reads: nothing needs referencing again. */
  complete: boolean
}
