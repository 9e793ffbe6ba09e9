/**
 * The janitor (src/cache) against real Kubo daemons in a private swarm on 127.0.0.1 and a real
 * LevelDB: A is the mirror's own node (filestore beside the trees: local, never counted), B and C are
 * storage targets. Copies are what the real replicator recorded in the index. Promise 1: each case
 * where a copy must not count is its own mirror and its own test, and nothing is evicted there.
 */
import { randomBytes } from 'node:crypto'
import { existsSync, lstatSync, mkdirSync, mkdtempSync, rmSync, utimesSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import pino from 'pino'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { DEFAULT_KEEP, type FileDecision, type JanitorPolicy, runJanitor } from '../src/cache/index.ts'
import { JanitorService } from '../src/daemon/index.ts'
import { type Database, openDatabase } from '../src/db.ts'
import { CopyStore, type MirrorIndex, openMirrorIndex } from '../src/index/index.ts'
import { KuboNode } from '../src/ipfs/index.ts'
import {
  type CopyCounter,
  KuboTarget,
  ProviderCounter,
  publishMirror,
  Replicator,
} from '../src/replicator/index.ts'
import type { Config } from '../src/sync/index.ts'
import { disposeAll, Kubo } from './helpers/kubo.ts'

const DAY = 86_400_000
const OLD = new Date('2020-01-01T00:00:00Z')
let dir: string
let db: Database
let kubos: Kubo[]
let a: KuboNode
let b: KuboNode
let c: KuboNode
let copies: CopyStore
const log = pino({ level: 'silent' })

const policy: JanitorPolicy = {
  evictAfterMs: 2 * 365 * DAY,
  ageBy: 'mtime',
  copiesFreshMs: DAY,
  keep: DEFAULT_KEEP,
  refetchedTtlMs: 30 * DAY,
  notRequestedWithinMs: undefined,
  highWater: undefined,
  lowWater: undefined,
}

interface Mirror {
  name: string
  tree: string
  idx: MirrorIndex
  root: string
}

function write(tree: string, rel: string, data: string | Uint8Array, mtime?: Date): void {
  const p = join(tree, rel)
  mkdirSync(join(p, '..'), { recursive: true })
  writeFileSync(p, data)
  if (mtime) utimesSync(p, mtime, mtime)
}

/** A mirror of its own: an old package, a new one, and old index files; scanned and published to A. */
async function mirror(name: string, extra: (tree: string) => void = () => {}): Promise<Mirror> {
  const tree = join(dir, name)
  write(tree, 'pool/main/old.deb', randomBytes(300_000), OLD)
  write(tree, 'pool/main/new.deb', randomBytes(1000))
  write(tree, 'dists/stable/Release', `Suite: stable ${name}\n`, OLD)
  write(tree, 'dists/stable/main/binary-amd64/Packages.xz', randomBytes(500), OLD)
  extra(tree)
  const idx = openMirrorIndex(db, name, tree)
  const s = await idx.scan()
  await publishMirror(db, idx, a, { since: s.id })
  return { name, tree, idx, root: s.rootCid }
}

const source = async () => (await a.id()).addresses

function target(name: string, node: KuboNode, local = false): KuboTarget {
  return new KuboTarget({ name, node, source, local })
}

/** The real replicator stores and checks the mirror's tree on `counters` (n as given), once. */
async function replicate(m: Mirror, counters: CopyCounter[], n: number): Promise<Replicator> {
  const r = new Replicator({
    db,
    counters,
    policy: () => ({ n }),
    recheckMs: 3_600_000,
    backoff: { baseMs: 60_000, maxMs: 600_000 },
    log,
  })
  const s = (await m.idx.lastScan())!
  await r.track({ scope: 'tree', cid: m.root, mirror: m.name, scan: s.id })
  await r.checkNow()
  await r.runOnce()
  return r
}

async function janitor(
  m: Mirror,
  n: number,
  o: { now?: number; dryRun?: boolean; p?: Partial<JanitorPolicy> } = {},
) {
  const files: FileDecision[] = []
  const report = await runJanitor({
    copies,
    policy: { ...policy, ...o.p },
    mirrors: [{ index: m.idx, copies: { n } }],
    dryRun: o.dryRun ?? false,
    node: a,
    onFile: (d) => files.push(d),
    ...(o.now !== undefined ? { now: o.now } : {}),
  })
  const by = new Map(files.map((f) => [f.path, f]))
  return { report, files, by }
}

/** Nothing evicted: every file on disk, every record present. */
async function nothingEvicted(m: Mirror, report: { evicted: number }): Promise<void> {
  expect(report.evicted).toBe(0)
  for await (const r of m.idx.records()) {
    if (r.kind !== 'file') continue
    expect(r.state).toBe('present')
    expect(existsSync(join(m.tree, r.path))).toBe(true)
  }
}

/** The oldest check the index holds of the mirror's tree by `holder`'s target. */
async function checkedAt(m: Mirror, targetName: string): Promise<number> {
  const t = (await copies.trees(m.name)).find((x) => x.target === targetName)
  expect(t?.status).toBe('verified')
  return t!.checkedAt
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'cidmirror-janitor-'))
  db = await openDatabase(join(dir, 'db'))
  copies = new CopyStore(db)
  kubos = await Kubo.swarm(3, { parent: dir, filestore: true })
  ;[a, b, c] = kubos.map((k, i) => new KuboNode({ api: k.api, local: i === 0 })) as [
    KuboNode,
    KuboNode,
    KuboNode,
  ]
}, 180_000)

