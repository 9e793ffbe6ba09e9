/**
 * One factory per `[[replication.targets]] type`: the config's settings of a target and the local node
 * in, a copy counter out. A new kind of target is one row here (and its type in TARGET_TYPES).
 */
import type { Logger } from 'pino'
import type { Database } from '../db.ts'
import { BlockReader } from '../index/index.ts'
import type { IpfsNode } from '../ipfs/index.ts'
import { KuboNode, rpcAuthorization } from '../ipfs/index.ts'
import {
  ClusterTarget,
  type CopyCounter,
  type FileBytes,
  FilecoinTarget,
  type FocService,
  KuboTarget,
  PinningServiceTarget,
} from '../replicator/index.ts'
import type { FilecoinSettings, TargetSettings, TargetType } from './replication-config.ts'

/** What every factory may lean on: the local node that holds the mirror's blocks, when one runs. */
export interface TargetContext {
  node: IpfsNode | undefined
  /** The local node's addresses, for targets that fetch from it (connect first, or as origins). */
  source: (() => Promise<string[]>) | undefined
  /** Dials a peer from the local node, so the peer finds our blocks over bitswap. */
  connect: ((addr: string, signal: AbortSignal) => Promise<void>) | undefined
  /** Filecoin targets: the `[filecoin]` section, its opened service, the database (pieces, block map). */
  filecoin?:
    | {
        settings: FilecoinSettings
        service: FocService
        db: Database
        log: Logger
        /** Files no longer on disk, read through the gateway's fetch-back once it runs. */
        fileBytes?: () => FileBytes | undefined
      }
    | undefined
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
      node: new KuboNode({
        api: t.api,
        local: t.local,
        what: `replication.targets[${t.name}].api`,
        ...(t.token ? { authorization: rpcAuthorization(t.token) } : {}),
      }),
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
  filecoin: (t, { filecoin }) => {
    if (!filecoin) throw new TypeError(`target ${t.name}: a filecoin target needs the [filecoin] service`)
    const { settings: fc, service, db, log, fileBytes } = filecoin
    const blocks = new BlockReader(db)
    return new FilecoinTarget({
      name: t.name,
      service,
      db,
      blocks: (cid) => blocks.get(cid),
      ...(fileBytes ? { fileBytes } : {}),
      copies: fc.copies,
      pack: {
        ...(fc.smallFile !== undefined ? { smallFile: fc.smallFile } : {}),
        ...(fc.pieceTarget !== undefined ? { pieceTarget: fc.pieceTarget } : {}),
        ...(fc.maxPiece !== undefined ? { maxPieceBytes: fc.maxPiece } : {}),
      },
      cap: {
        ...(fc.capMonth !== undefined ? { perMonth: fc.capMonth } : {}),
        ...(fc.capTotal !== undefined ? { total: fc.capTotal } : {}),
      },
      ...(t.concurrency !== undefined ? { concurrency: t.concurrency } : {}),
      ...(fc.scanEveryMs !== undefined ? { scanEveryMs: fc.scanEveryMs } : {}),
      ...(fc.scanFromBlock !== undefined ? { scanFromBlock: fc.scanFromBlock } : {}),
      log,
    })
  },
}

export function buildTarget(
  t: TargetSettings,
  node: IpfsNode | undefined,
  filecoin?: TargetContext['filecoin'],
): CopyCounter {
  const ctx: TargetContext = {
    filecoin,
    node,
    source: node ? async () => (await node.id()).addresses : undefined,
    connect: node ? (addr, signal) => node.connect(addr, { signal }) : undefined,
  }
  return TARGET_FACTORIES[t.type](t, ctx)
}
