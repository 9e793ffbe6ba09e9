/**
 * Exponential backoff with jitter, for retries of a failed sync (tunasync retries at once), the
 * worker's calls to a manager that is not up yet, and the replicator's retries of a failed target.
 */
export interface Backoff {
  /** First delay. */
  baseMs: number
  /** No delay grows past this. */
  maxMs: number
  /** Each delay is scaled by a random factor in [1 - jitter, 1 + jitter]; 0..1. */
  jitter: number
}

/** Sync retries: 30 s, 1 min, 2 min ... up to 1 h (never past the job's interval), ±20 %. */
export const DEFAULT_RETRY_BACKOFF: Backoff = { baseMs: 30_000, maxMs: 3_600_000, jitter: 0.2 }

/** The delay before retry number `n` (0 for the first retry). */
export function backoffDelay(b: Backoff, n: number, random: () => number = Math.random): number {
  const raw = Math.min(b.maxMs, b.baseMs * 2 ** Math.max(0, n))
  const factor = 1 + b.jitter * (2 * random() - 1)
  return Math.max(0, Math.round(raw * factor))
}

/** Resolves after `ms` (any length: long delays are chained timers), or rejects when the signal aborts. */
export { sleep } from './long-timer.ts'