afterAll(async () => {
  for (const n of [a, b, c]) await n?.close()
  await disposeAll(kubos ?? [])
  await db?.close()
  rmSync(dir, { recursive: true, force: true })
})

describe('janitor: eviction with n verified copies off this disk', () => {
  let m: Mirror

  it('evicts an old file with a fresh verified copy: record first, then the unlink; index files and young files stay', async () => {
    m = await mirror('evict')
    await (await replicate(m, [target('kubo-b', b)], 1)).stop()
    const old = (await m.idx.get('pool/main/old.deb'))!
    expect(await a.has(old.cid)).toBe(true)

    const dry = await janitor(m, 1, { dryRun: true })
    expect(dry.report).toMatchObject({ dryRun: true, eligible: 1, bytesEligible: 300_000, evicted: 0 })
    expect(dry.by.get('pool/main/old.deb')).toMatchObject({ eligible: true, evicted: false, verified: 1 })
    expect(dry.by.get('dists/stable/Release')!.reasons).toEqual(['index file (keep "Release")'])
    expect(dry.by.get('dists/stable/main/binary-amd64/Packages.xz')!.reasons).toEqual([
      'index file (keep "Packages*")',
    ])
    expect(dry.by.get('pool/main/new.deb')!.reasons[0]).toMatch(/^younger than 2y \(mtime \d+s ago\)$/)
    expect(existsSync(join(m.tree, 'pool/main/old.deb'))).toBe(true)

    const run = await janitor(m, 1)
    expect(run.report).toMatchObject({ evicted: 1, bytesFreed: 300_000 })
    expect(run.by.get('pool/main/old.deb')).toMatchObject({ evicted: true })
    expect(existsSync(join(m.tree, 'pool/main/old.deb'))).toBe(false)
    expect(await m.idx.get('pool/main/old.deb')).toMatchObject({
      state: 'evicted',
      cid: old.cid,
      size: old.size,
      mtimeMs: old.mtimeMs,
    })
    expect((await m.idx.local.of('pool/main/old.deb'))!.state).toBe('evicted')
    // The local node's in-place reference followed the eviction.
    expect(run.report.follow).toMatchObject({ dropped: 1, failed: 0 })
    expect(await a.has(old.cid)).toBe(false)
    // Its listing entry and the mirror's root CID stay as they were.
    const s = await m.idx.scan()
    expect(s).toMatchObject({ evicted: 1, deleted: 0, rootCid: m.root })
    for (const p of [
      'pool/main/new.deb',
      'dists/stable/Release',
      'dists/stable/main/binary-amd64/Packages.xz',
    ])
      expect(existsSync(join(m.tree, p))).toBe(true)

    // A second pass finds nothing more to do.
    const again = await janitor(m, 1)
    expect(again.report).toMatchObject({ evicted: 0, eligible: 0 })
    expect(again.report.mirrors[0]).toMatchObject({ alreadyEvicted: 1, finished: 0 })
  })

  it('a fetched-back file stays for refetched_ttl, then is eligible again', async () => {
    const old = (await m.idx.get('pool/main/old.deb'))!
    const abs = join(m.tree, 'pool/main/old.deb')
    // The fetch-back's part, by hand: the verified bytes (from B) in place, the index told.
    write(m.tree, 'pool/main/old.deb', await b.getBlock(old.cid), new Date(old.mtimeMs))
    const st = lstatSync(abs)
    const at = Date.now()
    await m.idx.local.markRefetched('pool/main/old.deb', {
      cid: old.cid,
      stat: { size: st.size, mtimeMs: st.mtimeMs, ctimeMs: st.ctimeMs, ino: st.ino },
      at,
    })
    const kept = await janitor(m, 1)
    expect(kept.report.evicted).toBe(0)
    expect(kept.by.get('pool/main/old.deb')!.reasons).toEqual([
      expect.stringMatching(/^fetched back \d+s ago \(refetched_ttl 30d\)$/),
    ])
    expect(existsSync(abs)).toBe(true)
    const later = await janitor(m, 1, { dryRun: true, now: at + 31 * DAY, p: { copiesFreshMs: 40 * DAY } })
    expect(later.by.get('pool/main/old.deb')).toMatchObject({ eligible: true })
  })

  it('a file requested through the gateway within not_requested_within is kept', async () => {
    const files: FileDecision[] = []
    const now = Date.now()
    await runJanitor({
      now,
      copies,
      policy: { ...policy, refetchedTtlMs: 0, notRequestedWithinMs: 7 * DAY },
      mirrors: [{ index: m.idx, copies: { n: 1 } }],
      dryRun: true,
      lastRequested: (mirrorName, path) =>
        mirrorName === 'evict' && path === 'pool/main/old.deb' ? now - 3 * DAY : undefined,
      onFile: (d) => files.push(d),
    })
    expect(files.find((f) => f.path === 'pool/main/old.deb')!.reasons).toEqual([
      'requested 3d ago (not_requested_within 7d)',
    ])
  })
})

