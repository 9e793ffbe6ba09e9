/**
 * An IPFS Cluster as a storage target, over its REST API (`POST /pins/{cid}` with a replication
 * factor, `GET /pins/{cid}` for the per-peer status). Cluster is the engine that spreads and repairs
 * pins across its peers; cidmirror drives it and counts its peers, it does not reimplement it. Each
 * peer whose status is `pinned` is one verified copy, held by that peer's IPFS node (the holder id is
 * the IPFS peer id, so a node reached both as a Kubo target and as a cluster peer counts once).
 */
import { Agent, request } from 'undici'
import type { CopyRecord } from '../../index/index.ts'
import { TargetRequestError, TargetUnreachableError } from '../errors.ts'
import type { ReplicationItem, StorageTarget, TargetCallOptions } from '../target.ts'

export interface ClusterTargetOptions {
  name: string
  /** REST API base, e.g. `http://127.0.0.1:9094`. */
  api: string
  /** `user:password` for basic auth, or a bearer token (`Bearer ...`). */
  auth?: string
  replicationMin?: number
  replicationMax?: number
  scope?: 'tree' | 'entity'
  concurrency?: number
  /** Peers on this machine's disk, by IPFS peer id (listed, never counted). */
  localPeers?: string[]
  /** Connects our node to a multiaddr, so cluster peers find the blocks over bitswap. */
  connect?: (multiaddr: string, signal: AbortSignal) => Promise<void>
}

interface PeerStatus {
  peername?: string
  ipfs_peer_id?: string
  status: string
  timestamp?: string
  error?: string
}

interface GlobalPinInfo {
  cid: string | { '/': string }
  peer_map?: Record<string, PeerStatus>
}

interface ClusterPeer {
  id: string
  ipfs?: { id?: string; addresses?: string[] }
  error?: string
}

/** Cluster's per-peer statuses (api/types.go TrackerStatus). */
const PENDING = new Set(['pinning', 'pin_queued'])
const FAILED = new Set(['pin_error', 'unexpectedly_unpinned', 'cluster_error'])
const UNSETTLED = new Set([...PENDING, ...FAILED])
const IN_PIN_SET = new Set([
  'pinned',
  'pinning',
  'pin_queued',
  'pin_error',
  'unexpectedly_unpinned',
  'remote',
])

/** Pinned on some peer, and no peer still pinning or failed. */
function settled(info: GlobalPinInfo | undefined): boolean {
  const statuses = Object.values(info?.peer_map ?? {}).map((st) => st.status)
  return statuses.includes('pinned') && !statuses.some((st) => UNSETTLED.has(st))
}

const agent = new Agent({ bodyTimeout: 0, headersTimeout: 0, keepAliveTimeout: 10_000 })

export class ClusterTarget implements StorageTarget {
  readonly name: string
  readonly kind = 'ipfs-cluster' as const
  readonly scope: 'tree' | 'entity'
  readonly local = false
  readonly concurrency: number
  readonly #o: ClusterTargetOptions
  readonly #base: string

  constructor(opts: ClusterTargetOptions) {
    this.#o = opts
    this.name = opts.name
    this.scope = opts.scope ?? 'tree'
    this.concurrency = opts.concurrency ?? 2
    this.#base = opts.api.replace(/\/+$/, '')
  }

