/**
 * `/metrics` in Prometheus format: the replicator's queue, copies and targets, read at scrape time
 * from LevelDB and the service's counters (a registry of its own, not prom-client's global one).
 */
import { Counter, Gauge, Registry } from 'prom-client'
import { formatUsdfc } from '../replicator/index.ts'
import type { ExtraRoutes } from '../sync/index.ts'
import type { ReplicationService } from './replication.ts'

export function metricsRegistry(svc: ReplicationService): Registry {
  const registry = new Registry()
  const { replicator } = svc
  new Gauge({
    name: 'cidmirror_replication_queue_items',
    help: 'Replication queue items by state',
    labelNames: ['state'],
    registers: [registry],
    async collect() {
      this.reset()
      for (const [state, n] of Object.entries(await replicator.queue.counts())) this.set({ state }, n)
    },
  })
  new Gauge({
    name: 'cidmirror_replication_recheck_age_seconds',
    help: 'Age of the oldest last check of a queue item',
    registers: [registry],
    async collect() {
      const now = Date.now()
      let oldest = 0
      for (const e of await replicator.queue.all())
        oldest = Math.max(oldest, e.checkedAt === undefined ? 0 : (now - e.checkedAt) / 1000)
      this.set(oldest)
    },
  })
  new Gauge({
    name: 'cidmirror_copies',
    help: 'Recorded tree copies by status and target (local copies never count toward n)',
    labelNames: ['status', 'target', 'local'],
    registers: [registry],
    async collect() {
      this.reset()
      const seen = new Set((await replicator.queue.all()).map((e) => e.item.mirror).filter(Boolean))
      for (const mirror of seen) {
        for (const c of await replicator.copies.trees(mirror!)) {
          this.inc({ status: c.status, target: c.target ?? '', local: String(c.local) })
        }
      }
    },
  })
  const perTarget = (
    name: string,
    help: string,
    key: 'stores' | 'storeFailures' | 'checks' | 'checkFailures',
  ) =>
    new Counter({
      name,
      help,
      labelNames: ['target'],
      registers: [registry],
      collect() {
        this.reset()
        for (const [target, c] of svc.targetCounts) this.inc({ target }, c[key])
      },
    })
  perTarget('cidmirror_replication_stores_total', 'Stores that succeeded, by target', 'stores')
  perTarget('cidmirror_replication_store_failures_total', 'Stores that failed, by target', 'storeFailures')
  perTarget('cidmirror_replication_checks_total', 'Checks that succeeded, by target', 'checks')
  perTarget('cidmirror_replication_check_failures_total', 'Checks that failed, by target', 'checkFailures')
  new Gauge({
    name: 'cidmirror_provide_roots',
    help: `Roots (file and directory CIDs) a mirror announces; compare with cidmirror_provide_budget`,
    labelNames: ['mirror'],
    registers: [registry],
    collect() {
      this.reset()
      for (const [mirror, m] of Object.entries(svc.provide.mirrors)) this.set({ mirror }, m.roots)
    },
  })
  new Gauge({
    name: 'cidmirror_provide_budget',
    help: 'CIDs the local node can reprovide in one reprovide cycle (ipfs.provide_per_hour x 22 h)',
    registers: [registry],
    collect() {
      this.set(svc.provide.budget)
    },
  })
  const filecoin = (name: string, help: string, key: 'provenCopies' | 'overdueProofs' | 'bytesStored') =>
    new Gauge({
      name,
      help,
      labelNames: ['target'],
      registers: [registry],
      async collect() {
        this.reset()
        for (const t of svc.filecoin) this.set({ target: t.name }, (await t.stats())[key])
      },
    })
  filecoin(
    'cidmirror_filecoin_proven_copies',
    'Filecoin piece copies live and proving (PDP), by target',
    'provenCopies',
  )
  filecoin(
    'cidmirror_filecoin_overdue_proofs',
    'Filecoin piece copies whose proof is overdue (not counted)',
    'overdueProofs',
  )
  filecoin(
    'cidmirror_filecoin_bytes_stored',
    'CAR bytes stored on Filecoin, summed over copies',
    'bytesStored',
  )
  const usdfc = (v: bigint): number => Number(formatUsdfc(v))
  new Gauge({
    name: 'cidmirror_filecoin_spend_usdfc',
    help: 'Filecoin storage bought (quoted USDFC per month of storage) this calendar month and in all',
    labelNames: ['target', 'period'],
    registers: [registry],
    async collect() {
      this.reset()
      for (const t of svc.filecoin) {
        const s = await t.spend.state()
        this.set({ target: t.name, period: 'month' }, usdfc(s.spentMonth))
        this.set({ target: t.name, period: 'total' }, usdfc(s.spentTotal))
      }
    },
  })
  new Gauge({
    name: 'cidmirror_filecoin_spend_cap_usdfc',
    help: 'The [filecoin] spending caps (cap_month, cap_total), where set',
    labelNames: ['target', 'period'],
    registers: [registry],
    collect() {
      this.reset()
      for (const t of svc.filecoin) {
        if (t.spend.cap.perMonth !== undefined)
          this.set({ target: t.name, period: 'month' }, usdfc(t.spend.cap.perMonth))
        if (t.spend.cap.total !== undefined)
          this.set({ target: t.name, period: 'total' }, usdfc(t.spend.cap.total))
      }
    },
  })
  return registry
}

/** `GET /metrics`: a token, or anyone when `read_access = "public"` (as the read API). */
export function metricsRoute(registry: Registry, access: () => 'token' | 'public'): ExtraRoutes {
  return (app) => {
    app.get('/metrics', async (req, reply) => {
      if (access() !== 'public') await app.auth(req)
      reply.header('content-type', registry.contentType)
      return registry.metrics()
    })
  }
}
