/**
 * When a file may leave this disk (DESIGN promise 1): every condition below holds. The janitor reads
 * copies through the index room (`CopyStore`, `countCopies`), never from the replicator.
 */
import type { CopyCount, CopyKind } from '../index/index.ts'
import { formatDuration } from '../util/units.ts'
import { keptBy } from './keep.ts'

/** A quota mark: bytes of the mirrors' present files, or a share of the file system the mirror is on. */
export type Quota = { bytes: number } | { percent: number }

export interface JanitorPolicy {
  /** A file younger than this is kept (`evict_after`). */
  evictAfterMs: number
  /** Which time the age is of: the upstream mtime rsync preserves, or when this mirror first synced it. */
  ageBy: 'mtime' | 'first-synced'
  /** A verified copy counts only when checked within this window (`copies_fresh`). */
  copiesFreshMs: number
  /** Index files, never evicted (keep.ts). */
  keep: readonly string[]
  /** A fetched-back file stays at least this long (`refetched_ttl`). */
  refetchedTtlMs: number
  /** Optional: a file requested through the gateway within this window is kept. */
  notRequestedWithinMs: number | undefined
  /** Quota mode: nothing is evicted until usage is above `highWater`; then oldest first down to `lowWater`. */
  highWater: Quota | undefined
  lowWater: Quota | undefined
}

/** What one mirror asks of copies: `n` verified off this disk, optionally a minimum per kind. */
export interface CopyPolicy {
  n: number
  minByKind?: Partial<Record<CopyKind, number>>
}

/** What the policy looks at of one file. */
export interface FileFacts {
  path: string
  mtimeMs: number
  firstSeenMs: number
  /** Epoch ms of its fetch-back, when it is a refetched file. */
  refetchedAt: number | undefined
  /** Epoch ms of its last request through the gateway, when known. */
  lastRequested: number | undefined
}

const UNITS: [string, number][] = [
  ['y', 365 * 86_400_000],
  ['d', 86_400_000],
  ['h', 3_600_000],
  ['m', 60_000],
  ['s', 1000],
]

/** An age in its largest whole unit ("3y", "5d", "2h"): enough to read why a file is kept. */
function rough(ms: number): string {
  for (const [u, size] of UNITS) if (ms >= size) return `${Math.floor(ms / size)}${u}`
  return '0s'
}

/** Why a file is kept, by the checks that need no copy count (undefined: those pass). */
export function cheapReasons(policy: JanitorPolicy, f: FileFacts, now: number): string[] {
  const out: string[] = []
  const pattern = keptBy(policy.keep, f.path)
  if (pattern !== undefined) out.push(`index file (keep "${pattern}")`)
  const t = policy.ageBy === 'mtime' ? f.mtimeMs : f.firstSeenMs
  const age = now - t
  if (age < policy.evictAfterMs)
    out.push(
      `younger than ${formatDuration(policy.evictAfterMs)} (${policy.ageBy === 'mtime' ? 'mtime' : 'first synced'} ${rough(age)} ago)`,
    )
  if (f.refetchedAt !== undefined && now - f.refetchedAt < policy.refetchedTtlMs)
    out.push(
      `fetched back ${rough(now - f.refetchedAt)} ago (refetched_ttl ${formatDuration(policy.refetchedTtlMs)})`,
    )
  const w = policy.notRequestedWithinMs
  if (w !== undefined && f.lastRequested !== undefined && now - f.lastRequested < w)
    out.push(`requested ${rough(now - f.lastRequested)} ago (not_requested_within ${formatDuration(w)})`)
  return out
}

/** Why the copies do not allow an eviction (empty: they do). */
export function copyReasons(policy: JanitorPolicy, copies: CopyPolicy, count: CopyCount): string[] {
  const out: string[] = []
  if (count.verified < copies.n) {
    const also: string[] = []
    if (count.announced > 0) also.push(`${count.announced} announced or checked too long ago`)
    if (count.local > 0) also.push(`${count.local} on this disk`)
    out.push(
      `${count.verified} of ${copies.n} verified copies off this disk checked within ${formatDuration(policy.copiesFreshMs)}${also.length > 0 ? ` (${also.join(', ')})` : ''}`,
    )
  }
  for (const [kind, min] of Object.entries(copies.minByKind ?? {}) as [CopyKind, number][]) {
    const have = count.byKind[kind] ?? 0
    if (have < min) out.push(`${have} of ${min} verified ${kind} copies`)
  }
  return out
}
