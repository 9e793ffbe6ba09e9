/**
 * The n an audit judges each mirror against: `-n` (the API's `n=`) first, then the mirror's
 * `replication_n`, then `[replication] n`, else 1. Reads the config structurally, so that it works
 * before and after the config has a `[replication]` section.
 */

import type { PolicySource } from './audit-stream.ts'
import type { ReplicationPolicy } from './policy.ts'

/** The parts of the daemon's config this reads (src/sync's Config has them when configured). */
export interface ReplicationConfigView {
  sections?: Record<string, { table: Record<string, unknown> } | undefined>
  mirrors?: { name: string; replicationN?: number | undefined }[]
}

export const DEFAULT_N = 1

/**
 * `sectionDefaultN`: the replicator's n when `[replication]` is there without `n` (the daemon's
 * REPLICATION_DEFAULTS.n), so that the audit judges as the replicator stores.
 */
export function auditPolicyOf(
  config: ReplicationConfigView | undefined,
  nFlag?: number,
  sectionDefaultN?: number,
): (mirror: string) => { policy: ReplicationPolicy; from: PolicySource } {
  const table = config?.sections?.replication?.table
  const globalN =
    typeof table?.n === 'number' && Number.isInteger(table.n) ? table.n : table ? sectionDefaultN : undefined
  return (mirror) => {
    if (nFlag !== undefined) return { policy: { n: nFlag }, from: 'flag' }
    const own = config?.mirrors?.find((m) => m.name === mirror)?.replicationN
    if (own !== undefined) return { policy: { n: own }, from: 'mirror' }
    if (globalN !== undefined) return { policy: { n: globalN }, from: 'config' }
    return { policy: { n: DEFAULT_N }, from: 'default' }
  }
}
