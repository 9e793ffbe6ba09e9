/** What `cidmirror janitor` prints: a line per file, a line per mirror, the totals; or NDJSON. */
import type { FileDecision, JanitorReport } from '../cache/index.ts'
import { formatSize } from '../util/units.ts'

export function fileLine(d: FileDecision): string {
  const what = d.evicted ? 'evicted' : d.eligible ? (d.skipped ? 'eligible' : 'evict') : 'keep'
  const why = d.eligible
    ? `${d.verified ?? 0} verified copies${d.skipped ? `; not evicted: ${d.skipped}` : ''}`
    : d.reasons.join('; ')
  return `${what.padEnd(8)} ${d.mirror}/${d.path}  ${formatSize(d.size)}  ${why}`
}

export function reportLines(r: JanitorReport): string[] {
  const out: string[] = []
  for (const m of r.mirrors) {
    const finished = m.finished > 0 ? `, ${m.finished} interrupted evictions finished` : ''
    out.push(
      `${m.mirror}: ${m.files} present files, ${m.eligible} eligible (${formatSize(m.bytesEligible)}), ${m.evicted} evicted (${formatSize(m.bytesFreed)}), ${m.alreadyEvicted} evicted before${finished}`,
    )
  }
  if (r.quota)
    out.push(
      `quota: ${formatSize(r.quota.usedBytes)} used, high water ${formatSize(r.quota.highBytes)}, low water ${formatSize(r.quota.lowBytes)}${r.dryRun ? ', after the evictions' : ', now'} ${formatSize(r.quota.afterBytes)}`,
    )
  out.push(
    r.dryRun
      ? `dry run: would free ${formatSize(r.bytesEligible)} (${r.eligible} files)${r.quota ? `; within the quota ${formatSize(r.quota.usedBytes - r.quota.afterBytes)}` : ''}`
      : `freed ${formatSize(r.bytesFreed)} (${r.evicted} files)`,
  )
  return out
}
