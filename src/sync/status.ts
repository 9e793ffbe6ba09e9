/**
 * Job status: the values, the record the worker keeps per job, and the two JSON shapes it travels in
 * (tunasync's `MirrorStatus` between worker, manager and CLI; tunasync's `WebMirrorStatus` on the
 * public `GET /jobs`).
 */

export const SYNC_STATUSES = [
  'none',
  'failed',
  'success',
  'syncing',
  'pre-syncing',
  'paused',
  'disabled',
] as const
export type SyncStatus = (typeof SYNC_STATUSES)[number]

export function isSyncStatus(value: unknown): value is SyncStatus {
  return typeof value === 'string' && (SYNC_STATUSES as readonly string[]).includes(value)
}

/** One job's status. Times are epoch milliseconds, `null` when never set (Go's zero time). */
export interface JobStatus {
  name: string
  worker: string
  isMaster: boolean
  status: SyncStatus
  lastUpdate: number | null
  lastStarted: number | null
  lastEnded: number | null
  nextSchedule: number | null
  upstream: string
  size: string
  errorMsg: string
  /** What post hooks added to the last successful run (the daemon's index hook: `{ index: summary }`). */
  details?: Record<string, unknown>
}

export function emptyStatus(name: string, worker: string, upstream: string, isMaster = true): JobStatus {
  return {
    name,
    worker,
    isMaster,
    status: 'none',
    lastUpdate: null,
    lastStarted: null,
    lastEnded: null,
    nextSchedule: null,
    upstream,
    size: 'unknown',
    errorMsg: '',
  }
}

/** A size that says something: neither empty nor tunasync's `"unknown"`. */
export function isKnownSize(size: string | undefined): size is string {
  return typeof size === 'string' && size !== '' && size !== 'unknown'
}

/** What a job reports as it runs (tunasync's `jobMessage`). */
export interface JobEvent {
  status: SyncStatus
  /** The error message of a failure, empty otherwise. */
  message: string
  /** Success or final failure: the job wants its next run scheduled. */
  schedule: boolean
  size?: string
  details?: Record<string, unknown>
}

/**
 * tunasync's manager rules (manager/server.go updateJobOfWorker), applied where the event happens:
 * `last_started` at pre-syncing, `last_update` on success only, `last_ended` at success or failure,
 * a new unknown size never overwrites a known one, and no next run while the job runs or is paused
 * or disabled.
 */
export function applyEvent(cur: JobStatus, ev: JobEvent, now: number): JobStatus {
  const next: JobStatus = { ...cur, status: ev.status, errorMsg: ev.message }
  if (ev.status === 'pre-syncing' && cur.status !== 'pre-syncing') next.lastStarted = now
  if (ev.status === 'success') next.lastUpdate = now
  if (ev.status === 'success' || ev.status === 'failed') next.lastEnded = now
  if (isKnownSize(ev.size)) next.size = ev.size
  if (ev.status === 'success' && ev.details) next.details = ev.details
  if (ev.status !== 'success' && ev.status !== 'failed' && ev.status !== 'none') next.nextSchedule = null
  if (ev.status === 'failed' && !ev.schedule) next.nextSchedule = null
  return next
}

// ---- Go's time formats ----------------------------------------------------------------------------

/** Go's zero `time.Time` as Unix seconds. */
export const GO_ZERO_UNIX = -62135596800
export const GO_ZERO_TEXT = '0001-01-01 00:00:00 +0000'
const GO_ZERO_RFC3339 = '0001-01-01T00:00:00Z'

const pad = (n: number, w = 2): string => String(n).padStart(w, '0')

/** The last instant Go's formats can write (year 9999); later times are no times. */
const MAX_TIME_MS = Date.UTC(9999, 11, 31, 23, 59, 59, 999)

/**
 * A time the JSON shapes can carry: a finite epoch-ms between Go's zero time and year 9999. Others
 * (a record from before durations were bounded, a `Date` overflow) are shown as never set rather
 * than failing the whole answer, so one bad status never takes `/jobs` or the status pushes down.
 */
