/**
 * The gateway as the daemon and `cidmirror gateway` run it: built from `[gateway]`, reading the index of
 * this process's database (or a daemon's read API), its cache dropped at each committed scan, the
 * copies' retrieval URLs as `Link: rel=duplicate`, and the plugins registered in one list below.
 */
import type { Logger } from 'pino'
import type { Registry } from 'prom-client'
import type { Database } from '../db.ts'
import type {
  FetchBack,
  FetchBackFigures,
  Gateway,
  GatewayPlugin,
  HolderNodes,
  JanitorFigures,
  JobView,
  RecentRequests,
  ReplicationView,
  RequestTimes,
} from '../gateway/index.ts'
import {
  BlockReader,
  CopyStore,
  type IndexReader,
  onScanCommitted,
  openIndexReader,
  openMirrorIndex,
} from '../index/index.ts'
import type { IpfsNode } from '../ipfs/index.ts'
import type { FileBytes } from '../replicator/index.ts'
import { explainListenError } from '../sync/index.ts'
import type { GatewaySettings } from './gateway-config.ts'

export interface GatewayServiceOptions {
  settings: GatewaySettings
  log: Logger
  /** The database this process holds; or, without it, a reader (a daemon's read API). */
  db?: Database
  reader?: IndexReader
  fetchBack?: FetchBack
  /** Registries served at the gateway's `/metrics` with its own (the replicator's). */
  extraMetrics?: Registry[]
  /** The local IPFS node: the trustless routes relay, verified, the blocks it holds that are not the mirror's. */
  node?: IpfsNode
  /** The local node's HTTP gateway (`[ipfs] gateway`): the fetch-back's fastest verified path. */
  localGateway?: string
  /** The holders' RPC APIs by copy target (holder-nodes.ts): the fetch-back reads them directly. */
  holders?: HolderNodes
  /** The sync jobs' statuses, for the status page (the daemon's worker). */
  jobs?: () => JobView[]
  /** A mirror's replication health for the status page (the audit's summary), when replication is configured. */
  replication?: (mirror: string) => Promise<ReplicationView | undefined>
  /** Where the gateway notes each file's request, for the janitor's `not_requested_within`. */
  requests?: RequestTimes
  /** The daemon's janitor figures for the status page (undefined while none runs). */
  janitor?: () => JanitorFigures | undefined
}

/**
 * The fastify plugins the gateway registers, each with explicit options. The trustless `/ipfs/{cid}`
 * routes (src/gateway/trustless, with the database's block map: not over a daemon's read API) and the
 * status page (src/gateway/status) are registered here.
 */
export async function gatewayPlugins(
  o: GatewayServiceOptions & {
    reader: IndexReader
    recent: RecentRequests
    fetchBackFigures?: () => FetchBackFigures
  },
): Promise<GatewayPlugin[]> {
  const { fetchFileVia, statusPage, trustlessGateway } = await import('../gateway/index.ts')
  const firstMirror = o.settings.mirrors[0]?.name
  const plugins: GatewayPlugin[] = [
    {
      name: 'status',
      plugin: statusPage,
      options: {
        index: o.reader,
        recent: () => o.recent.list(),
        ...(o.jobs ? { jobs: o.jobs } : {}),
        ...(o.replication ? { replication: o.replication } : {}),
        ...(o.fetchBackFigures ? { fetchBack: o.fetchBackFigures } : {}),
        ...(o.janitor ? { janitor: o.janitor } : {}),
      },
    },
  ]
  if (o.db) {
    plugins.push({
      name: 'trustless',
      plugin: trustlessGateway,
      options: {
        blocks: new BlockReader(o.db),
        ...(o.node ? { node: o.node } : {}),
        // A CAR of a file whose leaves left this disk gets them fetched back, verified.
        ...(o.fetchBack && firstMirror !== undefined
          ? { fetchFile: fetchFileVia(o.fetchBack, firstMirror) }
          : {}),
      },
    })
  }
  return plugins
}

/**
 * The fetch-back of evicted files (src/gateway/fetch-back), from the local node, the copies the
 * replicator recorded, then `[gateway] fetch_from`; a file fetched back is recorded present again in
 * its mirror's index (`local.markRefetched`).
 */
