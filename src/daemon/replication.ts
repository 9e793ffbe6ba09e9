/**
 * The replicator as the daemon runs it: the local Kubo node of `[ipfs]`, the targets of
 * `[[replication.targets]]`, and the loop. After each committed scan the mirror is published to the
 * local node (its new files referenced in place, its directory nodes put), its roots announced, and its
 * tree tracked, so the targets pin the new root (`pin update` from the old one).
 */
import type { Logger } from 'pino'
import type { Database } from '../db.ts'
import { listMirrors, onScanCommitted, openMirrorIndex } from '../index/index.ts'
import { KuboNode } from '../ipfs/index.ts'
import {
  ClusterTarget,
  type CopyCounter,
  KuboTarget,
  PinningServiceTarget,
  publishMirror,
  type QueueEntry,
  type ReplicationItem,
  Replicator,
} from '../replicator/index.ts'
import {
  type IpfsSettings,
  REPROVIDE_CYCLE_HOURS,
  type ReplicationSettings,
  type TargetSettings,
} from './replication-config.ts'

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
  replicator: Replicator
  node: KuboNode | undefined
  targetCounts: Map<string, TargetCounts>
  provide: ProvideBudget
  /** Mirrors whose committed scans are followed. */
  mirrors: () => string[]
  /** Publishes and tracks every mirror of the database whose last scan is not tracked yet. */
  catchUp(): Promise<void>
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

function buildTarget(t: TargetSettings, node: KuboNode | undefined): CopyCounter {
  const source = node ? async () => (await node.id()).addresses : undefined
  const connect = node ? (addr: string, signal: AbortSignal) => node.connect(addr, { signal }) : undefined
  const common = {
    name: t.name,
    scope: t.scope,
    ...(t.concurrency !== undefined ? { concurrency: t.concurrency } : {}),
  }
  switch (t.type) {
    case 'kubo':
      return new KuboTarget({
        ...common,
        node: new KuboNode({ api: t.api, local: t.local }),
        local: t.local,
        ...(source ? { source } : {}),
        ...(t.gateway ? { gateway: t.gateway } : {}),
      })
    case 'cluster':
      return new ClusterTarget({
        ...common,
        api: t.api,
        ...(t.token ? { auth: t.token.includes(':') ? t.token : `Bearer ${t.token}` } : {}),
        ...(t.replicationMin !== undefined ? { replicationMin: t.replicationMin } : {}),
        ...(t.replicationMax !== undefined ? { replicationMax: t.replicationMax } : {}),
        ...(connect ? { connect } : {}),
      })
    case 'pinning-service':
      return new PinningServiceTarget({
        ...common,
        endpoint: t.api,
        token: t.token ?? '',
        ...(t.gateway ? { gateway: t.gateway } : {}),
        ...(source ? { origins: source } : {}),
        ...(connect ? { connect } : {}),
      })
  }
}

export async function startReplication(opts: {
  db: Database
  log: Logger
  ipfs: IpfsSettings | undefined
  replication: ReplicationSettings
  /** Configured mirrors and their trees (the filestore check). */
  mirrorRoots: string[]
  /** Follow committed scans of this process (the daemon); `replicate` alone does not scan. */
  follow: boolean
}): Promise<ReplicationService> {
  const { db, log, ipfs, replication: r } = opts
  const node = ipfs?.api ? new KuboNode({ api: ipfs.api, local: ipfs.local }) : undefined
  if (node && opts.mirrorRoots.length > 0) {
    try {
      for (const p of await node.filestoreProblems(opts.mirrorRoots)) log.warn(`ipfs.api: ${p}`)
    } catch (err) {
      log.warn(`ipfs.api: cannot check the filestore layout of ${node.label}: ${(err as Error).message}`)
    }
  }
  const targetCounts = new Map<string, TargetCounts>()
  const counters = r.targets.map((t) => {
    const counts = { stores: 0, storeFailures: 0, checks: 0, checkFailures: 0 }
    targetCounts.set(t.name, counts)
    return counted(buildTarget(t, node), counts)
  })
  const replicator = new Replicator({
    db,
    counters,
    policy: (item: ReplicationItem) => ({
      n: (item.mirror !== undefined ? r.perMirror[item.mirror] : undefined) ?? r.n,
      ...(r.minFilecoin ? { minByKind: { filecoin: r.minFilecoin } } : {}),
      freshMs: r.freshMs,
    }),
    recheckMs: r.recheckMs,
    backoff: { baseMs: r.retryBackoffMs, maxMs: r.retryBackoffMaxMs },
    concurrency: r.concurrency,
    callTimeoutMs: r.callTimeoutMs,
    log,
  })
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
    await replicator.track({ scope: 'tree', cid: pub.rootCid, mirror, scan: pub.scan })
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
    replicator,
    node,
    targetCounts,
    provide,
    mirrors: () => [...followed],
    async catchUp() {
      for (const m of await listMirrors(db)) await enqueue(m.mirror, m.root)
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
