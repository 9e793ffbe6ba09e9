import { type CopyCount, type CopyKind, type CopyRecord, countCopies } from '../index/index.ts'

/** How many copies are enough (`[replication]` and per-mirror overrides). */
export interface ReplicationPolicy {
  /** Minimum verified copies off this disk. */
  n: number
  /** Optional minimum per kind, e.g. `{ filecoin: 1 }`: at least one proven Filecoin copy. */
  minByKind?: Partial<Record<CopyKind, number>>
  /** A verified copy counts only when checked within this window (ms). */
  freshMs?: number
}

export interface Verdict {
  count: CopyCount
  satisfied: boolean
  /** Why not, in a few words ("1 of 2 verified copies", "no filecoin copy"), when not satisfied. */
  shortfall?: string
}

export function judge(copies: CopyRecord[], policy: ReplicationPolicy, now = Date.now()): Verdict {
  const count = countCopies(copies, { now, freshMs: policy.freshMs })
  const missing: string[] = []
  if (count.verified < policy.n) missing.push(`${count.verified} of ${policy.n} verified copies`)
  for (const [kind, min] of Object.entries(policy.minByKind ?? {}) as [CopyKind, number][]) {
    const have = count.byKind[kind] ?? 0
    if (have < min) missing.push(`${have} of ${min} ${kind} copies`)
  }
  return missing.length === 0
    ? { count, satisfied: true }
    : { count, satisfied: false, shortfall: missing.join(', ') }
}
