import { type Backoff, backoffDelay } from '../util/backoff.ts'
import { clearLongTimeout, type LongTimeout, setLongTimeout } from '../util/long-timer.ts'

/**
 * When each job runs next (tunasync's schedule.go, without its faults): one timer armed for the
 * earliest entry, and when it fires every job that is due starts — tunasync pops one job per 5 s
 * tick, and its time-keyed skip list drops one of two jobs due at the same instant.
 */
export class Scheduler {
  readonly #entries = new Map<string, number>()
  readonly #onDue: (names: string[]) => void
  readonly #now: () => number
  #timer: LongTimeout | undefined
  #stopped = false

  constructor(onDue: (names: string[]) => void, now: () => number = Date.now) {
    this.#onDue = onDue
    this.#now = now
  }

  /** Schedules (or reschedules) `name` at `at` (epoch ms). */
  add(name: string, at: number): void {
    this.#entries.set(name, at)
    this.#arm()
  }

  remove(name: string): boolean {
    const had = this.#entries.delete(name)
    if (had) this.#arm()
    return had
  }

  get(name: string): number | undefined {
    return this.#entries.get(name)
  }

  /** Every entry, earliest first. */
  entries(): { name: string; at: number }[] {
    return [...this.#entries].map(([name, at]) => ({ name, at })).sort((a, b) => a.at - b.at)
  }

  stop(): void {
    this.#stopped = true
    clearLongTimeout(this.#timer)
    this.#timer = undefined
  }

  #arm(): void {
    clearLongTimeout(this.#timer)
    this.#timer = undefined
    if (this.#stopped || this.#entries.size === 0) return
    let earliest = Number.POSITIVE_INFINITY
    for (const at of this.#entries.values()) earliest = Math.min(earliest, at)
    this.#timer = setLongTimeout(() => this.#fire(), earliest - this.#now())
  }

  #fire(): void {
    this.#timer = undefined
    const now = this.#now()
    const due = this.entries().filter((e) => e.at <= now)
    for (const e of due) this.#entries.delete(e.name)
    this.#arm()
    if (due.length > 0) this.#onDue(due.map((e) => e.name))
  }
}

/** The first run of a job: last success + interval, or now for a job that never succeeded. */
export function firstRunAt(lastSuccess: number | null, intervalMs: number, now: number): number {
  if (lastSuccess === null) return now
  return Math.max(now, lastSuccess + intervalMs)
}

/**
 * The next run after a run that failed `streak` times in a row (tunasync: one interval later). The
 * backoff goes on from where the run's own retries left off, and never waits past the interval.
 */
export function nextRunAfterFailure(
  backoff: Backoff,
  retry: number,
  streak: number,
  intervalMs: number,
  now: number,
): number {
  const n = Math.max(0, retry - 1) + Math.max(0, streak - 1)
  return now + Math.min(intervalMs, backoffDelay(backoff, n))
}
