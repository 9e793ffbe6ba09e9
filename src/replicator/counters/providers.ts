/**
 * Provider records as a copy counter: who announces a mirror's root, read from the local node's
 * routing (`findProviders`) and from Delegated Routing V1 endpoints (`/routing/v1/providers/{cid}`:
 * IPNI, someguy) through `@helia/delegated-routing-v1-http-api-client`. A record is someone's word,
 * so each provider is an "announced" copy; it becomes "verified" only when a retrieval probe from
 * that holder returns bytes that hash to the CID, for the root block and for a few sampled files of
 * the mirror (one answered block proves little about a tree). The probe goes over HTTP, so only a
 * record offering `transport-ipfs-gateway-http` with an http(s) address can be verified; a bitswap
 * record stays announced. Our own node and the peers the config marks local are not copies off this
 * disk and are left out.
 */
import type { DelegatedRoutingV1HttpApiClient } from '@helia/delegated-routing-v1-http-api-client'
import { base58btc } from 'multiformats/bases/base58'
import { CID } from 'multiformats/cid'
import type { CopyRecord } from '../../index/index.ts'
import type { PeerInfo } from '../../ipfs/index.ts'
import { TargetUnreachableError } from '../errors.ts'
import { httpGateways } from '../http-gateways.ts'
import type { CopyCounter, ReplicationItem, TargetCallOptions } from '../target.ts'
import { probeBlock } from '../targets/probe.ts'

/** What this counter needs of the local node: its identity and its routing. */
export interface ProvidingNode {
  id(opts?: { signal?: AbortSignal }): Promise<PeerInfo>
  findProviders(cid: string, opts?: { signal?: AbortSignal; limit?: number }): AsyncIterable<PeerInfo>
}

export interface ProviderCounterOptions {
  name: string
  /** The local node: its routing is asked, and its own peer id is never a copy. */
  node?: ProvidingNode
  /** Delegated Routing V1 endpoints (`https://delegated-ipfs.dev`, an IPNI indexer, someguy). */
  endpoints?: string[]
  /** IPFS peer ids on this machine's disk (nodes the config marks local): never copies. */
  localPeers?: string[]
  /** A few file CIDs of the item's tree to probe besides its root (from the index). */
  sample?: (item: ReplicationItem, count: number) => Promise<string[]>
  /** How many sampled files each probe checks (default 3). */
  sampleSize?: number
  /** Providers read per source (default 20). */
  limit?: number
}

const GATEWAY_HTTP = 'transport-ipfs-gateway-http'

interface Provider {
  peerId: string
  addrs: Set<string>
  protocols: Set<string>
  sources: Set<string>
}

export class ProviderCounter implements CopyCounter {
  readonly name: string
  readonly scope = 'tree' as const
  readonly #o: ProviderCounterOptions
  #clients: DelegatedRoutingV1HttpApiClient[] = []
  #started: Promise<void> | undefined
  #self: string | undefined

  constructor(opts: ProviderCounterOptions) {
    this.#o = opts
    this.name = opts.name
  }

  /**
   * The clients, made at the first check: the client and libp2p's logger are loaded then, not by
   * every importer of the replicator's face (the audit CLI).
   */
  async #start(): Promise<void> {
    const endpoints = this.#o.endpoints ?? []
    if (endpoints.length === 0) return
    const [{ delegatedRoutingV1HttpApiClient }, { defaultLogger }] = await Promise.all([
      import('@helia/delegated-routing-v1-http-api-client'),
      import('@libp2p/logger'),
    ])
    const logger = defaultLogger()
    // cacheTTL 0: every check asks again (records come and go, and a re-check is the point).
    this.#clients = endpoints.map((url) => delegatedRoutingV1HttpApiClient({ url, cacheTTL: 0 })({ logger }))
    await Promise.all(this.#clients.map((c) => c.start()))
  }