describe('promise 1: nothing is evicted', () => {
  it('with copies below n', async () => {
    const m = await mirror('below-n')
    await (await replicate(m, [target('kubo-b', b)], 2)).stop()
    const { report, by } = await janitor(m, 2)
    await nothingEvicted(m, report)
    expect(by.get('pool/main/old.deb')!.reasons).toEqual([
      '1 of 2 verified copies off this disk checked within 1d',
    ])
  })

  it('with copies checked longer ago than the freshness window', async () => {
    const m = await mirror('stale')
    await (await replicate(m, [target('kubo-b', b)], 1)).stop()
    const t = await checkedAt(m, 'kubo-b')
    // Within the window the copy counts (a dry run says so) ...
    const within = await janitor(m, 1, { dryRun: true, now: t + DAY - 1 })
    expect(within.by.get('pool/main/old.deb')).toMatchObject({ eligible: true })
    // ... past it, it does not.
    const { report, by } = await janitor(m, 1, { now: t + DAY + 1 })
    await nothingEvicted(m, report)
    expect(by.get('pool/main/old.deb')!.reasons).toEqual([
      '0 of 1 verified copies off this disk checked within 1d (1 announced or checked too long ago)',
    ])
  })

  it('with a holder on this disk (the local node)', async () => {
    const m = await mirror('local-holder')
    const r = await replicate(m, [target('kubo-a', a, true)], 1)
    await r.stop()
    expect((await copies.trees(m.name)).map((x) => [x.status, x.local])).toEqual([['verified', true]])
    const { report, by } = await janitor(m, 1)
    await nothingEvicted(m, report)
    expect(by.get('pool/main/old.deb')!.reasons).toEqual([
      '0 of 1 verified copies off this disk checked within 1d (1 on this disk)',
    ])
  })

  it('with a copy only announced (a provider record, no retrieval probe)', async () => {
    const m = await mirror('announced')
    // B fetches the root block and announces the tree without being asked to store it (no pin); A's
    // routing finds B as its provider.
    await kubos[1]!.ok(['block', 'stat', m.root])
    await kubos[1]!.ok(['routing', 'provide', m.root])
    const counter = new ProviderCounter({ name: 'providers', node: a, endpoints: [] })
    const bId = `ipfs:${(await b.id()).peerId}`
    const deadline = Date.now() + 60_000
    for (;;) {
      await (await replicate(m, [counter], 1)).stop()
      if ((await copies.trees(m.name)).some((x) => x.holder === bId)) break
      if (Date.now() > deadline) throw new Error("A's routing never found B as the tree's provider")
      await new Promise((res) => setTimeout(res, 50))
    }
    await counter.close()
    expect((await copies.trees(m.name)).find((x) => x.holder === bId)?.status).toBe('announced')
    const { report, by } = await janitor(m, 1)
    await nothingEvicted(m, report)
    expect(by.get('pool/main/old.deb')!.reasons).toEqual([
      '0 of 1 verified copies off this disk checked within 1d (1 announced or checked too long ago)',
    ])
  })

  it('with a counter that cannot be reached: its copy ages out, the reachable one alone is below n', async () => {
    const m = await mirror('unreachable')
    const both = [target('kubo-b', b), target('kubo-c', c)]
    await (await replicate(m, both, 2)).stop()
    const tc = await checkedAt(m, 'kubo-c')
    // While both checks are fresh, the file may go (a dry run says so).
    const first = Math.min(tc, await checkedAt(m, 'kubo-b'))
    const dry = await janitor(m, 2, { dryRun: true, now: first + DAY - 1 })
    expect(dry.by.get('pool/main/old.deb')).toMatchObject({ eligible: true })
    await kubos[2]!.stop()
    // The replicator re-checks: B answers, C does not (its record stays as it was).
    const r = await replicate(m, both, 2)
    const entry = await r.queue.get(`tree:${m.name}`)
    await r.stop()
    expect(entry?.state).toBe('failing')
    expect(await checkedAt(m, 'kubo-c')).toBe(tc)
    const tb = await checkedAt(m, 'kubo-b')
    expect(tb).toBeGreaterThan(tc)
    // When B's check is still fresh, C's is not: one verified copy of the two asked.
    const { report, by } = await janitor(m, 2, { now: tb + DAY - 1 })
    await nothingEvicted(m, report)
    expect(by.get('pool/main/old.deb')!.reasons).toEqual([
      '1 of 2 verified copies off this disk checked within 1d (1 announced or checked too long ago)',
    ])
  })
})

