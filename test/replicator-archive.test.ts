/**
 * Files that leave the mirror stay in the archive, on real Kubo daemons in a private swarm on
 * 127.0.0.1: A is the mirror's own node (filestore beside the tree), B and C are tree targets. A file
 * deleted upstream and the old version of a changed one are pinned on their own on B and C before the
 * tree pin moves to the new root, so a garbage collection on B and C keeps their blocks.
 */
import { randomBytes } from 'node:crypto'
import { mkdirSync, mkdtempSync, rmSync, unlinkSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import pino from 'pino'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type Database, openDatabase } from '../src/db.ts'
import { CopyStore, countCopies, type MirrorIndex, openMirrorIndex } from '../src/index/index.ts'
import { KuboNode } from '../src/ipfs/index.ts'
import {
  type AuditFile,
  type AuditTotals,
  archivedItems,
  auditMirror,
  auditStream,
  KuboTarget,
  type PinningNode,
  publishMirror,
  Replicator,
} from '../src/replicator/index.ts'
import { disposeAll, Kubo } from './helpers/kubo.ts'

const MiB = 1024 * 1024
let dir: string
let tree: string
let db: Database
let idx: MirrorIndex
let kubos: Kubo[]
let nodes: KuboNode[]
const log = pino({ level: 'silent' })
const goneBytes = randomBytes(2 * MiB + 11)

function write(rel: string, data: string | Uint8Array): void {
  const p = join(tree, rel)
  mkdirSync(join(p, '..'), { recursive: true })
  writeFileSync(p, data)
}

/**
 * The replicator over B and C. `refuse`: C's node refuses to pin that CID on its own (a fault put in
 * front of the real node), as a node that is full or down for one call would.
 */
function replicator(refuse?: string, keepArchivedMs?: number): Replicator {
  const [a, b, real] = nodes as [KuboNode, KuboNode, KuboNode]
  const c: PinningNode = {
    id: (o) => real.id(o),
    connect: (addr, o) => real.connect(addr, o),
    disconnect: (peer, o) => real.disconnect(peer, o),
    pinUpdate: (from, to, o) => real.pinUpdate(from, to, o),
    pinned: (cid, o) => real.pinned(cid, o),
    unpin: (cid, o) => real.unpin(cid, o),
    pin: async (cid, o) => {
      if (cid === refuse) throw new Error(`refusing to pin ${cid}`)
      return real.pin(cid, o)
    },
  }
  const source = async () => (await a.id()).addresses
  return new Replicator({
    db,
    counters: [b, c].map(
      (node, i) => new KuboTarget({ name: `kubo-${'bc'[i]}`, node, source, gateway: kubos[i + 1]!.gateway }),
    ),
    policy: () => ({ n: 2, freshMs: 3_600_000 }),
    recheckMs: 3_600_000,
    backoff: { baseMs: 60_000, maxMs: 600_000 },
    archived: (_mirror, after, upTo) => archivedItems(idx, after, upTo, { heldAt: after }),
    // A store of bytes no node has any more waits for ever otherwise (a bound, not an assertion).
    callTimeoutMs: 5_000,
    ...(keepArchivedMs !== undefined ? { keepArchivedMs } : {}),
    log,
  })
}

/** Scans, publishes to A, tracks what left the tree and then the tree, as the daemon does. */
async function syncAndTrack(r: Replicator, previousScan: number): Promise<{ id: number; rootCid: string }> {
  const s = await idx.scan()
  await publishMirror(db, idx, nodes[0]!, { since: s.id })
  for (const item of await archivedItems(idx, previousScan, s.id)) await r.track(item)
  await r.track({ scope: 'tree', cid: s.rootCid, mirror: 'debian', scan: s.id })
  return s
}

/** Recursive pins of `k`, leaving out the empty directory `ipfs init` pins (a CIDv0). */
async function recursivePins(k: Kubo): Promise<string[]> {
  const out = await k.ok(['pin', 'ls', '--type=recursive', '--quiet'])
  return out.split('\n').filter((c) => c !== '' && c !== EMPTY_DIR)
}
const EMPTY_DIR = 'QmUNLLsPACCz1vLxQVkXqqLX5R1X345qqfHbsf67hvA3Nn'

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'cidmirror-archive-'))
  tree = join(dir, 'mirror')
  write('pool/keep.deb', randomBytes(2048))
  write('pool/gone.deb', goneBytes)
  write('dists/stable/Release', 'Suite: stable\nDate: one\n')
  db = await openDatabase(join(dir, 'db'))
  idx = openMirrorIndex(db, 'debian', tree)
  kubos = await Kubo.swarm(3, { parent: dir, filestore: true })
  nodes = kubos.map((k, i) => new KuboNode({ api: k.api, local: i === 0 }))
}, 180_000)

