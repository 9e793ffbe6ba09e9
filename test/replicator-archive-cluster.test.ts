/**
 * Files that leave the mirror stay in the archive on an IPFS Cluster target: a real two-peer Cluster
 * (v1.1.6) over two test Kubo daemons (B, C), A the mirror's own node. Before the cluster's tree pin
 * moves (`pin-update`), the deleted file and the old version of a changed one enter the cluster's pin
 * set as pins of their own; after the old root leaves it, both peers still hold them through a gc.
 */
import { randomBytes } from 'node:crypto'
import { mkdirSync, mkdtempSync, rmSync, unlinkSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import pino from 'pino'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { type Database, openDatabase } from '../src/db.ts'
import { CopyStore, countCopies, type MirrorIndex, openMirrorIndex } from '../src/index/index.ts'
import { KuboNode } from '../src/ipfs/index.ts'
import {
  archivedItems,
  ClusterTarget,
  publishMirror,
  type QueueEntry,
  Replicator,
} from '../src/replicator/index.ts'
import { Cluster } from './helpers/cluster.ts'
import { disposeAll, Kubo } from './helpers/kubo.ts'
import { waitFor } from './jobs-helpers.ts'

let dir: string
let tree: string
let db: Database
let idx: MirrorIndex
let kubos: Kubo[]
let cluster: Cluster
let nodes: KuboNode[]
const log = pino({ level: 'silent' })
const goneBytes = randomBytes(2 * 1024 * 1024 + 9)

function write(rel: string, data: string | Uint8Array): void {
  const p = join(tree, rel)
  mkdirSync(join(p, '..'), { recursive: true })
  writeFileSync(p, data)
}

function replicator(keepArchivedMs?: number): Replicator {
  const a = nodes[0]!
  return new Replicator({
    db,
    counters: [
      new ClusterTarget({
        name: 'cluster',
        api: cluster.peers[0]!.api,
        replicationMin: 2,
        replicationMax: 2,
        connect: (addr, signal) => a.connect(addr, { signal }),
      }),
    ],
    policy: () => ({ n: 2 }),
    recheckMs: 3_600_000,
    backoff: { baseMs: 60_000, maxMs: 600_000 },
    archived: (_mirror, after, upTo) => archivedItems(idx, after, upTo, { heldAt: after }),
    ...(keepArchivedMs !== undefined ? { keepArchivedMs } : {}),
    log,
  })
}

/** Checks until every item is satisfied (the cluster pins asynchronously). */
async function untilSatisfied(r: Replicator, keys: string[]): Promise<void> {
  await waitFor(
    async () => {
      await r.checkNow()
      await r.runOnce()
      const states = await Promise.all(keys.map(async (k) => (await r.queue.get(k))?.state))
      return states.every((s) => s === 'satisfied')
    },
    `${keys.join(', ')} satisfied`,
    60_000,
    50,
  )
}

async function allocations(): Promise<string[]> {
  const pins = await cluster.rest<{ cid: string }[] | { cid: string }>('GET', '/allocations')
  return (Array.isArray(pins) ? pins : [pins]).map((p) => p.cid)
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'cidmirror-archive-cluster-'))
  tree = join(dir, 'mirror')
  write('pool/keep.deb', randomBytes(2048))
  write('pool/gone.deb', goneBytes)
  write('dists/stable/Release', 'Suite: stable\nDate: one\n')
  db = await openDatabase(join(dir, 'db'))
  idx = openMirrorIndex(db, 'debian', tree)
  kubos = await Kubo.swarm(3, { parent: dir, filestore: true })
  cluster = await Cluster.start([kubos[1]!, kubos[2]!], { parent: dir })
  nodes = kubos.map((k, i) => new KuboNode({ api: k.api, local: i === 0 }))
}, 240_000)

afterAll(async () => {
  for (const n of nodes ?? []) await n.close()
  await cluster?.dispose()
  await disposeAll(kubos ?? [])
  await db?.close()
  rmSync(dir, { recursive: true, force: true })
})

it('the cluster pins what left the tree on its own before pin-update; the old root goes, they stay', async () => {
  const s1 = await idx.scan()
  await publishMirror(db, idx, nodes[0]!, { since: s1.id })
  const r = replicator()
  await r.track({ scope: 'tree', cid: s1.rootCid, mirror: 'debian', scan: s1.id })
  await untilSatisfied(r, ['tree:debian'])
  const gone = (await idx.get('pool/gone.deb'))!.cid
  const oldRelease = (await idx.get('dists/stable/Release'))!.cid

  unlinkSync(join(tree, 'pool/gone.deb'))
  write('dists/stable/Release', 'Suite: stable\nDate: two\n')
  const s2 = await idx.scan()
  await publishMirror(db, idx, nodes[0]!, { since: s2.id })
  for (const item of await archivedItems(idx, s1.id, s2.id)) await r.track(item)
  await r.track({ scope: 'tree', cid: s2.rootCid, mirror: 'debian', scan: s2.id })
  expect(((await r.queue.get('tree:debian')) as QueueEntry).item.previous).toBe(s1.rootCid)
  await untilSatisfied(r, ['tree:debian', `cid:${gone}`, `cid:${oldRelease}`])

  // The old root leaves the pin set once the new one is pinned everywhere (the upkeep after a check).
  await waitFor(
    async () => {
      await r.checkNow()
      await r.runOnce()
      return !(await allocations()).includes(s1.rootCid)
    },
    'the old root unpinned by the cluster',
    60_000,
    50,
  )
  expect((await allocations()).sort()).toEqual([s2.rootCid, gone, oldRelease].sort())
  for (const [i, n] of [nodes[1]!, nodes[2]!].entries()) {
    await waitFor(
      async () => (await n.pinned(s1.rootCid)) === undefined,
      'the old root gone on a peer',
      60_000,
      50,
    )
    expect(await n.pinned(gone)).toBe('recursive')
    expect(await n.pinned(oldRelease)).toBe('recursive')
    const k = kubos[i + 1]!
    await k.ok(['repo', 'gc', '--quiet'])
    expect((await k.cat(gone)).equals(goneBytes)).toBe(true)
    expect(await k.ok(['cat', '--offline', oldRelease])).toBe('Suite: stable\nDate: one\n')
  }
  // Two holders of each, as entity copies.
  for (const cid of [gone, oldRelease]) {
    const list = await new CopyStore(db).of(cid)
    expect(countCopies(list).verified).toBe(2)
    expect(list.every((c) => c.scope === 'entity' && c.kind === 'ipfs-cluster')).toBe(true)
  }
  await r.stop()

  // keep_archived run out: the cluster lets them go (DELETE /pins), the tree pin stays.
  const expiring = replicator(0)
  await expiring.checkNow()
  await expiring.runOnce()
  expect(await allocations()).toEqual([s2.rootCid])
  for (const cid of [gone, oldRelease]) expect(await expiring.queue.get(`cid:${cid}`)).toBeUndefined()
  await expiring.stop()
}, 240_000)
