/**
 * The cache janitor: one pass over the mirrors' indexes judges every present file against the policy
 * (policy.ts) and evicts those that may go: the index records the eviction before the file is unlinked
 * (`MirrorIndex.local.evict`), the local IPFS node's references follow (`followIndex`), and the record
 * keeps size, mtime and CID, so listings and the mirror's root CID stay as they were.
 *
 * Without a quota every eligible file is evicted; in quota mode nothing is until usage is above the
 * high mark, then the oldest eligible files go first until it is at or below the low mark.
 */
import { lstatSync, statfsSync, unlinkSync } from 'node:fs'
import { join } from 'node:path'
import {
  type CopyRecord,
  type CopyStore,
  countCopies,
  type EvictItem,
  type LocalEntry,
  type MirrorIndex,
  type PathRecord,
} from '../index/index.ts'
import { followIndex, type IpfsNode, type PathsOfCid } from '../ipfs/index.ts'
import { type CopyPolicy, cheapReasons, copyReasons, type JanitorPolicy, type Quota } from './policy.ts'

/** Files judged (and evicted) at once: one synced index batch per group. */
const BATCH = 256

export interface JanitorMirror {
  index: MirrorIndex
  copies: CopyPolicy
}

export interface JanitorOptions {
  copies: CopyStore
  policy: JanitorPolicy
  mirrors: JanitorMirror[]
  /** Judge and report only: nothing is evicted. */
  dryRun?: boolean
  /** The time the pass judges at (default now). */
  now?: number
  /** When a file was last requested through the gateway (epoch ms), if known. */
  lastRequested?: (mirror: string, path: string) => number | undefined
  /** The local IPFS node, whose in-place references follow the evictions. */
  node?: IpfsNode | undefined
  /** Each file's decision, as it is made (and, for an evicted one, once it is evicted). */
  onFile?: (d: FileDecision) => void
  signal?: AbortSignal
}

export interface FileDecision {
  mirror: string
  path: string
  cid: string
  size: number
  mtime: string
  /** The policy allows the eviction. */
  eligible: boolean
  /** Why not (empty when eligible). Copies are looked at only when the other checks pass. */
  reasons: string[]
  /**
   * Verified copies off this disk within the window, when they were counted (the tree copies alone
   * when those suffice: the CID's own copies are then not read).
   */
  verified?: number
  /** Evicted by this pass (false in a dry run, or when the quota was met first). */
  evicted: boolean
  /** Why an eligible file was not evicted (quota met, changed meanwhile, unlink failed). */
  skipped?: string
}

export interface MirrorReport {
  mirror: string
  /** Present files judged. */
  files: number
  eligible: number
  bytesEligible: number
  evicted: number
  bytesFreed: number
  /** Files already evicted before this pass. */
  alreadyEvicted: number
  /** Evictions a killed pass recorded and did not finish, finished now. */
  finished: number
}

export interface JanitorReport {
  dryRun: boolean
  now: string
  mirrors: MirrorReport[]
  eligible: number
  bytesEligible: number
  evicted: number
  bytesFreed: number
  /** Quota mode: usage before the pass and the marks, in bytes (`percent` quotas are converted). */
  quota?: { usedBytes: number; highBytes: number; lowBytes: number; afterBytes: number }
  /** Files judged per second. */
  filesPerSecond: number
  /** The local node's reference updates, when a node was given. */
  follow?: { referenced: number; dropped: number; failed: number }
}

interface Candidate {
  m: JanitorMirror
  report: MirrorReport
  decision: FileDecision
  item: EvictItem
  ageMs: number
  /** The scan that wrote the record (which tree copies cover it). */
  scan: number
}