afterAll(async () => {
  for (const n of nodes ?? []) await n.close()
  await disposeAll(kubos ?? [])
  await db?.close()
  rmSync(dir, { recursive: true, force: true })
})

describe('archive pins on tree targets', () => {
  let root1: string
  let gone: string
  let oldRelease: string
  let root2: string

  it('the first sync pins the tree on B and C', async () => {
    const r = replicator()
    const s = await syncAndTrack(r, 0)
    root1 = s.rootCid
    gone = (await idx.get('pool/gone.deb'))!.cid
    oldRelease = (await idx.get('dists/stable/Release'))!.cid
    await r.runOnce()
    expect((await r.queue.get('tree:debian'))?.state).toBe('satisfied')
    for (const k of kubos.slice(1)) expect(await recursivePins(k)).toEqual([root1])
    await r.stop()
  })

  it('a deleted and a replaced file are pinned on their own before the tree pin moves; gc keeps them', async () => {
    unlinkSync(join(tree, 'pool/gone.deb'))
    write('dists/stable/Release', 'Suite: stable\nDate: two\n')
    // C cannot pin the deleted file on its own: its tree pin stays on the old root, which holds it.
    const faulty = replicator(gone)
    const s = await syncAndTrack(faulty, 1)
    root2 = s.rootCid
    expect(s.rootCid).not.toBe(root1)
    const items = await archivedItems(idx, 1, s.id)
    expect(items.map((i) => i.cid).sort()).toEqual([gone, oldRelease].sort())
    await faulty.runOnce()
    expect(await recursivePins(kubos[2]!)).toContain(root1)
    expect(await recursivePins(kubos[2]!)).not.toContain(s.rootCid)
    expect((await recursivePins(kubos[1]!)).sort()).toEqual([s.rootCid, gone, oldRelease].sort())
    const tree2 = await faulty.queue.get('tree:debian')
    expect(tree2?.state).toBe('failing')
    expect(tree2?.reason).toMatch(/refusing to pin/)
    await faulty.stop()

    const r = replicator()
    await r.checkNow()
    await r.runOnce()

    for (const k of kubos.slice(1)) {
      const pins = await recursivePins(k)
      expect(pins.sort()).toEqual([s.rootCid, gone, oldRelease].sort())
      expect(pins).not.toContain(root1)
      await k.ok(['repo', 'gc', '--quiet'])
      // Every block of the deleted file and of the old version is still there, offline, after a gc.
      expect((await k.cat(gone)).equals(goneBytes)).toBe(true)
      expect(await k.ok(['cat', '--offline', oldRelease])).toBe('Suite: stable\nDate: one\n')
    }

    // Their copies are entity copies, verified on both holders, with where to fetch them.
    const copies = new CopyStore(db)
    for (const cid of [gone, oldRelease]) {
      const list = await copies.of(cid)
      expect(countCopies(list, { freshMs: 3_600_000 }).verified).toBe(2)
      for (const c of list) {
        expect(c).toMatchObject({ scope: 'entity', status: 'verified', cid })
        expect(c.retrieval?.[0]).toMatch(new RegExp(`^http://127\\.0\\.0\\.1:\\d+/ipfs/${cid}$`))
      }
      const e = await r.queue.get(`cid:${cid}`)
      expect(e?.item.archived).toBeDefined()
    }
    // The archived items are kept like any file: satisfied at n = 2 on their own pins.
    await r.checkNow()
    await r.runOnce()
    for (const cid of [gone, oldRelease]) expect((await r.queue.get(`cid:${cid}`))?.state).toBe('satisfied')
    expect((await r.queue.get('tree:debian'))?.state).toBe('satisfied')
    await r.stop()
  })

  it('the audit lists the deleted file and the old version with their copies, counted against n', async () => {
    const files: AuditFile[] = []
    const m = await auditMirror(
      db,
      idx,
      { n: 2 },
      { filter: { archive: true }, onFile: (f) => files.push(f) },
    )
    const archive = files.filter((f) => f.state === 'deleted' || f.state === 'archived')
    expect(archive.map((f) => [f.path, f.state, f.cid, f.verified, f.verdict])).toEqual(
      [
        ['pool/gone.deb', 'deleted', gone, 2, 'ok'],
        ['dists/stable/Release', 'archived', oldRelease, 2, 'ok'],
      ].sort((x, y) => (x[0]! < y[0]! ? -1 : 1)),
    )
    for (const f of archive) {
      expect(f).toMatchObject({ firstScan: 1, lastScan: 1, leftScan: 2 })
      expect(new Set(f.copies.map((c) => c.holder)).size).toBe(2)
      expect(f.copies.every((c) => c.scope === 'entity' && c.retrieval?.length === 1)).toBe(true)
    }
    expect(m.archive).toEqual({ files: 2, bytes: goneBytes.length + 24, ok: 2, under: 0, bytesUnder: 0 })
    // The current tree's counts are the tree's alone.
    expect(m).toMatchObject({ files: 3, ok: 2, under: 0 })
    expect(m.states).toEqual({ present: 2, evicted: 0, deleted: 1 })

    // At n = 3 they are under, and the verdict (the CLI's exit status) says so only when asked.
    const verdict = async (archiveFlag: boolean): Promise<AuditTotals> => {
      let totals: AuditTotals | undefined
      const q = { mirror: 'debian', ...(archiveFlag ? { archive: true } : {}) }
      for await (const l of auditStream(db, q, {
        policyOf: () => ({ policy: { n: 3 }, from: 'flag' }) as const,
      }))
        if (l.type === 'totals') totals = l
      return totals!
    }
    const withArchive = await verdict(true)
    expect(withArchive.archive).toEqual({ files: 2, ok: 0, under: 2, bytesUnder: goneBytes.length + 24 })
    expect(withArchive).toMatchObject({ listed: 4, listedUnder: 4, verdict: 'under' })
    const without = await verdict(false)
    expect(without.archive).toBeUndefined()
    expect(without.listed).toBe(2)
  })

  it('an archive pin removed on a target is noticed at the next check and stored again', async () => {
    await kubos[1]!.ok(['pin', 'rm', gone])
    const r = replicator()
    await r.checkNow([`cid:${gone}`])
    await r.runOnce()
    expect(await recursivePins(kubos[1]!)).toContain(gone)
    expect((await r.queue.get(`cid:${gone}`))?.state).toBe('satisfied')
    await r.stop()
  })

  it('keep_archived run out: the tree targets release the archive pins, and the tree pin stays', async () => {
    // Kept for a day: nothing is released yet.
    const day = replicator(undefined, 86_400_000)
    await day.checkNow()
    await day.runOnce()
    for (const k of kubos.slice(1)) expect(await recursivePins(k)).toContain(gone)
    await day.stop()

    const r = replicator(undefined, 0)
    await r.checkNow()
    await r.runOnce()
    for (const k of kubos.slice(1)) expect(await recursivePins(k)).toEqual([root2])
    for (const cid of [gone, oldRelease]) {
      expect(await r.queue.get(`cid:${cid}`)).toBeUndefined()
      expect(await new CopyStore(db).of(cid)).toEqual([])
    }
    expect((await r.queue.get('tree:debian'))?.state).toBe('satisfied')
    await r.stop()
  })

  it('a file that came and went between two passes does not hold the tree pin back', async () => {
    const r = replicator()
    const before = (await idx.lastScan())!.id
    write('pool/brief.deb', randomBytes(4096))
    const s1 = await idx.scan()
    await publishMirror(db, idx, nodes[0]!, { since: s1.id })
    const brief = (await idx.get('pool/brief.deb'))!.cid
    unlinkSync(join(tree, 'pool/brief.deb'))
    // Two scans, one pass: the targets never held it, and A can no longer read it (its filestore
    // references a file that is gone).
    const s2 = await syncAndTrack(r, before)
    expect((await archivedItems(idx, before, s2.id)).map((i) => i.cid)).toEqual([brief])
    expect(await archivedItems(idx, before, s2.id, { heldAt: before })).toEqual([])
    await r.runOnce()
    for (const k of kubos.slice(1)) expect(await recursivePins(k)).toEqual([s2.rootCid])
    expect((await r.queue.get('tree:debian'))?.state).toBe('satisfied')
    // Its own item is tracked and says why it is not kept.
    const e = await r.queue.get(`cid:${brief}`)
    expect(e?.item.archived).toBeDefined()
    expect(e?.state).not.toBe('satisfied')
    await r.stop()
  })
})
