/**
 * The replicator as the daemon runs it: the local node (the Kubo of `[ipfs] api`, else the embedded
 * Helia node over the mirror tree), the targets of `[[replication.targets]]`, and the loop. After each
 * committed scan the mirror is published to the local node (its new files referenced in place, its
 * directory nodes put), its roots announced, and its tree tracked, so the targets pin the new root
 * (`pin update` from the old one); with an entity-scope target, each file's CID is tracked too.
 */
import type { Logger } from 'pino'
import type { Database } from '../db.ts'
import { listMirrors, onScanCommitted, openMirrorIndex } from '../index/index.ts'
import { createHeliaNode, IpfsAuthRefusedError, type IpfsNode, KuboNode } from '../ipfs/index.ts'
import {
  archivedItems,
  type CopyCounter,
  type FileBytes,
  FilecoinTarget,
  type FocService,
  IpniCounter,
  LocalNodeCounter,
  openSynapseService,
  publishMirror,
  type QueueEntry,
  type ReplicationItem,
  Replicator,
  readKeyFile,
} from '../replicator/index.ts'
import { explainEmbeddedListenError } from './embedded-listen.ts'
import { localNodeOf } from './local-node.ts'
import {
  type FilecoinSettings,
  type IpfsSettings,
  policyOf,
  REPROVIDE_CYCLE_HOURS,
  type ReplicationSettings,
} from './replication-config.ts'
import { buildTarget } from './targets.ts'

/** Counts of what went through each target, for `/metrics`. */
export interface TargetCounts {
  stores: number
  storeFailures: number
  checks: number
  checkFailures: number
}

export interface ProvideBudget {
  cycleHours: number
  perHour: number
  /** CIDs one reprovide cycle can carry. */
  budget: number
  /** Roots (file and directory CIDs) per mirror, and whether they exceed the budget. */
  mirrors: Record<string, { roots: number; over: boolean }>
}

export interface ReplicationService {
  /** The running replicator (a new one after a reload that changed targets or timings). */
  readonly replicator: Replicator
  node: IpfsNode | undefined
  /** The running Filecoin targets (their stats and spend for `/metrics`). */
  readonly filecoin: FilecoinTarget[]
  /** The settings in force (replaced by `update`). */
  readonly settings: ReplicationSettings
  targetCounts: Map<string, TargetCounts>
  provide: ProvideBudget
  /** Mirrors whose committed scans are followed. */
  mirrors: () => string[]
  /** Publishes and tracks every mirror of the database whose last scan is not tracked yet. */
  catchUp(): Promise<void>
  /**
   * Applies new `[replication]` settings while running (SIGHUP): n, per-mirror n, per-kind minimums
   * and the freshness window at once; new, removed or changed targets and the loop's timings by a new
   * replicator over the same queue (nothing stored is forgotten). Resolves to what changed.
   */
  update(next: ReplicationSettings): Promise<string[]>
  close(): Promise<void>
}

function counted(c: CopyCounter, counts: TargetCounts): CopyCounter {
  const wrap =
    <A extends unknown[], R>(fn: (...a: A) => Promise<R>, ok: keyof TargetCounts, bad: keyof TargetCounts) =>
    async (...a: A): Promise<R> => {
      try {
        const r = await fn(...a)
        counts[ok]++
        return r
      } catch (err) {
        counts[bad]++
        throw err
      }
    }
  // Same object shape as the target (name, scope, kind, local, concurrency read through).
  const proxy = Object.create(c) as CopyCounter & { store?: unknown }
  proxy.check = wrap(c.check.bind(c), 'checks', 'checkFailures')
  const store = (c as { store?: (...a: unknown[]) => Promise<unknown> }).store
  if (typeof store === 'function') proxy.store = wrap(store.bind(c), 'stores', 'storeFailures')
  if (c.close) proxy.close = c.close.bind(c)
  return proxy
}

/** The `[filecoin]` service: the key is read from its file here and handed to the adapter only. */
export async function openFilecoinService(fc: FilecoinSettings): Promise<FocService> {
  const common = { network: fc.network, source: fc.source, ...(fc.rpc ? { rpc: fc.rpc } : {}) }
  if (fc.sessionKeyFile)
    return openSynapseService({
      ...common,
      sessionKey: {
        privateKey: readKeyFile(fc.sessionKeyFile, `${fc.file}: filecoin.session_key_file`),
        wallet: fc.wallet!,
      },
    })
  return openSynapseService({
    ...common,
    privateKey: readKeyFile(fc.keyFile!, `${fc.file}: filecoin.key_file`),
  })
}