/** One pass of the janitor (see the file comment). */
export async function runJanitor(opts: JanitorOptions): Promise<JanitorReport> {
  const started = performance.now()
  const now = opts.now ?? Date.now()
  const dryRun = opts.dryRun ?? false
  const policy = opts.policy
  const quotaMode = policy.highWater !== undefined
  const report: JanitorReport = {
    dryRun,
    now: new Date(now).toISOString(),
    mirrors: [],
    eligible: 0,
    bytesEligible: 0,
    evicted: 0,
    bytesFreed: 0,
    filesPerSecond: 0,
  }
  const candidates: Candidate[] = []
  const changes: PathsOfCid[] = []
  let judged = 0
  let presentBytes = 0

  for (const m of opts.mirrors) {
    const mirror = m.index.mirror
    const r: MirrorReport = {
      mirror,
      files: 0,
      eligible: 0,
      bytesEligible: 0,
      evicted: 0,
      bytesFreed: 0,
      alreadyEvicted: 0,
      finished: 0,
    }
    report.mirrors.push(r)
    if (!dryRun) r.finished = await finishEvictions(m.index)
    const local = await m.index.local.entries()
    const trees = await opts.copies.trees(mirror)
    let page: PathRecord[] = []
    const judgePage = async (): Promise<void> => {
      const ready = await judgeRecords(opts, m, r, local, trees, page, now)
      page = []
      const group: Candidate[] = []
      for (const c of ready) {
        if (!c.decision.eligible) {
          opts.onFile?.(c.decision)
          continue
        }
        r.eligible++
        r.bytesEligible += c.item.size
        if (quotaMode) candidates.push(c)
        else if (dryRun) opts.onFile?.(c.decision)
        else group.push(c)
      }
      await evictNow(opts, group, changes)
    }
    for await (const rec of m.index.records()) {
      opts.signal?.throwIfAborted()
      if (rec.kind !== 'file') continue
      if (rec.state === 'evicted') {
        r.alreadyEvicted++
        continue
      }
      r.files++
      judged++
      presentBytes += rec.size
      page.push(rec)
      if (page.length === BATCH) await judgePage()
    }
    if (page.length > 0) await judgePage()
  }

  if (quotaMode) {
    const used = await usage(policy.highWater!, opts.mirrors, presentBytes)
    const high = toBytes(policy.highWater!, used.totalBytes)
    const low = toBytes(policy.lowWater ?? policy.highWater!, used.totalBytes)
    let after = used.usedBytes
    // Oldest first; evicted in groups, so each group is one synced batch.
    candidates.sort((a, b) => b.ageMs - a.ageMs)
    const take: Candidate[] = []
    for (const c of candidates) {
      if (used.usedBytes > high && after > low) {
        take.push(c)
        after -= c.item.size
      } else {
        c.decision.skipped = used.usedBytes > high ? 'low water reached' : 'usage below high water'
        opts.onFile?.(c.decision)
      }
    }
    if (dryRun) for (const c of take) opts.onFile?.(c.decision)
    else for (let i = 0; i < take.length; i += BATCH) await evictNow(opts, take.slice(i, i + BATCH), changes)
    report.quota = { usedBytes: used.usedBytes, highBytes: high, lowBytes: low, afterBytes: after }
  }

  for (const r of report.mirrors) {
    report.eligible += r.eligible
    report.bytesEligible += r.bytesEligible
    report.evicted += r.evicted
    report.bytesFreed += r.bytesFreed
  }
  if (opts.node && changes.length > 0) {
    const f = await followIndex(opts.node, changes, { signal: opts.signal })
    report.follow = { referenced: f.referenced, dropped: f.dropped, failed: f.failed.length }
  }
  const secs = (performance.now() - started) / 1000
  report.filesPerSecond = secs > 0 ? Math.round(judged / secs) : judged
  return report
}

