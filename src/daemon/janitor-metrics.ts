import { Counter, Gauge, type Registry } from 'prom-client'
import type { JanitorFigures } from '../gateway/index.ts'
import type { JanitorCounters, JanitorService } from './janitor.ts'

/** The janitor's counters as the gateway's status page shows them (`/_status`, `/_status.json`). */
export function janitorFigures(c: JanitorCounters): JanitorFigures {
  const r = c.lastRun
  return {
    runs: c.runs,
    failures: c.failures,
    evictions: c.evictions,
    bytesFreed: c.bytesFreed,
    lastRun: r
      ? { at: r.now, dryRun: r.dryRun, eligible: r.eligible, evicted: r.evicted, bytesFreed: r.bytesFreed }
      : null,
  }
}

/** The janitor's part of `/metrics`: evictions, bytes freed, passes, and what the last pass saw. */
export function registerJanitorMetrics(registry: Registry, janitor: JanitorService): void {
  const c = janitor.counters
  const counter = (name: string, help: string, value: () => number) =>
    new Counter({
      name,
      help,
      registers: [registry],
      collect() {
        this.reset()
        this.inc(value())
      },
    })
  counter(
    'cidmirror_janitor_evictions_total',
    'Files the janitor evicted (their records kept, bytes gone from disk)',
    () => c.evictions,
  )
  counter('cidmirror_janitor_bytes_freed_total', 'Bytes the janitor freed on disk', () => c.bytesFreed)
  counter('cidmirror_janitor_runs_total', 'Janitor passes that finished', () => c.runs)
  counter('cidmirror_janitor_failures_total', 'Janitor passes that failed', () => c.failures)
  new Gauge({
    name: 'cidmirror_janitor_eligible_files',
    help: 'Files the last janitor pass found eligible (evicted or, in quota mode, waiting for the high mark)',
    registers: [registry],
    collect() {
      this.set(c.lastRun?.eligible ?? 0)
    },
  })
  new Gauge({
    name: 'cidmirror_janitor_evicted_files',
    help: 'Files evicted, by mirror, when the last janitor pass ended (those evicted before it and by it)',
    labelNames: ['mirror'],
    registers: [registry],
    collect() {
      this.reset()
      for (const m of c.lastRun?.mirrors ?? []) this.set({ mirror: m.mirror }, m.alreadyEvicted + m.evicted)
    },
  })
}
