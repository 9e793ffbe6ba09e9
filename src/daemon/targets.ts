/**
 * One factory per `[[replication.targets]] type`: the config's settings of a target and the local node
 * in, a copy counter out. A new kind of target is one row here (and its type in TARGET_TYPES).
 */
import type { IpfsNode } from '../ipfs/index.ts'
import { KuboNode } from '../ipfs/index.ts'
import { ClusterTarget, type CopyCounter, KuboTarget, PinningServiceTarget } from '../replicator/index.ts'
import type { TargetSettings, TargetType } from './replication-config.ts'

/** What every factory may lean on: the local node that holds the mirror's blocks, when one runs. */
export interface TargetContext {
  node: IpfsNode | undefined
  /** The local node's addresses, for targets that fetch from it (connect first, or as origins). */
  source: (() => Promise<string[]>) | undefined
  /** Dials a peer from the local node, so the peer finds our blocks over bitswap. */
  connect: ((addr: string, signal: AbortSignal) => Promise<void>) | undefined
}

type Factory = (t: TargetSettings, ctx: TargetContext) => CopyCounter

const common = (t: TargetSettings) => ({
  name: t.name,
  scope: t.scope,
  ...(t.concurrency !== undefined ? { concurrency: t.concurrency } : {}),
})

export const TARGET_FACTORIES: Record<TargetType, Factory> = {
  kubo: (t, { source }) =>
    new KuboTarget({
      ...common(t),
      node: new KuboNode({ api: t.api, local: t.local }),
      local: t.local,
      ...(source ? { source } : {}),
      ...(t.gateway ? { gateway: t.gateway } : {}),
    }),
  cluster: (t, { connect }) =>
    new ClusterTarget({
      ...common(t),
      api: t.api,
      ...(t.token ? { auth: t.token.includes(':') ? t.token : `Bearer ${t.token}` } : {}),
      ...(t.replicationMin !== undefined ? { replicationMin: t.replicationMin } : {}),
      ...(t.replicationMax !== undefined ? { replicationMax: t.replicationMax } : {}),
      ...(connect ? { connect } : {}),
    }),
  'pinning-service': (t, { source, connect }) =>
    new PinningServiceTarget({
      ...common(t),
      endpoint: t.api,
      token: t.token ?? '',
      ...(t.gateway ? { gateway: t.gateway } : {}),
      ...(source ? { origins: source } : {}),
      ...(connect ? { connect } : {}),
    }),
}

export function buildTarget(t: TargetSettings, node: IpfsNode | undefined): CopyCounter {
  const ctx: TargetContext = {
    node,
    source: node ? async () => (await node.id()).addresses : undefined,
    connect: node ? (addr, signal) => node.connect(addr, { signal }) : undefined,
  }
  return TARGET_FACTORIES[t.type](t, ctx)
}
