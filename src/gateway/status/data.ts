/**
 * What the status page shows, as plain JSON (`/_status.json` is this object): per mirror its sync job
 * (the sync room's status, passed in by the daemon's wiring: the gateway does not import the sync
 * room), its index summary, its replication health (the replicator's audit summary, likewise passed
 * in), and the requests the server saw last.
 */
import type { MirrorEntry, ScanPage } from '../../index/index.ts'
import type { FetchBackFigures } from '../fetch-back/metrics.ts'

/** A sync job's status, as the sync room's JobStatus carries it (a structural subset). */
export interface JobView {
  name: string
  status: string
  lastStarted: number | null
  lastEnded: number | null
  lastUpdate: number | null
  nextSchedule: number | null
  upstream: string
  size: string
  errorMsg: string
}

/** A mirror's replication health, as the replicator's audit summary (AuditMirror) carries it. */
export interface ReplicationView {
  /** Verified copies off this disk each file should have. */
  n: number
  files: number
  /** Files with at least n verified copies, and the others. */
  ok: number
  under: number
  bytesUnder: number
  /** Files by verified copy count ("0", "1", ...). */
  byVerified: Record<string, number>
  oldestCheck?: string
  /** The replicator's state for the mirror's tree, when it tracks one. */
  queue?: { state: string; reason?: string; lastCheck?: string; nextCheck?: string }
}

/** One request the server answered, as the status page lists it. */
export interface RecentRequest {
  /** Epoch milliseconds. */
  time: number
  method: string
  path: string
  status: number
  bytes: number
  durationMs: number
  remote?: string
}

export interface MirrorStatus {
  name: string
  job: JobView | null
  index: {
    rootCid: string | null
    files: number
    bytes: number
    dirs: number
    lastScan: string | null
    /** Each sync's root, newest first, as JSON (`/_roots/<mirror>`): any past tree is served at `/ipfs/<root>/`. */
    roots: string
    /** The last syncs' roots, newest first (at most PAST_ROOTS), when the index gives its scans. */
    pastRoots: PastRoot[]
  } | null
  replication: ReplicationView | null
}

/** One sync's root, as the status page lists the last few. */
export interface PastRoot {
  scan: number
  ended: string
  rootCid: string
}

/** Past roots listed per mirror on the status page (all of them at `/_roots/<mirror>`). */
export const PAST_ROOTS = 5

export interface StatusData {
  /** When this was gathered, ISO 8601. */
  generated: string
  mirrors: MirrorStatus[]
  recent: RecentRequest[]
  /** Fetch-backs of evicted files: running and waiting, and by source (null without a fetch-back). */
  fetchBack: FetchBackFigures | null
  /** The cache janitor's evictions since the daemon started (null when no janitor runs here). */
  janitor: JanitorFigures | null
}

/** The daemon's cache janitor: its passes, evictions and bytes freed, and what its last pass did. */
export interface JanitorFigures {
  runs: number
  failures: number
  evictions: number
  bytesFreed: number
  lastRun: {
    /** When the pass judged, ISO 8601. */
    at: string
    dryRun: boolean
    eligible: number
    evicted: number
    bytesFreed: number
  } | null
}

export interface StatusSources {
  /** The sync jobs' statuses. */
  jobs?: () => Promise<JobView[]> | JobView[]
  /** The index's mirrors (the IndexReader's `mirrors()`). */
  index?: {
    mirrors(): Promise<MirrorEntry[]>
    /** A mirror's committed scans, newest first (the IndexReader's `scans()`), for its past roots. */
    scans?(mirror: string, opts?: { limit?: number }): Promise<ScanPage>
  }
  /**
   * A mirror's replication health, when a replicator runs (undefined when it has none). `scan` is the
   * mirror's last committed scan as the index reported it (null: none yet), the key its answer is kept by.
   */
  replication?: (mirror: string, scan: number | null) => Promise<ReplicationView | undefined>
  /** The requests the server answered last, newest first. */
  recent?: () => RecentRequest[]
  /** The fetch-back's figures (NetworkFetchBack.figures), when the gateway has one. */
  fetchBack?: () => FetchBackFigures
  /** The janitor's figures, when the daemon runs one (undefined until it is started). */
  janitor?: () => JanitorFigures | undefined
}

/** Gathers the page's data; a source that fails leaves its part empty rather than failing the page. */
export async function collectStatus(src: StatusSources, recentLimit: number): Promise<StatusData> {
  const [jobs, entries] = await Promise.all([
    Promise.resolve(src.jobs?.() ?? []).catch(() => [] as JobView[]),
    (src.index?.mirrors() ?? Promise.resolve([])).catch(() => [] as MirrorEntry[]),
  ])
  const names = [...new Set([...jobs.map((j) => j.name), ...entries.map((e) => e.mirror)])].sort()
  const mirrors = await Promise.all(
    names.map(async (name): Promise<MirrorStatus> => {
      const entry = entries.find((e) => e.mirror === name)
      const scans =
        entry && src.index?.scans
          ? await src.index.scans(name, { limit: PAST_ROOTS }).catch(() => undefined)
          : undefined
      const replication = src.replication
        ? ((await src.replication(name, entry?.lastScan?.id ?? null).catch(() => undefined)) ?? null)
        : null
      return {
        name,
        job: jobs.find((j) => j.name === name) ?? null,
        index: entry
          ? {
              rootCid: entry.rootCid,
              files: entry.files,
              bytes: entry.bytes,
              dirs: entry.dirs,
              lastScan: entry.lastScan?.ended ?? null,
              roots: `/_roots/${encodeURIComponent(name)}`,
              pastRoots: (scans?.scans ?? []).map((x) => ({
                scan: x.id,
                ended: x.ended,
                rootCid: x.rootCid,
              })),
            }
          : null,
        replication,
      }
    }),
  )
  return {
    generated: new Date().toISOString(),
    mirrors,
    recent: (src.recent?.() ?? []).slice(0, recentLimit),
    fetchBack: src.fetchBack?.() ?? null,
    janitor: src.janitor?.() ?? null,
  }
}
