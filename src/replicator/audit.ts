/**
 * The copy audit: per file its CID, its copies by holder and kind, verified or announced, the last
 * check, and the verdict against n; per mirror a summary. Read-only over the index (records and
 * copies) and the replicator's queue, so the daemon's read API and the offline CLI give the same
 * report. docs/audit.md documents the JSON (`schema: "cidmirror.audit/1"`).
 */
import type { Database } from '../db.ts'
import {
  type CopyRecord,
  CopyStore,
  type LocalStateName,
  type MirrorIndex,
  type PastVersion,
  type PathRecord,
} from '../index/index.ts'
import { judge, type ReplicationPolicy } from './policy.ts'
import { type ItemState, ReplicationQueue } from './queue.ts'

export const AUDIT_SCHEMA = 'cidmirror.audit/1'

/** Records whose copies are read at once. */
const AUDIT_BATCH = 256

export interface AuditCopy {
  holder: string
  kind: CopyRecord['kind']
  how: string
  status: CopyRecord['status']
  scope: CopyRecord['scope']
  local: boolean
  checkedAt: string
  target?: string
  retrieval?: string[]
  detail?: CopyRecord['detail']
  error?: string
}

export interface AuditFile {
  mirror: string
  path: string
  cid: string
  size: number
  /**
   * Local state of the file: on disk, evicted (fetched back on demand), refetched (on disk again,
   * fetched back after an eviction), deleted upstream; with `archive`, `archived`: a past version of a
   * path that holds other content now (`deleted` and `archived` files have no local disk).
   */
  state: LocalStateName | 'archived'
  /** Deleted and archived files, when the index knows (its past versions): the scans whose trees held it, and the scan that removed it. */
  firstScan?: number
  lastScan?: number
  leftScan?: number
  /** When the janitor evicted it (ISO), when the index recorded one. */
  evictedAt?: string
  /** When it was fetched back (ISO), for a refetched file. */
  refetchedAt?: string
  verified: number
  announced: number
  local: number
  /** `ok`: meets the policy; `under`: below it. */
  verdict: 'ok' | 'under'
  shortfall?: string
  /** Oldest check among the verified copies (ISO), if any. */
  oldestCheck?: string
  copies: AuditCopy[]
  /**
   * A file below the policy that a replicator keeps as an item of its own (an entity-scope target such
   * as Filecoin): its queue state and why (a target failing, the Filecoin spending cap).
   */
  queue?: { state: ItemState; reason?: string }
}

export interface AuditMirror {
  mirror: string
  rootCid?: string
  scan?: number
  lastScan?: string
  n: number
  files: number
  bytes: number
  ok: number
  under: number
  bytesUnder: number
  /** Files by local state. */
  states: Record<PathRecord['state'], number>
  /** Files by verified copy count ("0", "1", ...). */
  byVerified: Record<string, number>
  oldestCheck?: string
  /** The replicator's view of the mirror's tree item, when it tracks one. */
  queue?: { state: ItemState; reason?: string; nextCheck: string; lastCheck?: string }
  /**
   * With `archive`: the files that left the tree (deleted upstream, past versions of changed files),
   * judged against the same n. Counted here only: `files`, `ok`, `under` and `byVerified` stay the
   * current tree's.
   */
  archive?: ArchiveSummary
  /** Provide budget: CIDs the mirror announces (file and directory roots) against what one node can reprovide per cycle. */
  provide?: ProvideBudget
}

export interface ArchiveSummary {
  /** Distinct files (path and CID) kept by the archive: `deleted` and `archived` lines. */
  files: number
  bytes: number
  ok: number
  under: number
  bytesUnder: number
}

export interface ProvideBudget {
  roots: number
  capacity: number
  exceeded: boolean
}

export interface AuditFilter {
  /** A path inside the mirror (a file, or a directory: every file under it). */
  path?: string
  cid?: string
  /** Only files with fewer than this many verified copies. */
  under?: number
  /** Also audit what left the tree: deleted files and past versions (the index's versions). */
  archive?: boolean
}

function copyOut(c: CopyRecord): AuditCopy {
  const out: AuditCopy = {
    holder: c.holder,
    kind: c.kind,
    how: c.how,
    status: c.status,
    scope: c.scope,
    local: c.local,
    checkedAt: new Date(c.checkedAt).toISOString(),
  }
  if (c.target) out.target = c.target
  if (c.retrieval) out.retrieval = c.retrieval
  if (c.detail) out.detail = c.detail
  if (c.error) out.error = c.error
  return out
}

