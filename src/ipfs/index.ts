/**
 * The IPFS room: one node interface that the replicator, the gateway and the janitor's fetch-back use,
 * whatever the node is (Kubo over RPC now; an embedded Helia whose blockstore reads the mirror tree
 * next). CIDs cross this face as strings (base32 CIDv1 as Kubo prints them), so callers need no CID
 * objects and the index's stored strings pass straight through.
 */
import type { HeliaNode, HeliaNodeOptions } from './helia.ts'
import type {
  BlockOptions,
  CarOptions,
  DropResult,
  FileToReference,
  FindProvidersOptions,
  PeerInfo,
  PinOptions,
  PinType,
  ReferenceCheck,
  ReferenceOptions,
  ReferenceResult,
  Signal,
  VerifyOptions,
} from './types.ts'

export * from './errors.ts'
export { checkFilestoreLayout, filestoreRoot } from './filestore-layout.ts'
export { type FollowResult, followIndex, type PathsOfCid } from './follow-index.ts'
export type { HeliaNode, HeliaNodeOptions } from './helia.ts'
export { KuboNode, type KuboNodeOptions } from './kubo.ts'
export { rpcAuthorization } from './kubo-http.ts'
export type * from './types.ts'
export { parseCid, verifyBlock } from './verify-block.ts'

/**
 * Starts an embedded Helia node (src/ipfs/helia.ts). Helia and libp2p are loaded here, on first use,
 * not when this face is imported: every CLI command imports the face, and only the daemon's embedded
 * node needs them (about 350 modules).
 */
export async function createHeliaNode(opts: HeliaNodeOptions): Promise<HeliaNode> {
  const helia = await import('./helia.ts')
  return helia.createHeliaNode(opts)
}

export interface IpfsNode {
  readonly kind: 'kubo' | 'helia'
  /**
   * True when this node's blocks live on the mirror's own disk (the local node, referencing mirror
   * files in place): such a node is listed as a holder but never counts toward n (DESIGN promise 1).
   */
  readonly local: boolean
  /** Where the node is, for messages and holder records (Kubo: its RPC URL). */
  readonly label: string

  /** The node's peer ID and the multiaddrs it listens on (each ending in `/p2p/<peerId>`). */
  id(opts?: Signal): Promise<PeerInfo>

  /** Dial a peer (`/ip4/.../tcp/.../p2p/<id>`), so it can fetch from us over bitswap or we from it. */
  connect(multiaddr: string, opts?: Signal): Promise<void>

  /** Close every connection to a peer (`/p2p/<id>`); a peer not connected is no error. */
  disconnect(peer: string, opts?: Signal): Promise<void>

  /**
   * Reference a mirror file in place (promise 5: its bytes stay in the file, the node keeps only
   * offsets), with the `unixfs-v1-2025` parameters whatever the node's own import config says, and
   * resolve to the CID the node computed. Blocks already held keep the path they were first
   * referenced from (see `dropReference`). Does not announce: `provide` decides what is announced.
   */
  referenceFile(absPath: string, opts?: ReferenceOptions): Promise<string>

  /**
   * referenceFile for many files, several per request (a scan's new files): one result per file, in
   * order, a file that cannot be referenced giving its error rather than stopping the others. Throws
   * only when the node cannot be reached or references nothing in place.
   */
  referenceFiles(
    files: Iterable<string | FileToReference>,
    opts?: Signal & { pin?: boolean },
  ): AsyncIterable<ReferenceResult>

  /**
   * Keep the DAG under `root` from the node's garbage collection without a pin, best effort: blocks
   * it holds stay, blocks it lacks (evicted files') are neither fetched nor required, so this works
   * for the local node, which cannot pin a root whose files were evicted. One entry per `name` (a
   * mirror); a new root replaces the old, undefined removes it. Kubo: an MFS entry `/cidmirror/<name>`.
   */
  retain(name: string, root: string | undefined, opts?: Signal): Promise<void>

  /** Store the blocks of a CAR stream (directory nodes built from the index), pinning nothing. */
  putBlocks(car: AsyncIterable<Uint8Array>, opts?: Signal): Promise<void>

  /** Pin a CID (recursive by default), fetching what the node lacks; resolves once it is pinned. */
  pin(cid: string, opts?: PinOptions): Promise<void>

  /**
   * Move a recursive pin from `from` to `to`, fetching only the blocks `to` adds (Kubo `pin update`);
   * `from` stays pinned when `unpin` is false.
   */
  pinUpdate(from: string, to: string, opts?: Signal & { unpin?: boolean }): Promise<void>

  /** Remove a pin (recursive by default). Idempotent: a CID that is not pinned so is no error. */
  unpin(cid: string, opts?: Signal & { recursive?: boolean }): Promise<void>

  /** How the CID is pinned on this node, or undefined when it is not. */
  pinned(cid: string, opts?: Signal): Promise<PinType | undefined>

  /**
   * Whether this node's own blockstore holds the block and can read it (never asks the network); an
   * in-place reference whose file is gone or changed counts as not held.
   */
  has(cid: string, opts?: Signal): Promise<boolean>

  /**
   * One block's bytes, checked against the CID before they are returned (promise 2). With `offline`,
   * only the node's blockstore is asked (BlockNotFoundError when absent).
   */
  getBlock(cid: string, opts?: BlockOptions): Promise<Uint8Array>

  /** A CARv1 stream rooted at `cid` with the blocks of `scope` (default `all`), depth first. */
  car(cid: string, opts?: CarOptions): AsyncIterable<Uint8Array>

  /**
   * Whether asking the network for a block this node lacks could find it now: false when the node has
   * no connected peer and no routing that could find one (the embedded node off the network with no
   * peer dialled in, as in the quick start), so a block it lacks is not held, at once, rather than after
   * bitswap waited out a caller's time limit. Kubo: always true (bootstrap, peering and its routing
   * config may find a peer at any time; none of that is read here).
   */
  canAskPeers(): boolean

  /** Announce these CIDs to the routing system now (one provider record each; `recursive` walks their DAGs). */
  provide(cids: string[], opts?: Signal & { recursive?: boolean }): Promise<void>

  /** Peers the routing system names as holding `cid`, as they arrive (this node included if it provides it). */
  findProviders(cid: string, opts?: FindProvidersOptions): AsyncIterable<PeerInfo>

  /**
   * Check in-place references: each block's status (Kubo's `filestore verify` exits 0 even when it
   * reports `changed` or `no-file`, so the statuses are parsed, not the exit code).
   */
  verifyReferences(opts?: VerifyOptions): AsyncIterable<ReferenceCheck>

  /**
   * Forget the in-place references of `cid`'s blocks that no longer read (file renamed, deleted or
   * changed), so `referenceFile` on the file's current path takes. References that still read are
   * kept, pins are untouched. Resolves to how many were dropped, and whether every block of the CID's
   * DAG is held and reads now (when not, `referenceFile` of a current path makes it so).
   */
  dropReference(cid: string, opts?: Signal): Promise<DropResult>

  /** Release connections; the node itself keeps running. */
  close(): Promise<void>
}
