/**
 * What the replicator asks of a place that stores copies (a Kubo node, an IPFS Cluster, a pinning
 * service, Filecoin) and of a counter that only finds copies (provider records, IPNI, the chain's piece
 * records). One interface for all, so Filecoin is one more implementation (issue 11), not a new loop.
 */
import type { CopyKind, CopyRecord } from '../index/index.ts'

/** One thing to keep in n copies: a mirror's tree (its root of one scan) or one CID. */
export interface ReplicationItem {
  /** Queue key: `tree:<mirror>` or `cid:<cid>`. */
  key: string
  scope: 'tree' | 'entity'
  cid: string
  /** Tree items: the mirror and the scan whose root `cid` is. */
  mirror?: string
  scan?: number
  /** Tree items: the root a target may still hold from an earlier scan (moved with `pin update`). */
  previous?: string
  previousScan?: number
  /** Bytes under the CID (the tree's or the file's), for quotas, costs and the audit. */
  bytes?: number
  /**
   * Entity items of content that left a mirror's tree (a file deleted upstream, the old version of a
   * changed one: the index's past versions): tree-scope targets keep these too, each as a pin of its
   * own, so nothing leaves the archive when the tree pin moves on. `since`: epoch ms it was archived.
   */
  archived?: { since: number }
}

export interface TargetCallOptions {
  signal: AbortSignal
}

/** A place copies can be stored on. Every target is a counter of its own copies too (`check`). */
export interface StorageTarget extends CopyCounter {
  readonly kind: CopyKind
  /** `tree`: one recursive pin per mirror root (Kubo, Cluster default); `entity`: one per CID. */
  readonly scope: 'tree' | 'entity'
  /** Copies it stores live on this machine's disk: listed, never counted toward n. */
  readonly local: boolean
  /** Calls on this target at once. */
  readonly concurrency: number
  /** Copies it keeps of one item, each on a distinct holder (Filecoin: providers); 1 when undefined. */
  readonly copies?: number
  /**
   * Stores `item` (idempotent: storing what is held changes nothing); resolves with the copies it
   * holds afterwards, `verified` only when the holder confirmed it. Throws when the holder cannot be
   * reached or refuses; the replicator retries with backoff.
   */
  store(item: ReplicationItem, opts: TargetCallOptions): Promise<CopyRecord[]>
  /**
   * Upkeep that follows a check and is no part of it (a check only reads): the replicator calls it
   * after each check of the target that answered. Cluster asks a failed peer to recover now, and lets
   * the previous root go once the new one is pinned on every peer.
   */
  tidy?(item: ReplicationItem, opts: TargetCallOptions): Promise<void>
  /**
   * Tree targets: removes the pin of its own that an archived item has here, once `[replication]
   * keep_archived` has run out for it; any tree pin that holds the CID stays. Idempotent.
   */
  release?(item: ReplicationItem, opts: TargetCallOptions): Promise<void>
}

/** Finds copies of an item without storing anything. */
export interface CopyCounter {
  /** Name from the config (`[[replication.targets]] name`), unique. */
  readonly name: string
  /** Scope of items it can count. */
  readonly scope: 'tree' | 'entity'
  /** The copies of `item` this counter can see now, one record per holder. */
  check(item: ReplicationItem, opts: TargetCallOptions): Promise<CopyRecord[]>
  close?(): Promise<void>
}

export function isStorageTarget(c: CopyCounter): c is StorageTarget {
  return typeof (c as StorageTarget).store === 'function'
}