export async function startReplication(opts: {
  db: Database
  log: Logger
  ipfs: IpfsSettings | undefined
  replication: ReplicationSettings
  /** `[filecoin]`, for targets of type filecoin. */
  filecoin?: FilecoinSettings | undefined
  /** Filecoin: the bytes of files no longer on disk (the gateway's fetch-back, once it runs). */
  fileBytes?: () => FileBytes | undefined
  /** Configured mirrors and their trees (the filestore check). */
  mirrorRoots: string[]
  /** Follow committed scans of this process (the daemon); `replicate` alone does not scan. */
  follow: boolean
}): Promise<ReplicationService> {
  const { db, log, ipfs } = opts
  const node = await openLocalNode(db, ipfs, log)
  if (node instanceof KuboNode && opts.mirrorRoots.length > 0) {
    try {
      for (const p of await node.filestoreProblems(opts.mirrorRoots)) log.warn(`ipfs.api: ${p}`)
    } catch (err) {
      // Wrong credentials will not mend by waiting: the start stops, naming [ipfs] api.
      if (err instanceof IpfsAuthRefusedError) {
        await node.close()
        throw err
      }
      log.warn(`ipfs.api: cannot check the filestore layout of ${node.label}: ${(err as Error).message}`)
    }
  }
  let settings = opts.replication
  const targetCounts = new Map<string, TargetCounts>()
  // The wallet opens once (a bad key file stops the start, naming the file).
  const fc = opts.filecoin
  const fcService =
    fc && settings.targets.some((t) => t.type === 'filecoin') ? await openFilecoinService(fc) : undefined
  let filecoin: FilecoinTarget[] = []
  /** Each followed mirror's tree, for the index of its past versions. */
  const roots = new Map<string, string>()
  const makeReplicator = (r: ReplicationSettings): Replicator => {
    const counters: CopyCounter[] = []
    filecoin = []
    // The local node first: it is listed (never counted), and it costs one `has` per item.
    if (node) {
      counters.push(new LocalNodeCounter(node, 'tree'))
      if (r.targets.some((t) => t.scope === 'entity')) counters.push(new LocalNodeCounter(node, 'entity'))
    }
    for (const t of r.targets) {
      const counts = targetCounts.get(t.name) ?? { stores: 0, storeFailures: 0, checks: 0, checkFailures: 0 }
      targetCounts.set(t.name, counts)
      const target = buildTarget(
        t,
        node,
        fc && fcService
          ? {
              settings: fc,
              service: fcService,
              db,
              log,
              ...(opts.fileBytes ? { fileBytes: opts.fileBytes } : {}),
            }
          : undefined,
      )
      if (target instanceof FilecoinTarget) filecoin.push(target)
      counters.push(counted(target, counts))
    }
    // IPNI records of the files (`[filecoin] ipni`): announced until a retrieval probe.
    if (fc && filecoin.length > 0 && fc.ipni.length > 0) {
      const counts = targetCounts.get('filecoin-ipni') ?? {
        stores: 0,
        storeFailures: 0,
        checks: 0,
        checkFailures: 0,
      }
      targetCounts.set('filecoin-ipni', counts)
      counters.push(counted(new IpniCounter({ name: 'filecoin-ipni', endpoints: fc.ipni }), counts))
    }
    for (const name of targetCounts.keys())
      if (!r.targets.some((t) => t.name === name) && !(name === 'filecoin-ipni' && filecoin.length > 0))
        targetCounts.delete(name)
    return new Replicator({
      db,
      counters,
      // Read at each item, so a reload's new n applies to the next check. With entity-scope targets
      // only, nothing stores a tree: its item is kept (it marks the scan published) and asks nothing.
      policy: (item: ReplicationItem) =>
        item.scope === 'tree' &&
        settings.targets.length > 0 &&
        !settings.targets.some((t) => t.scope === 'tree')
          ? { n: 0 }
          : policyOf(settings, { mirrors: [] })(item.mirror).policy,
      recheckMs: r.recheckMs,
      backoff: { baseMs: r.retryBackoffMs, maxMs: r.retryBackoffMaxMs },
      concurrency: r.concurrency,
      callTimeoutMs: r.callTimeoutMs,
      // What left a mirror's tree, pinned on its own on each tree target before its tree pin moves.
      ...(r.keepArchivedMs !== undefined ? { keepArchivedMs: r.keepArchivedMs } : {}),
      archived: (mirror, after, upTo) =>
        archivedItems(openMirrorIndex(db, mirror, roots.get(mirror) ?? ''), after, upTo, { heldAt: after }),
      log,
    })
  }
  let replicator = makeReplicator(settings)
  const entityScope = (): boolean => settings.targets.some((t) => t.scope === 'entity')
  const perHour = ipfs?.providePerHour ?? 0
  const provide: ProvideBudget = {
    cycleHours: REPROVIDE_CYCLE_HOURS,
    perHour,
    budget: perHour * REPROVIDE_CYCLE_HOURS,
    mirrors: {},
  }
  const followed = new Set<string>()

  // One publish at a time per mirror, in commit order.
  const chains = new Map<string, Promise<void>>()
  const abort = new AbortController()
  const publishAndTrack = async (mirror: string, root: string): Promise<void> => {
    const index = openMirrorIndex(db, mirror, root)
    const last = await index.lastScan()
    if (!last?.rootCid) return
    const old: QueueEntry | undefined = await replicator.queue.get(`tree:${mirror}`)
    if (old?.item.scan === last.id) return
    // Records of every scan since the one last tracked (a kill -9 between commit and track loses none).
    const since = old?.item.scan !== undefined ? old.item.scan + 1 : 0
    const pub = await publishMirror(db, index, node, { since, signal: abort.signal, log })
    if (node && ipfs?.provide === 'roots') await announce(mirror, index, pub.rootCid, since)
    if (entityScope()) await trackFiles(mirror, index, since)
    // What left the tree since the tracked scan: an item of its own before the tree pin moves on.
    for (const item of await archivedItems(index, old?.item.scan ?? 0, pub.scan)) await replicator.track(item)
    await replicator.track({ scope: 'tree', cid: pub.rootCid, mirror, scan: pub.scan })
  }
  /** Each file CID written since scan `since`, as an item of its own (entity-scope targets pin it). */
  const trackFiles = async (
    mirror: string,
    index: ReturnType<typeof openMirrorIndex>,
    since: number,
  ): Promise<void> => {
    const done = new Set<string>()
    const files: { cid: string; size: number; mirror: string; path: string }[] = []
    for await (const rec of index.records()) {
      if (rec.kind !== 'file' || rec.state === 'deleted' || !rec.cid || rec.scan < since) continue
      if (done.has(rec.cid)) continue
      done.add(rec.cid)
      files.push({ cid: rec.cid, size: rec.size, mirror, path: rec.path })
    }
    // Filecoin packs the files into pieces first (small ones together), so a store uploads a whole piece.
    for (const t of filecoin) await t.plan(files)
    for (const f of files) await replicator.track({ scope: 'entity', cid: f.cid, mirror, bytes: f.size })
  }
  const announce = async (
    mirror: string,
    index: ReturnType<typeof openMirrorIndex>,
    rootCid: string,
    since: number,
  ): Promise<void> => {
    const fresh: string[] = [rootCid]
    let roots = 0
    for await (const rec of index.records()) {
      if (rec.state !== 'present' || !rec.cid) continue
      roots++
      if (rec.scan >= since && rec.kind === 'file') fresh.push(rec.cid)
    }
    const over = provide.budget > 0 && roots > provide.budget
    provide.mirrors[mirror] = { roots, over }
    if (over)
      log.warn(
        { mirror, roots, budget: provide.budget, perHour, cycleHours: REPROVIDE_CYCLE_HOURS },
        `mirror ${mirror} has ${roots} roots to announce, more than the node reprovides in its ${REPROVIDE_CYCLE_HOURS} h cycle at ${perHour}/h (${provide.budget}): its records will lapse; raise ipfs.provide_per_hour only if the node is measured faster, or set ipfs.provide = "none" and rely on the targets`,
      )
    try {
      await node!.provide([...new Set(fresh)], { signal: abort.signal })
      log.info({ mirror, announced: fresh.length }, 'roots announced')
    } catch (err) {
      log.warn(
        { mirror, err: (err as Error).message },
        'announcing roots failed (the next publish tries again)',
      )
    }
  }
  const enqueue = (mirror: string, root: string): Promise<void> => {
    followed.add(mirror)
    roots.set(mirror, root)
    const next = (chains.get(mirror) ?? Promise.resolve())
      .then(() => publishAndTrack(mirror, root))
      .catch((err) => {
        if (!abort.signal.aborted)
          log.error({ mirror, err: (err as Error).message }, 'publishing the mirror failed')
      })
    chains.set(mirror, next)
    return next
  }
  const unsubscribe = opts.follow
    ? onScanCommitted(db, (s) => void enqueue(s.mirror, s.root), {
        onError: (err) => log.error({ err }, 'replication follow failed'),
      })
    : () => {}

  return {
    get replicator() {
      return replicator
    },
    get settings() {
      return settings
    },
    get filecoin() {
      return filecoin
    },
    node,
    targetCounts,
    provide,
    mirrors: () => [...followed],
    async catchUp() {
      for (const m of await listMirrors(db)) await enqueue(m.mirror, m.root)
    },
    async update(next) {
      const changed = changedKeys(settings, next)
      if (changed.length === 0) return changed
      const rebuild = changed.some((k) => !POLICY_KEYS.includes(k))
      const hadEntity = entityScope()
      settings = next
      if (rebuild) {
        const old = replicator
        const wasRunning = old.running
        replicator = makeReplicator(next)
        await old.stop()
        if (wasRunning) replicator.start()
      }
      // An entity-scope target added: every file is tracked once (the next publish tracks new ones).
      if (!hadEntity && entityScope())
        for (const m of await listMirrors(db))
          await trackFiles(m.mirror, openMirrorIndex(db, m.mirror, m.root), 0)
      // A new n or target is checked now, not at the next re-check.
      await replicator.checkNow()
      return changed
    },
    async close() {
      unsubscribe()
      abort.abort()
      await Promise.allSettled(chains.values())
      await replicator.stop()
      await node?.close()
    },
  }
}