/**
 * Audits one mirror. `onFile` receives each file that passes the filter (for streaming output and a
 * progress bar); the summary counts every file of the mirror whatever the filter.
 */
export async function auditMirror(
  db: Database,
  index: MirrorIndex,
  policy: ReplicationPolicy,
  opts: {
    filter?: AuditFilter
    onFile?: (f: AuditFile) => void
    onProgress?: (done: number, total?: number) => void
    provideCapacity?: number
    now?: number
  } = {},
): Promise<AuditMirror> {
  const now = opts.now ?? Date.now()
  const copies = new CopyStore(db)
  const trees = await copies.trees(index.mirror)
  const local = await index.local.entries()
  const last = await index.lastScan()
  const out: AuditMirror = {
    mirror: index.mirror,
    n: policy.n,
    files: 0,
    bytes: 0,
    ok: 0,
    under: 0,
    bytesUnder: 0,
    states: { present: 0, evicted: 0, deleted: 0 },
    byVerified: {},
  }
  if (last) {
    out.rootCid = last.rootCid
    out.scan = last.id
    out.lastScan = last.ended
  }
  const total = last ? last.files + last.evicted : undefined
  const f = opts.filter ?? {}
  let roots = 0
  let oldest: number | undefined
  // Copies are looked up for a batch of records at once: one range read per CID, many in flight,
  // instead of one at a time (the audit ran at 1/56 of a bare scan's speed so).
  const batch: PathRecord[] = []
  /** Deleted records, for the archive pass (`archive`). */
  const deleted: PathRecord[] = []
  const queue = new ReplicationQueue(db)
  const judgeBatch = async (): Promise<void> => {
    const lists = await Promise.all(batch.map((r) => copies.ofPath(index.mirror, r.cid, r.scan, trees)))
    for (const [i, r] of batch.entries()) {
      const list = lists[i] as CopyRecord[]
      const v = judge(list, policy, now)
      const key = String(v.count.verified)
      out.byVerified[key] = (out.byVerified[key] ?? 0) + 1
      if (v.satisfied) out.ok++
      else {
        out.under++
        out.bytesUnder += r.size
      }
      if (v.count.oldestCheck !== undefined && (oldest === undefined || v.count.oldestCheck < oldest))
        oldest = v.count.oldestCheck
      if (!matches(r, f, v.count.verified)) continue
      const file: AuditFile = {
        mirror: index.mirror,
        path: r.path,
        cid: r.cid,
        size: r.size,
        state: r.state,
        verified: v.count.verified,
        announced: v.count.announced,
        local: v.count.local,
        verdict: v.satisfied ? 'ok' : 'under',
        copies: list.map(copyOut),
      }
      const e = local.get(r.path)
      if (e?.cid === r.cid) {
        if (e.evictedAt !== undefined) file.evictedAt = new Date(e.evictedAt).toISOString()
        if (r.state === 'present' && e.refetchedAt !== undefined) {
          file.state = 'refetched'
          file.refetchedAt = new Date(e.refetchedAt).toISOString()
        }
      }
      if (v.shortfall) file.shortfall = v.shortfall
      if (v.count.oldestCheck !== undefined) file.oldestCheck = new Date(v.count.oldestCheck).toISOString()
      if (!v.satisfied) {
        const item = await queue.get(`cid:${r.cid}`)
        if (item) file.queue = { state: item.state, ...(item.reason ? { reason: item.reason } : {}) }
      }
      opts.onFile?.(file)
    }
    batch.length = 0
  }
  for await (const r of index.records({ deleted: true })) {
    if (r.state !== 'deleted') roots++
    if (r.kind === 'dir') continue
    out.files++
    out.states[r.state]++
    if (r.state === 'deleted') {
      if (f.archive) deleted.push(r)
      continue
    }
    out.bytes += r.size
    batch.push(r)
    if (batch.length >= AUDIT_BATCH) await judgeBatch()
    if (opts.onProgress && out.files % 1000 === 0) opts.onProgress(out.files, total)
  }
  await judgeBatch()
  if (f.archive)
    out.archive = await auditArchive(index, copies, queue, trees, policy, now, f, opts.onFile, deleted)
  if (oldest !== undefined) out.oldestCheck = new Date(oldest).toISOString()
  const entry = await queue.get(`tree:${index.mirror}`)
  if (entry) {
    out.queue = { state: entry.state, nextCheck: new Date(entry.nextAt).toISOString() }
    if (entry.reason) out.queue.reason = entry.reason
    if (entry.checkedAt) out.queue.lastCheck = new Date(entry.checkedAt).toISOString()
  }
  if (opts.provideCapacity !== undefined)
    out.provide = { roots, capacity: opts.provideCapacity, exceeded: roots > opts.provideCapacity }
  opts.onProgress?.(out.files, total)
  return out
}

