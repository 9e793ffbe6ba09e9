/**
 * The holders' IPFS RPC APIs the fetch-back reads evicted files from directly (README, "Fetching
 * evicted files back"), by the copy's `target` (CopyRecord.target): a `kubo` target's `api` (unless
 * `local`: its copies are what was evicted), a `cluster` target's `ipfs_api` addresses (each matched
 * to the copies of its peer once its `id` answered). Looked up in the
 * current `[[replication.targets]]` at each fetch (a reload may change them); one RPC client per
 * address and credentials, kept until close. A `kubo` target's `token` authenticates to its RPC API as
 * the replicator's calls do (rpcAuthorization). The addresses and tokens stay here, never in a
 * CopyRecord.
 */
import type { HolderNode, HolderNodes } from '../gateway/index.ts'
import { KuboNode, rpcAuthorization } from '../ipfs/index.ts'
import type { TargetSettings } from './replication-config.ts'

export interface HolderNodeSet {
  holders: HolderNodes
  close(): Promise<void>
}

/** How long the first look-up of a cluster address's peer id may take (it is retried at the next fetch). */
const ID_MS = 10_000

export function holderNodesOf(targets: () => readonly TargetSettings[]): HolderNodeSet {
  const clients = new Map<string, KuboNode>()
  /** The IPFS peer id behind each cluster address, once `id` answered; a look-up under way. */
  const peers = new Map<string, string>()
  const asking = new Set<string>()
  const client = (api: string, authorization?: string): KuboNode => {
    // Keyed by the credentials too: a reload that changes a target's token gets a client with the new one.
    const key = `${api}\n${authorization ?? ''}`
    let c = clients.get(key)
    if (!c) {
      c = new KuboNode({ api, ...(authorization ? { authorization } : {}) })
      clients.set(key, c)
    }
    return c
  }
  const entry = (api: string, authorization?: string): HolderNode => {
    const node = client(api, authorization)
    return { key: api, node, rpc: node.label, ...(authorization ? { authorization } : {}) }
  }
  /** Learn the peer id behind a cluster address in the background, so later fetches match it to copies. */
  const learn = (api: string): void => {
    if (peers.has(api) || asking.has(api)) return
    asking.add(api)
    client(api)
      .id({ signal: AbortSignal.timeout(ID_MS) })
      .then((r) => void peers.set(api, r.peerId))
      .catch(() => {})
      .finally(() => asking.delete(api))
  }
  const holders: HolderNodes = (name) => {
    const t = targets().find((x) => x.name === name)
    if (!t) return undefined
    if (t.type === 'kubo' && !t.local) return [entry(t.api, t.token ? rpcAuthorization(t.token) : undefined)]
    // A cluster's copies name its peers by IPFS peer id: an address whose peer is known serves the
    // copies of that peer, labelled as it; one not known yet is tried for any of them.
    if (t.type === 'cluster')
      return t.ipfsApi.map((api): HolderNode => {
        const peer = peers.get(api)
        if (peer === undefined) learn(api)
        return peer === undefined
          ? { ...entry(api), id: `${t.name}@${api}` }
          : { ...entry(api), id: `ipfs:${peer}`, peer }
      })
    return undefined
  }
  return {
    holders,
    close: async () => {
      await Promise.all([...clients.values()].map((c) => c.close()))
      clients.clear()
    },
  }
}