/** Keys a reload applies through the policy alone (read at each check): no new replicator. */
const POLICY_KEYS = ['replication.n', 'replication.min_by_kind', 'replication.fresh', 'mirrors.replication_n']

/** The `[replication]` keys that differ between two settings, by their config names. */
function changedKeys(a: ReplicationSettings, b: ReplicationSettings): string[] {
  const keys: [string, (s: ReplicationSettings) => unknown][] = [
    ['replication.n', (s) => s.n],
    ['replication.min_by_kind', (s) => s.minByKind],
    ['replication.fresh', (s) => s.freshMs],
    ['mirrors.replication_n', (s) => s.perMirror],
    ['replication.recheck', (s) => s.recheckMs],
    ['replication.concurrency', (s) => s.concurrency],
    ['replication.call_timeout', (s) => s.callTimeoutMs],
    ['replication.retry_backoff', (s) => s.retryBackoffMs],
    ['replication.retry_backoff_max', (s) => s.retryBackoffMaxMs],
    ['replication.keep_archived', (s) => s.keepArchivedMs ?? 'forever'],
    ['replication.targets', (s) => s.targets],
  ]
  return keys.filter(([, of]) => JSON.stringify(of(a)) !== JSON.stringify(of(b))).map(([k]) => k)
}

/**
 * The local node: the Kubo of `[ipfs] api`, else the embedded Helia node serving the mirror tree from
 * this disk (loopback, off the public network unless `[ipfs] public = true`).
 */
async function openLocalNode(
  db: Database,
  ipfs: IpfsSettings | undefined,
  log: Logger,
): Promise<IpfsNode | undefined> {
  if (!ipfs) return undefined
  const kubo = localNodeOf(ipfs)
  if (kubo) return kubo
  const e = ipfs.embedded
  const node = await createHeliaNode({
    db,
    dataDir: e.dataDir,
    listen: e.listen,
    public: e.public,
    local: ipfs.local,
    storeMaxBytes: e.storeMaxBytes,
    maxWants: e.maxWants,
  }).catch((err: unknown) => {
    throw explainEmbeddedListenError(err, e.listen, e.file)
  })
  const id = await node.id()
  log.info(
    { peerId: id.peerId, addresses: id.addresses, public: e.public, dataDir: e.dataDir },
    `embedded IPFS node ${id.peerId} listening on ${id.addresses.join(', ')}${e.public ? ' (public network)' : ' (loopback, no public network)'}`,
  )
  return node
}
