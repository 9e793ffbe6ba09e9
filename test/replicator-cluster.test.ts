/**
 * The replicator with an IPFS Cluster target, against a real two-peer Cluster (v1.1.6) over two test
 * Kubo daemons (B, C), with a third Kubo (A) as the mirror's own node: A references the tree in place
 * (filestore) and the cluster peers fetch it from A over bitswap. The cluster pins the root with a
 * replication factor of 2, its per-peer status counts as two holders, B reached both as a Kubo target
 * and as a cluster peer counts once, and a sync moves the cluster pin with `pin-update`.
 */
import { randomBytes } from 'node:crypto'
import { mkdirSync, mkdtempSync, readFileSync, rmSync, unlinkSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import pino from 'pino'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { holderNodesOf, type TargetSettings } from '../src/daemon/index.ts'
import { type Database, openDatabase } from '../src/db.ts'
import { createFetchBack } from '../src/gateway/index.ts'
import { CopyStore, type MirrorIndex, openMirrorIndex } from '../src/index/index.ts'
import { KuboNode } from '../src/ipfs/index.ts'
import {
  auditMirror,
  ClusterTarget,
  type CopyCounter,
  KuboTarget,
  publishMirror,
  type QueueEntry,
  Replicator,
} from '../src/replicator/index.ts'
import { Cluster } from './helpers/cluster.ts'
import { disposeAll, Kubo } from './helpers/kubo.ts'

const MiB = 1024 * 1024
let dir: string
let tree: string
let db: Database
let idx: MirrorIndex
let kubos: Kubo[]
let cluster: Cluster
let a: KuboNode
let b: KuboNode
let c: KuboNode
let ids: { b: string; c: string }
const log = pino({ level: 'silent' })

interface GlobalPinInfo {
  peer_map: Record<string, { ipfs_peer_id: string; status: string }>
}

function write(rel: string, data: string | Uint8Array): void {
  const p = join(tree, rel)
  mkdirSync(join(p, '..'), { recursive: true })
  writeFileSync(p, data)
}

function clusterTarget(): ClusterTarget {
  return new ClusterTarget({
    name: 'cluster',
    api: cluster.peers[0]!.api,
    replicationMin: 2,
    replicationMax: 2,
    connect: (addr, signal) => a.connect(addr, { signal }),
  })
}

function replicator(n: number, counters: CopyCounter[]): Replicator {
  return new Replicator({
    db,
    counters,
    policy: () => ({ n }),
    recheckMs: 3_600_000,
    backoff: { baseMs: 60_000, maxMs: 600_000 },
    log,
  })
}

/** Runs checks until the tree item leaves `pending`/pinning states (the cluster pins asynchronously). */
async function untilSatisfied(r: Replicator, ms = 40_000): Promise<QueueEntry> {
  const deadline = Date.now() + ms
  for (;;) {
    await r.checkNow()
    await r.runOnce()
    const e = (await r.queue.get('tree:debian')) as QueueEntry
    if (e.state === 'satisfied') return e
    if (Date.now() > deadline)
      throw new Error(
        `not satisfied after ${ms} ms: ${e.state} ${e.reason}; cluster: ${JSON.stringify(await cluster.rest('GET', `/pins/${e.item.cid}`))}`,
      )
    await new Promise((res) => setTimeout(res, 50))
  }
}

async function clusterStatus(cid: string): Promise<Record<string, string>> {
  const info = await cluster.rest<GlobalPinInfo>('GET', `/pins/${cid}`)
  return Object.fromEntries(Object.values(info.peer_map).map((s) => [s.ipfs_peer_id, s.status]))
}

async function scanAndPublish(): Promise<{ id: number; rootCid: string }> {
  const s = await idx.scan()
  await publishMirror(db, idx, a, { since: s.id })
  return s
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'cidmirror-repl-cluster-'))
  tree = join(dir, 'mirror')
  write('pool/a.deb', randomBytes(3 * MiB + 7))
  write('pool/b.deb', randomBytes(2048))
  write('dists/stable/Release', 'Suite: stable\n')
  db = await openDatabase(join(dir, 'db'))
  idx = openMirrorIndex(db, 'debian', tree)
  kubos = await Kubo.swarm(3, { parent: dir, filestore: true })
  cluster = await Cluster.start([kubos[1]!, kubos[2]!], { parent: dir, ipfsProxy: true })
  ;[a, b, c] = kubos.map((k, i) => new KuboNode({ api: k.api, local: i === 0 })) as [
    KuboNode,
    KuboNode,
    KuboNode,
  ]
  ids = { b: (await b.id()).peerId, c: (await c.id()).peerId }
}, 240_000)

