/**
 * A Kubo node as a storage target, over its RPC API. The default is one recursive pin of the mirror's
 * root, moved with `pin update OLD NEW` after each sync so only the difference travels (Kubo slows at
 * about 2M pins, kubo #5221); `scope = "entity"` pins each file CID instead.
 */
import type { CopyRecord } from '../../index/index.ts'
import type { ReplicationItem, StorageTarget, TargetCallOptions } from '../target.ts'

/** What this target needs of a node: the pinning half of src/ipfs's node interface. */
export interface PinningNode {
  id(opts?: { signal?: AbortSignal }): Promise<{ peerId: string; addresses: string[] }>
  connect(multiaddr: string, opts?: { signal?: AbortSignal }): Promise<void>
  /** Close every connection to a peer (`/p2p/<id>`). */
  disconnect(peer: string, opts?: { signal?: AbortSignal }): Promise<void>
  pin(cid: string, opts?: { recursive?: boolean; signal?: AbortSignal }): Promise<void>
  /** For `keep_archived` (release); a node without it keeps archive pins for ever. */
  unpin?(cid: string, opts?: { signal?: AbortSignal }): Promise<void>
  pinUpdate(from: string, to: string, opts?: { signal?: AbortSignal; unpin?: boolean }): Promise<void>
  pinned(
    cid: string,
    opts?: { signal?: AbortSignal },
  ): Promise<'recursive' | 'direct' | 'indirect' | undefined>
}

export interface KuboTargetOptions {
  name: string
  node: PinningNode
  /** The node's repo is on this machine's disk: its copies are listed, never counted. */
  local?: boolean
  scope?: 'tree' | 'entity'
  concurrency?: number
  /** Addresses of the node that holds the blocks (ours), to connect before pinning so bitswap finds them. */
  source?: () => Promise<string[]>
  /** Its trustless gateway (`http://host:port`), recorded as where the bytes can be fetched. */
  gateway?: string
}

const RAW = 'bafk'

export class KuboTarget implements StorageTarget {
  readonly name: string
  readonly kind = 'ipfs-node' as const
  readonly scope: 'tree' | 'entity'
  readonly local: boolean
  readonly concurrency: number
  readonly #o: KuboTargetOptions
  #peer: string | undefined
  /**
   * The last store was cut off (its time limit): Kubo's bitswap may hold wants it will not send to the
   * source again on that connection (boxo #1163, seen in the replicate bench), so the next store
   * starts on a new one.
   */
  #stalled = false
  #reconnects = 0

  constructor(opts: KuboTargetOptions) {
    this.#o = opts
    this.name = opts.name
    this.scope = opts.scope ?? 'tree'
    this.local = opts.local ?? false
    this.concurrency = opts.concurrency ?? 2
  }

  async #holder(signal: AbortSignal): Promise<string> {
    this.#peer ??= (await this.#o.node.id({ signal })).peerId
    // The IPFS peer id, as a cluster peer's status names it: one node reached both ways counts once.
    return `ipfs:${this.#peer}`
  }

  #copy(item: ReplicationItem, holder: string, cid: string, scan: number | undefined): CopyRecord {
    const now = Date.now()
    const rec: CopyRecord = {
      cid,
      holder,
      kind: this.kind,
      how: 'pinned',
      status: 'verified',
      scope: item.scope,
      local: this.local,
      checkedAt: now,
      since: now,
      target: this.name,
    }
    if (item.scope === 'tree') {
      rec.mirror = item.mirror!
      if (scan !== undefined) rec.scan = scan
    }
    if (this.#o.gateway) rec.retrieval = [`${this.#o.gateway}/ipfs/${cid}`]
    return rec
  }

  async #holds(cid: string, signal: AbortSignal): Promise<boolean> {
    const p = await this.#o.node.pinned(cid, { signal })
    // A direct pin holds a single block only: enough for a raw leaf, not for a DAG.
    return p === 'recursive' || p === 'indirect' || (p === 'direct' && cid.startsWith(RAW))
  }

  async check(item: ReplicationItem, { signal }: TargetCallOptions): Promise<CopyRecord[]> {
    const holder = await this.#holder(signal)
    if (await this.#holds(item.cid, signal)) return [this.#copy(item, holder, item.cid, item.scan)]
    // The tree as of an earlier scan still holds every file that scan had: a copy of those.
    if (item.scope === 'tree' && item.previous && (await this.#holds(item.previous, signal)))
      return [this.#copy(item, holder, item.previous, item.previousScan)]
    return []
  }

  /** Times a store began by reconnecting the source after a store that was cut off. */
  get reconnects(): number {
    return this.#reconnects
  }

  async store(item: ReplicationItem, { signal }: TargetCallOptions): Promise<CopyRecord[]> {
    const n = this.#o.node
    const sources = (await this.#o.source?.()) ?? []
    if (this.#stalled && sources.length > 0) {
      // Disconnect, then connect: a new connection makes bitswap send its wants to the source again.
      const peers = new Set(sources.map((a) => /\/p2p\/([^/]+)$/.exec(a)?.[1]).filter((p) => p !== undefined))
      for (const peer of peers) await n.disconnect(`/p2p/${peer}`, { signal }).catch(() => {})
      this.#reconnects++
    }
    for (const addr of sources) await n.connect(addr, { signal }).catch(() => {})
    this.#stalled = false
    try {
      if (
        item.scope === 'tree' &&
        item.previous &&
        (await n.pinned(item.previous, { signal })) === 'recursive'
      )
        await n.pinUpdate(item.previous, item.cid, { signal, unpin: true })
      else await n.pin(item.cid, { recursive: true, signal })
    } catch (err) {
      if (signal.aborted) this.#stalled = true
      throw err
    }
    return this.check({ ...item, previous: undefined }, { signal })
  }

  async release(item: ReplicationItem, { signal }: TargetCallOptions): Promise<void> {
    const n = this.#o.node
    if (item.scope !== 'entity' || !n.unpin) return
    if ((await n.pinned(item.cid, { signal })) === 'recursive') await n.unpin(item.cid, { signal })
  }
}