/**
 * The archive pass: each past version (a `deleted` or `archived` line) with its entity copies and
 * the tree copies of a scan whose tree held it, judged as a file is. A deleted record the index has no
 * version of (deleted before versions were kept) is judged by its entity copies alone.
 */
async function auditArchive(
  index: MirrorIndex,
  copies: CopyStore,
  queue: ReplicationQueue,
  trees: CopyRecord[],
  policy: ReplicationPolicy,
  now: number,
  f: AuditFilter,
  onFile: ((file: AuditFile) => void) | undefined,
  deleted: PathRecord[],
): Promise<ArchiveSummary> {
  const sum: ArchiveSummary = { files: 0, bytes: 0, ok: 0, under: 0, bytesUnder: 0 }
  const known = new Set<string>()
  const one = async (
    v: Pick<PastVersion, 'path' | 'cid' | 'size'> &
      Partial<Pick<PastVersion, 'firstScan' | 'lastScan' | 'leftScan'>>,
    state: 'deleted' | 'archived',
  ): Promise<void> => {
    const list = await copies.of(v.cid)
    if (v.firstScan !== undefined && v.lastScan !== undefined)
      for (const t of trees)
        if (t.scan !== undefined && t.scan >= v.firstScan && t.scan <= v.lastScan) list.push(t)
    const verdict = judge(list, policy, now)
    sum.files++
    sum.bytes += v.size
    if (verdict.satisfied) sum.ok++
    else {
      sum.under++
      sum.bytesUnder += v.size
    }
    if (!matches(v, f, verdict.count.verified)) return
    const file: AuditFile = {
      mirror: index.mirror,
      path: v.path,
      cid: v.cid,
      size: v.size,
      state,
      verified: verdict.count.verified,
      announced: verdict.count.announced,
      local: verdict.count.local,
      verdict: verdict.satisfied ? 'ok' : 'under',
      copies: list.map(copyOut),
    }
    if (v.firstScan !== undefined) file.firstScan = v.firstScan
    if (v.lastScan !== undefined) file.lastScan = v.lastScan
    if (v.leftScan !== undefined) file.leftScan = v.leftScan
    if (verdict.shortfall) file.shortfall = verdict.shortfall
    if (verdict.count.oldestCheck !== undefined)
      file.oldestCheck = new Date(verdict.count.oldestCheck).toISOString()
    // An archived item of the replicator's queue (an entity-scope target keeps it): why it is not at n.
    if (!verdict.satisfied) {
      const item = await queue.get(`cid:${v.cid}`)
      if (item) file.queue = { state: item.state, ...(item.reason ? { reason: item.reason } : {}) }
    }
    onFile?.(file)
  }
  for await (const v of index.versions()) {
    if (v.kind !== 'file') continue
    known.add(`${v.leftScan}\x00${v.path}`)
    await one(v, v.reason === 'deleted' ? 'deleted' : 'archived')
  }
  for (const r of deleted)
    if (!known.has(`${r.scan}\x00${r.path}`)) await one({ path: r.path, cid: r.cid, size: r.size }, 'deleted')
  return sum
}

function matches(r: Pick<PathRecord, 'path' | 'cid'>, f: AuditFilter, verified: number): boolean {
  if (f.cid !== undefined && r.cid !== f.cid) return false
  if (f.path !== undefined && f.path !== '') {
    const p = f.path.replace(/^\/+|\/+$/g, '')
    if (r.path !== p && !r.path.startsWith(`${p}/`)) return false
  }
  if (f.under !== undefined && verified >= f.under) return false
  return true
}
