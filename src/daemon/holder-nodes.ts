/**
 * The holders' IPFS RPC APIs the fetch-back reads evicted files from directly (README, "Fetching
 * evicted files back"), by the copy's `target` (CopyRecord.target): a `kubo` target's `api` (unless
 * `local`: its copies are what was evicted), a `cluster` target's `ipfs_api` addresses (each matched
 * to the copies of its peer once its `id` answered). Looked up in the
 * current `[[replication.targets]]` at each fetch (a reload may change them); one RPC client per
 * address and credentials, kept while a target names them (a reload that changes a token or an
 * address closes the old client). A `kubo` target's `token` authenticates to its RPC API as the
 * replicator's calls do (rpcAuthorization), a cluster target's `ipfs_api_token` to each `ipfs_api`.
 * The addresses and tokens stay here, never in a CopyRecord.
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
  /** The targets the clients were last pruned against: a reload gives a new list. */
  let seen: readonly TargetSettings[] | undefined
  const client = (api: string, authorization?: string): KuboNode => {
    // Keyed by the credentials too: a reload that changes a target's token gets a client with the new one.
    const key = clientKey(api, authorization)
    let c = clients.get(key)
    if (!c) {
      c = new KuboNode({ api, ...(authorization ? { authorization } : {}) })
      clients.set(key, c)
    }
    return c
  }
  /** After a reload: close the clients no target names any more (an old token's, a removed address's). */
  const prune = (current: readonly TargetSettings[]): void => {
    if (current === seen) return
    seen = current
    const used = new Set(current.flatMap((t) => endpointsOf(t).map((e) => clientKey(e.api, e.authorization))))
    for (const [key, c] of clients)
      if (!used.has(key)) {
        clients.delete(key)
        // A fetch under way on it ends its requests first (undici's close waits for them).
        void c.close().catch(() => {})
      }
  }
  const entry = (api: string, authorization?: string): HolderNode => {
    const node = client(api, authorization)
    return { key: api, node, rpc: node.label, ...(authorization ? { authorization } : {}) }
  }
  /** Learn the peer id behind a cluster address in the background, so later fetches match it to copies. */
  const learn = (api: string, authorization?: string): void => {
    if (peers.has(api) || asking.has(api)) return
    asking.add(api)
    client(api, authorization)
      .id({ signal: AbortSignal.timeout(ID_MS) })
      .then((r) => void peers.set(api, r.peerId))
      .catch(() => {})
      .finally(() => asking.delete(api))
  }
  const holders: HolderNodes = (name) => {
    const all = targets()
    prune(all)
    const t = all.find((x) => x.name === name)
    if (!t) return undefined
    const endpoints = endpointsOf(t)
    if (t.type === 'kubo') return endpoints.map((e) => entry(e.api, e.authorization))
    // A cluster's copies name its peers by IPFS peer id: an address whose peer is known serves the
    // copies of that peer, labelled as it; one not known yet is tried for any of them.
    if (t.type === 'cluster')
      return endpoints.map(({ api, authorization }): HolderNode => {
        const peer = peers.get(api)
        if (peer === undefined) learn(api, authorization)
        return peer === undefined
          ? { ...entry(api, authorization), id: `${t.name}@${api}` }
          : { ...entry(api, authorization), id: `ipfs:${peer}`, peer }
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

function clientKey(api: string, authorization: string | undefined): string {
  return `${api}\n${authorization ?? ''}`
}

/** The RPC addresses a target's copies are read from, each with the `Authorization` header it needs. */
function endpointsOf(t: TargetSettings): { api: string; authorization: string | undefined }[] {
  if (t.type === 'kubo' && !t.local)
    return [{ api: t.api, authorization: t.token ? rpcAuthorization(t.token) : undefined }]
  if (t.type === 'cluster') {
    const authorization = t.ipfsApiToken ? rpcAuthorization(t.ipfsApiToken) : undefined
    return t.ipfsApi.map((api) => ({ api, authorization }))
  }
  return []
}