afterAll(async () => {
  for (const n of [a, b, c]) await n?.close()
  await cluster?.dispose()
  await disposeAll(kubos ?? [])
  await db?.close()
  rmSync(dir, { recursive: true, force: true })
})

describe('replicator with an IPFS Cluster target', () => {
  let root: string

  it('pins the root with replication factor 2: both peers pinned, two holders by IPFS peer id', async () => {
    root = (await scanAndPublish()).rootCid
    const r = replicator(2, [clusterTarget()])
    await r.track({ scope: 'tree', cid: root, mirror: 'debian', scan: 1 })
    const e = await untilSatisfied(r)
    expect(e.verified).toBe(2)
    expect(await clusterStatus(root)).toEqual({ [ids.b]: 'pinned', [ids.c]: 'pinned' })
    // Each peer's Kubo holds the whole tree, fetched from A.
    for (const n of [b, c]) expect(await n.pinned(root)).toBe('recursive')
    const holders = new Set<string>()
    const m = await auditMirror(
      db,
      idx,
      { n: 2 },
      {
        onFile: (f) => {
          for (const x of f.copies) holders.add(x.holder)
        },
      },
    )
    expect(m).toMatchObject({ files: 3, ok: 3, under: 0 })
    expect(holders).toEqual(new Set([`ipfs:${ids.b}`, `ipfs:${ids.c}`]))
    await r.stop()
  }, 180_000)

  it("an evicted file is fetched back from a cluster peer's IPFS node, through the cluster's IPFS proxy named in ipfs_api and the copies the cluster target recorded", async () => {
    const path = 'pool/a.deb'
    const rec = (await idx.get(path))!
    const bytes = readFileSync(join(tree, path))
    await idx.local.evict([{ path, cid: rec.cid, size: rec.size, mtimeMs: rec.mtimeMs }], async (r) =>
      unlinkSync(join(tree, r.path)),
    )
    const settings: TargetSettings = {
      name: 'cluster',
      type: 'cluster',
      api: cluster.peers[0]!.api,
      scope: 'tree',
      local: false,
      concurrency: undefined,
      gateway: undefined,
      token: undefined,
      replicationMin: 2,
      replicationMax: 2,
      // The first peer's IPFS proxy (its Kubo, B, through the cluster peer), then C's own RPC API.
      ipfsApi: [cluster.peers[0]!.ipfsProxy!, kubos[2]!.api],
    }
    expect(cluster.peers[0]!.ipfsProxy).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/)
    const holders = holderNodesOf(() => [settings])
    try {
      // No local node: the recorded cluster copies (tree scope) are the only way to the bytes.
      const fb = createFetchBack({
        rootOf: (m) => (m === 'debian' ? tree : undefined),
        recorderOf: (m) => (m === 'debian' ? idx.local : undefined),
        copies: new CopyStore(db),
        holders: holders.holders,
      })
      const file = { mirror: 'debian', path, cid: rec.cid, size: rec.size, mtimeMs: rec.mtimeMs }
      const res = await fb.open(file, undefined, AbortSignal.timeout(60_000))
      expect(res.source).toBe(`holder:cluster@${cluster.peers[0]!.ipfsProxy}`)
      const parts: Uint8Array[] = []
      for await (const x of res.body) parts.push(x)
      expect(Buffer.concat(parts).equals(bytes)).toBe(true)
      await expect.poll(async () => (await idx.local.of(path))?.state).toBe('refetched')
      expect(readFileSync(join(tree, path)).equals(bytes)).toBe(true)
      // Once each address's peer id is learnt, it serves its own peer's copy, labelled as that holder.
      await expect
        .poll(() => holders.holders('cluster')?.map((h) => h.peer), { timeout: 30_000 })
        .toEqual([ids.b, ids.c])
      await idx.local.evict([{ path, cid: rec.cid, size: rec.size, mtimeMs: rec.mtimeMs }], async (r) =>
        unlinkSync(join(tree, r.path)),
      )
      const fb2 = createFetchBack({
        rootOf: (m) => (m === 'debian' ? tree : undefined),
        recorderOf: (m) => (m === 'debian' ? idx.local : undefined),
        copies: new CopyStore(db),
        holders: holders.holders,
      })
      const again = await fb2.open(file, { start: 0, end: 99 }, AbortSignal.timeout(60_000))
      expect([`holder:ipfs:${ids.b}`, `holder:ipfs:${ids.c}`]).toContain(again.source)
      const head: Uint8Array[] = []
      for await (const x of again.body) head.push(x)
      expect(Buffer.concat(head).equals(bytes.subarray(0, 100))).toBe(true)
      await expect.poll(async () => (await idx.local.of(path))?.state).toBe('refetched')
      expect(fb2.figures().sources.map((x) => x.source)).toEqual([again.source])
    } finally {
      await holders.close()
    }
  }, 120_000)

  it('a Kubo reached both as a Kubo target and as a cluster peer counts once', async () => {
    const kuboB = new KuboTarget({ name: 'kubo-b', node: b, source: async () => (await a.id()).addresses })
    const r = replicator(3, [kuboB, clusterTarget()])
    await r.checkNow()
    await r.runOnce()
    const e = (await r.queue.get('tree:debian')) as QueueEntry
    expect(e.state).toBe('under-replicated')
    expect(e.verified).toBe(2)
    expect(e.reason).toMatch(/2 of 3 verified copies/)
    const m = await auditMirror(db, idx, { n: 3 })
    expect(m).toMatchObject({ ok: 0, under: 3 })
    await r.stop()
  }, 120_000)

  it('a sync that changes files moves the cluster pin with pin-update; the old root is unpinned', async () => {
    write('pool/new.deb', randomBytes(5000))
    unlinkSync(join(tree, 'pool', 'b.deb'))
    const s = await scanAndPublish()
    expect(s.rootCid).not.toBe(root)
    const r = replicator(2, [clusterTarget()])
    await r.track({ scope: 'tree', cid: s.rootCid, mirror: 'debian', scan: s.id })
    expect(((await r.queue.get('tree:debian')) as QueueEntry).item.previous).toBe(root)
    const e = await untilSatisfied(r)
    expect(e.verified).toBe(2)
    expect(await clusterStatus(s.rootCid)).toEqual({ [ids.b]: 'pinned', [ids.c]: 'pinned' })
    // The old root left the cluster's pin set, and each Kubo lets it go.
    const pins = await cluster.rest<{ cid: string }[] | { cid: string }>('GET', '/allocations')
    const cids = (Array.isArray(pins) ? pins : [pins]).map((p) => p.cid)
    expect(cids).toContain(s.rootCid)
    expect(cids).not.toContain(root)
    const deadline = Date.now() + 60_000
    for (const n of [b, c]) {
      while ((await n.pinned(root)) !== undefined) {
        if (Date.now() > deadline) throw new Error('the old root is still pinned on a cluster peer')
        await new Promise((res) => setTimeout(res, 50))
      }
      expect(await n.pinned(s.rootCid)).toBe('recursive')
    }
    // A restart finds it satisfied and stores nothing.
    const again = replicator(2, [clusterTarget()])
    expect(await again.runOnce()).toBe(0)
    await r.stop()
    await again.stop()
    // A check only reads: a settled root's "previous" stays in the pin set until the upkeep after it.
    const extra = (await idx.get('pool/a.deb'))!.cid
    await cluster.rest('POST', `/pins/${extra}?mode=recursive&name=previous`)
    const inPinSet = async () => {
      const all = await cluster.rest<{ cid: string }[] | { cid: string }>('GET', '/allocations')
      return (Array.isArray(all) ? all : [all]).map((p) => p.cid).includes(extra)
    }
    expect(await inPinSet()).toBe(true)
    const t = clusterTarget()
    const item = {
      key: 'tree:debian',
      scope: 'tree' as const,
      cid: s.rootCid,
      mirror: 'debian',
      scan: s.id,
      previous: extra,
    }
    const signal = AbortSignal.timeout(30_000)
    expect((await t.check(item, { signal })).filter((c) => c.status === 'verified')).toHaveLength(2)
    expect(await inPinSet()).toBe(true)
    await t.tidy(item, { signal })
    expect(await inPinSet()).toBe(false)
  }, 180_000)
})
