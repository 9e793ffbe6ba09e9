/**
 * The holders' IPFS RPC APIs the fetch-back reads evicted files from directly (README, "Fetching
 * evicted files back"), by the copy's `target` (CopyRecord.target): a `kubo` target's `api` (unless
 * `local`: its copies are what was evicted), a `cluster` target's `ipfs_api` addresses. Looked up in the
 * current `[[replication.targets]]` at each fetch (a reload may change them); one RPC client per
 * address, kept until close. The addresses stay here, never in a CopyRecord.
 */
import type { HolderNode, HolderNodes } from '../gateway/index.ts'
import { KuboNode } from '../ipfs/index.ts'
import type { TargetSettings } from './replication-config.ts'

export interface HolderNodeSet {
  holders: HolderNodes
  close(): Promise<void>
}

export function holderNodesOf(targets: () => readonly TargetSettings[]): HolderNodeSet {
  const clients = new Map<string, KuboNode>()
  const client = (api: string): KuboNode => {
    let c = clients.get(api)
    if (!c) {
      c = new KuboNode({ api })
      clients.set(api, c)
    }
    return c
  }
  const entry = (api: string): HolderNode => {
    const node = client(api)
    return { key: api, node, rpc: node.label }
  }
  const holders: HolderNodes = (name) => {
    const t = targets().find((x) => x.name === name)
    if (!t) return undefined
    if (t.type === 'kubo' && !t.local) return [entry(t.api)]
    // A cluster's copies name its peers, not which address reaches which: each address is its own source.
    if (t.type === 'cluster')
      return t.ipfsApi.map((api): HolderNode => ({ ...entry(api), id: `${t.name}@${api}` }))
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