  async check(item: ReplicationItem, { signal }: TargetCallOptions): Promise<CopyRecord[]> {
    this.#started ??= this.#start()
    await this.#started
    const found = new Map<string, Provider>()
    const add = (peerId: string, addrs: string[], protocols: string[], source: string): void => {
      let p = found.get(peerId)
      if (!p) {
        p = { peerId, addrs: new Set(), protocols: new Set(), sources: new Set() }
        found.set(peerId, p)
      }
      for (const a of addrs) p.addrs.add(a)
      for (const x of protocols) p.protocols.add(x)
      p.sources.add(source)
    }
    const limit = this.#o.limit ?? 20
    if (this.#o.node) {
      const node = this.#o.node
      this.#self ??= (await node.id({ signal })).peerId
      try {
        for await (const p of node.findProviders(item.cid, { signal, limit }))
          add(p.peerId, p.addresses, [], 'dht')
      } catch (err) {
        if (signal.aborted) throw err
        throw new TargetUnreachableError(this.name, 'the local node', (err as Error).message)
      }
    }
    const cid = CID.parse(item.cid)
    for (const client of this.#clients) {
      const source = client.url.toString()
      try {
        let n = 0
        for await (const r of client.getProviders(cid, { signal })) {
          // Record ids are libp2p-key CIDs; Kubo names peers by the base58btc multihash.
          const peerId = base58btc.baseEncode(r.ID.multihash.bytes)
          add(
            peerId,
            r.Addrs.map((a) => a.toString()),
            r.Protocols,
            source,
          )
          if (++n >= limit) break
        }
      } catch (err) {
        if (signal.aborted) throw err
        throw new TargetUnreachableError(this.name, source, (err as Error).message)
      }
    }
    const mine = new Set([this.#self, ...(this.#o.localPeers ?? [])])
    const providers = [...found.values()].filter((p) => !mine.has(p.peerId))
    if (providers.length === 0) return []
    const files = (await this.#o.sample?.(item, this.#o.sampleSize ?? 3)) ?? []
    const out: CopyRecord[] = []
    for (const p of providers) out.push(await this.#record(item, p, files, signal))
    return out
  }

  async #record(
    item: ReplicationItem,
    p: Provider,
    files: string[],
    signal: AbortSignal,
  ): Promise<CopyRecord> {
    const now = Date.now()
    const rec: CopyRecord = {
      cid: item.cid,
      holder: `ipfs:${p.peerId}`,
      kind: 'ipfs-provider',
      how: 'provider-record',
      status: 'announced',
      scope: 'tree',
      local: false,
      checkedAt: now,
      since: now,
      mirror: item.mirror!,
      detail: { protocols: [...p.protocols].join(','), sources: [...p.sources].join(',') },
    }
    if (item.scan !== undefined) rec.scan = item.scan
    const gateways = p.protocols.has(GATEWAY_HTTP) ? httpGateways(p.addrs) : []
    if (gateways.length === 0) return rec
    const failures: string[] = []
    for (const gw of gateways) {
      const failed = await probeAll(gw, [item.cid, ...files], signal)
      if (!failed) {
        rec.status = 'verified'
        rec.how = 'retrieval-probe'
        rec.retrieval = [`${gw}/ipfs/${item.cid}`]
        return rec
      }
      failures.push(`${gw}: ${failed}`)
    }
    rec.error = `retrieval probe failed: ${failures.join('; ')}`
    return rec
  }

  async close(): Promise<void> {
    if (!this.#started) return
    await this.#started.catch(() => {})
    await Promise.all(this.#clients.map((c) => c.stop()))
  }
}

/** The first failure of probing `cids` from `gateway`, or undefined when every block is right. */
async function probeAll(gateway: string, cids: string[], signal: AbortSignal): Promise<string | undefined> {
  for (const cid of cids) {
    const r = await probeBlock(gateway, cid, signal)
    if (!r.ok) return `${cid}: ${r.reason}`
  }
  return undefined
}