  async #req<T>(
    method: 'GET' | 'POST' | 'DELETE',
    path: string,
    signal: AbortSignal,
  ): Promise<T | undefined> {
    const headers: Record<string, string> = {}
    const a = this.#o.auth
    if (a) headers.authorization = a.startsWith('Bearer ') ? a : `Basic ${Buffer.from(a).toString('base64')}`
    let res: Awaited<ReturnType<typeof request>>
    try {
      res = await request(`${this.#base}${path}`, { method, headers, signal, dispatcher: agent })
    } catch (err) {
      if (signal.aborted) throw err
      throw new TargetUnreachableError(this.name, this.#base, (err as Error).message)
    }
    const text = await res.body.text()
    if (res.statusCode === 404) return undefined
    if (res.statusCode >= 300) {
      let msg = text.slice(0, 300)
      try {
        msg = (JSON.parse(text) as { message?: string }).message ?? msg
      } catch {}
      throw new TargetRequestError(this.name, `${method} ${path}`, res.statusCode, msg)
    }
    if (text === '') return undefined
    // /peers streams one JSON object per line.
    if (text.trimStart().startsWith('{') && text.includes('}\n{'))
      return text
        .split('\n')
        .filter((l) => l.trim() !== '')
        .map((l) => JSON.parse(l)) as T
    return JSON.parse(text) as T
  }

  /** Read-only: the per-peer status of the root (and, until the pin moved, of the previous root). */
  async check(item: ReplicationItem, { signal }: TargetCallOptions): Promise<CopyRecord[]> {
    const info = await this.#req<GlobalPinInfo>('GET', `/pins/${item.cid}`, signal)
    const out = this.#copies(item, item.cid, item.scan, info)
    if (item.scope !== 'tree' || !item.previous || settled(info)) return out
    if (out.some((c) => c.status === 'verified')) return out
    // Until the pin moves, the previous root still holds every file of its scan.
    const prev = await this.#req<GlobalPinInfo>('GET', `/pins/${item.previous}`, signal)
    return [...out, ...this.#copies(item, item.previous, item.previousScan, prev)]
  }

  /**
   * A peer whose pin failed stays failed until Cluster's own recover pass (12 min by default): ask
   * Cluster to recover it now (Cluster does the work; we only nudge it). The previous root goes once
   * the new one is pinned on every peer: unpinning it earlier would fail the `pin update` of a peer
   * that has not moved yet.
   */
  async tidy(item: ReplicationItem, { signal }: TargetCallOptions): Promise<void> {
    const info = await this.#req<GlobalPinInfo>('GET', `/pins/${item.cid}`, signal)
    if (Object.values(info?.peer_map ?? {}).some((st) => FAILED.has(st.status)))
      await this.#req('POST', `/pins/${item.cid}/recover`, signal).catch(() => {})
    if (item.scope === 'tree' && item.previous && settled(info)) await this.#release(item.previous, signal)
  }

  async release(item: ReplicationItem, { signal }: TargetCallOptions): Promise<void> {
    if (item.scope === 'entity') await this.#release(item.cid, signal)
  }

  /** Unpins `cid` from the cluster when it is in the pin set. */
  async #release(cid: string, signal: AbortSignal): Promise<void> {
    if (await this.#inPinSet(cid, signal)) await this.#req('DELETE', `/pins/${cid}`, signal)
  }

  async #inPinSet(cid: string, signal: AbortSignal): Promise<boolean> {
    const info = await this.#req<GlobalPinInfo>('GET', `/pins/${cid}`, signal)
    // Cluster reports every peer for any CID ("unpinned" when it tracks none).
    return Object.values(info?.peer_map ?? {}).some((st) => IN_PIN_SET.has(st.status))
  }

  #copies(item: ReplicationItem, cid: string, scan: number | undefined, info?: GlobalPinInfo): CopyRecord[] {
    const out: CopyRecord[] = []
    const now = Date.now()
    for (const [peer, st] of Object.entries(info?.peer_map ?? {})) {
      const ipfsId = st.ipfs_peer_id || peer
      const status = st.status === 'pinned' ? 'verified' : PENDING.has(st.status) ? 'pending' : undefined
      if (!status) continue
      const rec: CopyRecord = {
        cid,
        holder: `ipfs:${ipfsId}`,
        kind: this.kind,
        how: `cluster-status:${st.status}`,
        status,
        scope: item.scope,
        local: this.#o.localPeers?.includes(ipfsId) ?? false,
        checkedAt: now,
        since: st.timestamp ? Date.parse(st.timestamp) || now : now,
        target: this.name,
        detail: { clusterPeer: peer, ...(st.peername ? { peername: st.peername } : {}) },
      }
      if (item.scope === 'tree') {
        rec.mirror = item.mirror!
        if (scan !== undefined) rec.scan = scan
      }
      if (st.error) rec.error = st.error
      out.push(rec)
    }
    return out
  }

  async store(item: ReplicationItem, opts: TargetCallOptions): Promise<CopyRecord[]> {
    const { signal } = opts
    if (this.#o.connect) {
      const peers = (await this.#req<ClusterPeer[] | ClusterPeer>('GET', '/peers', signal)) ?? []
      for (const p of Array.isArray(peers) ? peers : [peers])
        for (const addr of p.ipfs?.addresses ?? []) await this.#o.connect(addr, signal).catch(() => {})
    }
    const q = new URLSearchParams({
      mode: 'recursive',
      name: item.mirror ? `cidmirror:${item.mirror}` : 'cidmirror',
    })
    if (this.#o.replicationMin !== undefined) q.set('replication-min', String(this.#o.replicationMin))
    if (this.#o.replicationMax !== undefined) q.set('replication-max', String(this.#o.replicationMax))
    if (item.scope === 'tree' && item.previous && (await this.#inPinSet(item.previous, signal)))
      q.set('pin-update', item.previous)
    await this.#req('POST', `/pins/${item.cid}?${q}`, signal)
    return this.check(item, opts)
  }
}