describe('quota mode', () => {
  it('evicts nothing below the high mark, then the oldest eligible first down to the low mark', async () => {
    const m = await mirror('quota', (tree) => {
      write(tree, 'pool/main/older.deb', randomBytes(200_000), new Date('2019-01-01T00:00:00Z'))
    })
    await (await replicate(m, [target('kubo-b', b)], 1)).stop()
    let present = 0
    for await (const r of m.idx.records()) if (r.kind === 'file') present += r.size
    const below = await janitor(m, 1, { p: { highWater: { bytes: present }, lowWater: { bytes: present } } })
    await nothingEvicted(m, below.report)
    expect(below.by.get('pool/main/older.deb')).toMatchObject({
      eligible: true,
      skipped: 'usage below high water',
    })
    // Above the high mark: the 2019 file alone brings usage to the low mark; the 2020 one stays.
    const run = await janitor(m, 1, {
      p: { highWater: { bytes: present - 1 }, lowWater: { bytes: present - 100_000 } },
    })
    expect(run.report).toMatchObject({ evicted: 1, bytesFreed: 200_000 })
    expect(run.report.quota).toMatchObject({ usedBytes: present, afterBytes: present - 200_000 })
    expect((await m.idx.get('pool/main/older.deb'))!.state).toBe('evicted')
    expect(run.by.get('pool/main/old.deb')).toMatchObject({
      eligible: true,
      evicted: false,
      skipped: 'low water reached',
    })
    expect(existsSync(join(m.tree, 'pool/main/old.deb'))).toBe(true)
  })
})

describe('the daemon’s janitor service', () => {
  it('leaves a mirror alone while its sync runs, and evicts once it does not', async () => {
    const m = await mirror('busy')
    await (await replicate(m, [target('kubo-b', b)], 1)).stop()
    let syncing = true
    const svc = new JanitorService({
      db,
      config: () => ({ mirrors: [{ name: m.name, mirrorDir: m.tree }] }) as unknown as Config,
      cache: { policy, mirrors: [m.name], intervalMs: 3_600_000, copies: () => ({ n: 1 }) },
      log,
      busy: (name) => name === m.name && syncing,
    })
    try {
      const during = await svc.run()
      expect(during.mirrors).toEqual([])
      expect(existsSync(join(m.tree, 'pool/main/old.deb'))).toBe(true)
      syncing = false
      const after = await svc.run()
      expect(after).toMatchObject({ evicted: 1 })
      expect(existsSync(join(m.tree, 'pool/main/old.deb'))).toBe(false)
      expect(svc.counters).toMatchObject({ runs: 2, evictions: 1, bytesFreed: 300_000 })
    } finally {
      await svc.close()
    }
  })
})
