/**
 * The replicator against three real Kubo daemons in a private swarm on 127.0.0.1: node A is the
 * mirror's own node (filestore, repo beside the mirror tree: local, never counted), B and C are
 * storage targets holding the tree with one recursive pin of its root.
 */
import { randomBytes } from 'node:crypto'
import { mkdirSync, mkdtempSync, rmSync, unlinkSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import pino from 'pino'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type Database, openDatabase } from '../src/db.ts'
import { CopyStore, type MirrorIndex, openMirrorIndex } from '../src/index/index.ts'
import { KuboNode } from '../src/ipfs/index.ts'
import {
  auditMirror,
  KuboTarget,
  publishMirror,
  type QueueEntry,
  Replicator,
} from '../src/replicator/index.ts'
import { disposeAll, Kubo } from './helpers/kubo.ts'

const MiB = 1024 * 1024
let dir: string
let tree: string
let db: Database
let idx: MirrorIndex
let kubos: Kubo[]
let a: KuboNode
let b: KuboNode
let c: KuboNode
const log = pino({ level: 'silent' })

function write(rel: string, data: string | Uint8Array): void {
  const p = join(tree, rel)
  mkdirSync(join(p, '..'), { recursive: true })
  writeFileSync(p, data)
}

function replicator(n: number, targets = [b, c]): Replicator {
  const source = async () => (await a.id()).addresses
  return new Replicator({
    db,
    counters: targets.map((node, i) => new KuboTarget({ name: `kubo-${'bc'[i]}`, node, source })),
    policy: () => ({ n }),
    recheckMs: 3_600_000,
    backoff: { baseMs: 60_000, maxMs: 600_000 },
    log,
  })
}

async function scanAndPublish(): Promise<{ id: number; rootCid: string }> {
  const s = await idx.scan()
  await publishMirror(db, idx, a, { since: s.id })
  return s
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'cidmirror-repl-'))
  tree = join(dir, 'mirror')
  write('pool/a.deb', randomBytes(3 * MiB + 7))
  write('pool/b.deb', randomBytes(2048))
  write('pool/dup.deb', 'same bytes\n')
  write('dists/stable/Release', 'Suite: stable\n')
  write('dists/stable/dup', 'same bytes\n')
  db = await openDatabase(join(dir, 'db'))
  idx = openMirrorIndex(db, 'debian', tree)
  // A shares the mirror's folder (its filestore references files under its repo's parent).
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

describe('replicator with Kubo targets (tree pins)', () => {
  let root: string

  it('publishes the tree to the local node: every block readable from it, offline', async () => {
    const s = await scanAndPublish()
    root = s.rootCid
    const kA = kubos[0]!
    expect((await kA.ok(['dag', 'stat', '--offline', '--progress=false', root])).length).toBeGreaterThan(0)
    // Kubo agrees with the index on the root.
    expect(await kA.rootCid(tree, { hidden: true })).toBe(root)
  })

  it('reaches n = 2: both targets pin the root; the audit counts each holder once per file', async () => {
    const r = replicator(2)
    await r.track({ scope: 'tree', cid: root, mirror: 'debian', scan: 1 })
    expect(await r.runOnce()).toBe(1)
    const e = (await r.queue.get('tree:debian')) as QueueEntry
    expect(e.state).toBe('satisfied')
    expect(e.verified).toBe(2)
    expect(await b.pinned(root)).toBe('recursive')
    expect(await c.pinned(root)).toBe('recursive')
    const files: { path: string; verified: number; holders: string[] }[] = []
    const m = await auditMirror(
      db,
      idx,
      { n: 2 },
      {
        onFile: (f) =>
          files.push({ path: f.path, verified: f.verified, holders: f.copies.map((x) => x.holder) }),
      },
    )
    expect(m).toMatchObject({ files: 5, ok: 5, under: 0 })
    for (const f of files) {
      expect(f.verified).toBe(2)
      expect(new Set(f.holders).size).toBe(f.holders.length)
    }
    await r.stop()
  })

  it('n = 3 with two targets is under-replicated, with the reason', async () => {
    const r = replicator(3)
    await r.checkNow()
    await r.runOnce()
    const e = (await r.queue.get('tree:debian')) as QueueEntry
    expect(e.state).toBe('under-replicated')
    expect(e.reason).toMatch(/2 of 3 verified copies/)
    const m = await auditMirror(db, idx, { n: 3 })
    expect(m).toMatchObject({ ok: 0, under: 5 })
    await r.stop()
  })

  it('an unpin on one node is noticed at the next check and repaired', async () => {
    await kubos[1]!.ok(['pin', 'rm', root])
    const r = replicator(2)
    const events: QueueEntry[] = []
    r.on('processed', (e) => events.push(e))
    await r.checkNow()
    await r.runOnce()
    expect(events[0]?.state).toBe('satisfied')
    expect(await b.pinned(root)).toBe('recursive')
    await r.stop()
  })

  it('a node that is down is retried with backoff while the other keeps its copy', async () => {
    await kubos[2]!.stop()
    const r = replicator(2)
    await r.checkNow()
    await r.runOnce()
    const e = (await r.queue.get('tree:debian')) as QueueEntry
    expect(e.state).toBe('failing')
    expect(e.targets['kubo-c']?.failures).toBe(1)
    expect(e.targets['kubo-c']?.retryAt).toBeGreaterThan(Date.now())
    expect(e.targets['kubo-b']?.failures).toBe(0)
    // The down node's copy is no longer fresh-verified by this check; B's is.
    const copies = await new CopyStore(db).trees('debian')
    expect(copies.find((x) => x.target === 'kubo-b')?.status).toBe('verified')
    await r.stop()
    await kubos[2]!.start({ online: true })
    await kubos[0]!.connect(kubos[2]!)
    c = new KuboNode({ api: kubos[2]!.api })
  })

  it('a sync that changes files moves the tree pins with pin update; nothing is stored twice', async () => {
    write('pool/new.deb', randomBytes(5000))
    unlinkSync(join(tree, 'pool', 'b.deb'))
    const s = await scanAndPublish()
    expect(s.rootCid).not.toBe(root)
    const r = replicator(2)
    await r.track({ scope: 'tree', cid: s.rootCid, mirror: 'debian', scan: s.id })
    const before = (await r.queue.get('tree:debian')) as QueueEntry
    expect(before.item.previous).toBe(root)
    await r.runOnce()
    const e = (await r.queue.get('tree:debian')) as QueueEntry
    expect(e.state).toBe('satisfied')
    for (const n of [b, c]) {
      expect(await n.pinned(s.rootCid)).toBe('recursive')
      expect(await n.pinned(root)).toBeUndefined()
    }
    // A restart (a new replicator over the same database) finds it satisfied and stores nothing.
    const again = replicator(2)
    expect(await again.runOnce()).toBe(0)
    await r.stop()
    await again.stop()
  })
})