async function fetchBackOf(o: GatewayServiceOptions, db: Database, copies: CopyStore): Promise<FetchBack> {
  const { createFetchBack } = await import('../gateway/index.ts')
  const roots = new Map(o.settings.mirrors.map((m) => [m.name, m.root]))
  return createFetchBack({
    rootOf: (mirror) => roots.get(mirror),
    ...(o.node ? { node: o.node } : {}),
    ...(o.localGateway ? { localGateway: o.localGateway } : {}),
    ...(o.holders ? { holders: o.holders } : {}),
    gateways: o.settings.fetchFrom,
    ...o.settings.fetchLimits,
    pastCache: o.settings.pastCache,
    copies,
    // The files' inner nodes from the block map: their leaves known, gateways may send plain bytes.
    nodes: new BlockReader(db),
    recorderOf: (mirror) => {
      const root = roots.get(mirror)
      return root === undefined ? undefined : openMirrorIndex(db, mirror, root).local
    },
    log: {
      info: (obj, msg) => o.log.info(obj, msg),
      warn: (obj, msg) => o.log.warn(obj, msg),
    },
  })
}

/** The gateway, and its fetch-back when one runs (the Filecoin packer reads files no longer on disk through it). */
export interface GatewayService extends Gateway {
  fetchBack?: FetchBack
}

/**
 * A file's bytes through the fetch-back, from `start` on, as a transient fetch: to the packer only,
 * never into the tree nor told to the index (the file stays evicted or deleted).
 */
export function fileBytesVia(fetchBack: FetchBack): FileBytes {
  return async (f, start, signal) => {
    const file = { mirror: f.mirror, path: f.path, cid: f.cid, size: f.size, mtimeMs: 0, transient: true }
    const range = start > 0 ? { start, end: f.size - 1 } : undefined
    return (await fetchBack.open(file, range, signal)).body
  }
}

export async function startGatewayService(o: GatewayServiceOptions): Promise<GatewayService> {
  const { fetchBackRegistry, fetchBackStatus, pastVersionsOf, RecentRequests, startGateway } = await import(
    '../gateway/index.ts'
  )
  const recent = new RecentRequests()
  const s = o.settings
  const reader = o.reader ?? openIndexReader(o.db!)
  const db = o.db
  const copies = db ? new CopyStore(db) : undefined
  const fetchBack = o.fetchBack ?? (db && s.fetchBack ? await fetchBackOf(o, db, copies!) : undefined)
  // Its bytes, failures and time to first byte by source, beside the gateway's own figures.
  const fetchBackMetrics = fetchBack ? fetchBackRegistry(fetchBack) : undefined
  const fetchBackFigures = fetchBack ? fetchBackStatus(fetchBack) : undefined
  try {
    const gateway: GatewayService = await startGateway({
      host: s.listenAddr,
      port: s.listenPort,
      mirrors: s.mirrors,
      reader,
      ...(copies ? { copiesOf: (mirror, r) => copies.ofPath(mirror, r.cid, r.scan) } : {}),
      ...(db ? { onScanCommitted: (fn) => onScanCommitted(db, fn) } : {}),
      ...(fetchBack ? { fetchBack } : {}),
      log: o.log,
      limits: s.limits,
      cache: s.cache,
      readBufferBytes: s.readBufferBytes,
      readBuffers: s.readBuffers,
      mime: s.mime,
      ...(s.accessLog
        ? {
            accessLog: {
              file: s.accessLog.file,
              keep: s.accessLog.keep,
              ...(s.accessLog.size ? { size: s.accessLog.size } : {}),
              ...(s.accessLog.interval ? { interval: s.accessLog.interval } : {}),
            },
          }
        : {}),
      metrics: s.metrics,
      ...(o.extraMetrics || fetchBackMetrics
        ? { extraMetrics: [...(o.extraMetrics ?? []), ...(fetchBackMetrics ? [fetchBackMetrics] : [])] }
        : {}),
      plugins: await gatewayPlugins({
        ...o,
        ...(fetchBack ? { fetchBack } : {}),
        reader,
        recent,
        ...(fetchBackFigures ? { fetchBackFigures } : {}),
      }),
      recent,
      ...(o.requests ? { requests: o.requests } : {}),
      // `/_deleted/` and plain `/ipfs/` downloads of past roots walk the block map of this database.
      ...(db
        ? {
            past: {
              blocks: new BlockReader(db),
              ...(o.node ? { node: o.node } : {}),
              versions: pastVersionsOf((mirror) => {
                const m = s.mirrors.find((x) => x.name === mirror)
                return m ? openMirrorIndex(db, m.name, m.root) : undefined
              }),
            },
          }
        : {}),
    })
    if (fetchBack) gateway.fetchBack = fetchBack
    return gateway
  } catch (err) {
    const key = { file: s.file, key: 'gateway.listen_port' }
    throw explainListenError(err, s.listenAddr, s.listenPort, {
      addr: { file: s.file, key: 'gateway.listen_addr' },
      port: key,
    })
  }
}