/** Judges one page of present file records of a mirror; copies are read (at once) only for the files that pass the rest. */
async function judgeRecords(
  opts: JanitorOptions,
  m: JanitorMirror,
  report: MirrorReport,
  local: Map<string, LocalEntry>,
  trees: CopyRecord[],
  page: PathRecord[],
  now: number,
): Promise<Candidate[]> {
  const mirror = m.index.mirror
  const policy = opts.policy
  const out: Candidate[] = []
  const toCount: Candidate[] = []
  for (const rec of page) {
    const e = local.get(rec.path)
    const firstSeenMs = Date.parse(rec.firstSeen)
    const reasons = cheapReasons(
      policy,
      {
        path: rec.path,
        mtimeMs: rec.mtimeMs,
        firstSeenMs,
        refetchedAt: e?.cid === rec.cid ? e.refetchedAt : undefined,
        lastRequested: opts.lastRequested?.(mirror, rec.path),
      },
      now,
    )
    const c: Candidate = {
      m,
      report,
      decision: {
        mirror,
        path: rec.path,
        cid: rec.cid,
        size: rec.size,
        mtime: new Date(rec.mtimeMs).toISOString(),
        eligible: reasons.length === 0,
        reasons,
        evicted: false,
      },
      item: { path: rec.path, cid: rec.cid, size: rec.size, mtimeMs: rec.mtimeMs },
      ageMs: now - (policy.ageBy === 'mtime' ? rec.mtimeMs : firstSeenMs),
      scan: rec.scan,
    }
    out.push(c)
    if (reasons.length === 0) toCount.push(c)
  }
  // The mirror's tree copies (one recursive pin of a root covers every record written at or before
  // its scan) often suffice alone: then the CID's own copies need no read, since more copies never
  // make a file ineligible. Counted once per record scan.
  const byScan = new Map<number, string[]>()
  const treeReasons = (scan: number): string[] => {
    let why = byScan.get(scan)
    if (!why) {
      const covering = trees.filter((t) => t.scan !== undefined && t.scan >= scan)
      const count = countCopies(covering, { now, freshMs: policy.copiesFreshMs })
      why = copyReasons(policy, m.copies, count)
      byScan.set(scan, why)
      treeCounts.set(scan, count.verified)
    }
    return why
  }
  const treeCounts = new Map<number, number>()
  const toRead: Candidate[] = []
  for (const c of toCount) {
    if (treeReasons(c.scan).length === 0) c.decision.verified = treeCounts.get(c.scan)!
    else toRead.push(c)
  }
  const copies = await Promise.all(toRead.map((c) => opts.copies.ofPath(mirror, c.item.cid, c.scan, trees)))
  toRead.forEach((c, i) => {
    const count = countCopies(copies[i]!, { now, freshMs: policy.copiesFreshMs })
    const why = copyReasons(policy, m.copies, count)
    c.decision.verified = count.verified
    c.decision.reasons.push(...why)
    c.decision.eligible = why.length === 0
  })
  return out
}

/** Evicts a group of eligible files: the index first (one synced batch), then the unlinks. */
async function evictNow(opts: JanitorOptions, group: Candidate[], changes: PathsOfCid[]): Promise<void> {
  if (group.length === 0) return
  const index = group[0]!.m.index
  const byPath = new Map(group.map((c) => [c.item.path, c]))
  const outcomes = await index.local.evict(
    group.map((c) => c.item),
    async (rec) => {
      try {
        unlinkSync(join(index.root, rec.path))
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err
      }
    },
  )
  for (const o of outcomes) {
    const c = byPath.get(o.path)!
    if (o.evicted) {
      c.decision.evicted = true
      c.report.evicted++
      c.report.bytesFreed += c.item.size
    } else c.decision.skipped = o.error ? `${o.reason}: ${o.error.message}` : o.reason
    opts.onFile?.(c.decision)
  }
  // The local node's references follow: each evicted CID from the present paths still holding it.
  const cids = new Set(outcomes.filter((o) => o.evicted).map((o) => byPath.get(o.path)!.item.cid))
  for (const cid of cids) {
    const paths: string[] = []
    for (const p of await index.pathsOf(cid)) {
      const r = await index.get(p)
      if (r?.state === 'present') paths.push(join(index.root, p))
    }
    changes.push({ cid, paths })
  }
}

/**
 * Finishes evictions a killed pass recorded and did not carry out: an evicted record whose file is
 * still there with the very stat the record keeps (same inode: not a file fetched back since) is
 * unlinked now, so index and tree agree again.
 */
async function finishEvictions(index: MirrorIndex): Promise<number> {
  let n = 0
  for await (const e of index.local.evicted()) {
    const abs = join(index.root, e.path)
    const st = lstatSync(abs, { throwIfNoEntry: false })
    if (!st?.isFile()) continue
    const rec = await index.get(e.path)
    if (rec?.state !== 'evicted' || st.ino !== rec.ino || st.size !== rec.size || st.mtimeMs !== rec.mtimeMs)
      continue
    try {
      unlinkSync(abs)
      n++
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err
    }
  }
  return n
}

/** Usage a quota is measured against: present bytes, or the file system's use for a percent quota. */
async function usage(
  q: Quota,
  mirrors: JanitorMirror[],
  presentBytes: number,
): Promise<{ usedBytes: number; totalBytes: number }> {
  if ('bytes' in q) return { usedBytes: presentBytes, totalBytes: presentBytes }
  // The file system of the first mirror's tree (mirrors of one janitor share a disk).
  const root = mirrors[0]?.index.root
  if (root === undefined) return { usedBytes: 0, totalBytes: 0 }
  const s = statfsSync(root)
  const total = s.blocks * s.bsize
  return { usedBytes: total - s.bfree * s.bsize, totalBytes: total }
}

function toBytes(q: Quota, totalBytes: number): number {
  return 'bytes' in q ? q.bytes : Math.floor((q.percent / 100) * totalBytes)
}