export function isShowableTime(ms: number | null | undefined): ms is number {
  return typeof ms === 'number' && Number.isFinite(ms) && ms > GO_ZERO_UNIX * 1000 && ms <= MAX_TIME_MS
}

/** Go's `"2006-01-02 15:04:05 -0700"` in this process's local zone; the zero time for null (or no time). */
export function formatGoTime(ms: number | null): string {
  if (!isShowableTime(ms)) return GO_ZERO_TEXT
  const d = new Date(ms)
  const off = -d.getTimezoneOffset()
  const sign = off < 0 ? '-' : '+'
  const abs = Math.abs(off)
  return (
    `${pad(d.getFullYear(), 4)}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ` +
    `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())} ` +
    `${sign}${pad(Math.floor(abs / 60))}${pad(abs % 60)}`
  )
}

/** Unix seconds (floored, as Go's `Unix()`); Go's zero time for null. */
export function unixSeconds(ms: number | null): number {
  return isShowableTime(ms) ? Math.floor(ms / 1000) : GO_ZERO_UNIX
}

/** RFC 3339 as Go's `encoding/json` writes `time.Time` (UTC here); the zero time for null. */
export function formatRfc3339(ms: number | null): string {
  return isShowableTime(ms) ? new Date(ms).toISOString() : GO_ZERO_RFC3339
}

/** Parses an RFC 3339 time; Go's zero time (or anything before year 2) is null. Undefined if invalid or past year 9999. */
export function parseRfc3339(value: unknown): number | null | undefined {
  if (value === null || value === undefined || value === '') return null
  if (typeof value !== 'string') return undefined
  const ms = Date.parse(value)
  if (Number.isNaN(ms) || ms > MAX_TIME_MS) return undefined
  return ms <= GO_ZERO_UNIX * 1000 + 86_400_000 * 366 ? null : ms
}

// ---- JSON shapes ----------------------------------------------------------------------------------

/** tunasync's `WebMirrorStatus`: the 13 fields of `GET /jobs`, in this order. */
export interface WebMirrorStatus {
  name: string
  is_master: boolean
  status: SyncStatus
  last_update: string
  last_update_ts: number
  last_started: string
  last_started_ts: number
  last_ended: string
  last_ended_ts: number
  next_schedule: string
  next_schedule_ts: number
  upstream: string
  size: string
}

export function toWeb(s: JobStatus): WebMirrorStatus {
  return {
    name: s.name,
    is_master: s.isMaster,
    status: s.status,
    last_update: formatGoTime(s.lastUpdate),
    last_update_ts: unixSeconds(s.lastUpdate),
    last_started: formatGoTime(s.lastStarted),
    last_started_ts: unixSeconds(s.lastStarted),
    last_ended: formatGoTime(s.lastEnded),
    last_ended_ts: unixSeconds(s.lastEnded),
    next_schedule: formatGoTime(s.nextSchedule),
    next_schedule_ts: unixSeconds(s.nextSchedule),
    upstream: s.upstream,
    size: s.size,
  }
}

/** tunasync's `MirrorStatus` JSON (worker <-> manager, `GET /workers/:id/jobs`), plus `details`. */
export interface WireMirrorStatus {
  name: string
  worker: string
  is_master: boolean
  status: SyncStatus
  last_update: string
  last_started: string
  last_ended: string
  next_schedule: string
  upstream: string
  size: string
  error_msg: string
  details?: Record<string, unknown>
}

export function toWire(s: JobStatus): WireMirrorStatus {
  const out: WireMirrorStatus = {
    name: s.name,
    worker: s.worker,
    is_master: s.isMaster,
    status: s.status,
    last_update: formatRfc3339(s.lastUpdate),
    last_started: formatRfc3339(s.lastStarted),
    last_ended: formatRfc3339(s.lastEnded),
    next_schedule: formatRfc3339(s.nextSchedule),
    upstream: s.upstream,
    size: s.size,
    error_msg: s.errorMsg,
  }
  if (s.details) out.details = s.details
  return out
}
