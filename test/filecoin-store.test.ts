/**
 * Filecoin Onchain Cloud as a storage target, with the real `@filoz/synapse-sdk` 0.41. THE CHAIN AND
 * THE STORAGE PROVIDERS ARE FAKES (test/helpers/fake-foc.ts: `@filoz/synapse-core/mocks` over msw,
 * nothing leaves the process): what is tested is cidmirror's packing, uploading, recording and
 * counting against what the SDK asks and answers, not Filecoin itself.
 */
import { randomBytes } from 'node:crypto'
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { CarBlockIterator } from '@ipld/car'
import * as dagPb from '@ipld/dag-pb'
import pino from 'pino'
import { privateKeyToAccount } from 'viem/accounts'
import { afterEach, describe, expect, it } from 'vitest'
import { type Database, openDatabase } from '../src/db.ts'
import { BlockReader, CopyStore, type MirrorIndex, mapBlocks, openMirrorIndex } from '../src/index/index.ts'
import { SynapseService } from '../src/replicator/filecoin/synapse.ts'
import {
  archivedItems,
  FilecoinTarget,
  type FilecoinTargetOptions,
  Replicator,
} from '../src/replicator/index.ts'
import { FakeFoc, focTarget, SESSION_KEY, WALLET } from './helpers/fake-foc.ts'

const MiB = 1024 * 1024
const log = pino({ level: process.env.FC_DEBUG ? 'debug' : 'silent' })

interface World {
  dir: string
  tree: string
  db: Database
  idx: MirrorIndex
  foc: FakeFoc
}

async function world(files: Record<string, Uint8Array | string>): Promise<World> {
  const dir = mkdtempSync(join(tmpdir(), 'cidmirror-fc-'))
  const tree = join(dir, 'mirror')
  for (const [rel, data] of Object.entries(files)) {
    const p = join(tree, rel)
    mkdirSync(join(p, '..'), { recursive: true })
    writeFileSync(p, data)
  }
  const db = await openDatabase(join(dir, 'db'))
  const idx = openMirrorIndex(db, 'debian', tree)
  const s = await idx.scan()
  await mapBlocks(db, 'debian', tree, { since: 0 })
  expect(s.rootCid).toBeTruthy()
  const foc = new FakeFoc(3)
  foc.start()
  return { dir, tree, db, idx, foc }
}

async function files(idx: MirrorIndex) {
  const out: { cid: string; size: number; mirror: string; path: string }[] = []
  for await (const r of idx.records())
    if (r.kind === 'file' && r.cid) out.push({ cid: r.cid, size: r.size, mirror: 'debian', path: r.path })
  return out
}

function target(w: World, copies: number, extra: Partial<FilecoinTargetOptions> = {}) {
  return focTarget(w.db, { copies, log, ...extra })
}

async function replicateAll(w: World, t: FilecoinTarget, n: number) {
  const list = await files(w.idx)
  await t.plan(list)
  const r = new Replicator({ db: w.db, counters: [t], policy: () => ({ n }), recheckMs: 3_600_000, log })
  for (const f of list) await r.track({ scope: 'entity', cid: f.cid, mirror: f.mirror, bytes: f.size })
  await r.runOnce()
  return { r, list }
}

describe('filecoin target (fake chain and providers)', () => {
  let w: World
  afterEach(async () => {
    w.foc.stop()
    await w.db.close()
    rmSync(w.dir, { recursive: true, force: true })
  })

  it('stores a synced tree with copies = 2: small files share a piece, each file verified on 2 providers with its byte range in the CAR', async () => {
    const big = randomBytes(3 * MiB + 5)
    w = await world({
      'pool/a.deb': big,
      'pool/b.deb': randomBytes(2048),
      'dists/Release': 'Suite: stable\n',
    })
    const t = await target(w, 2, { pack: { smallFile: MiB } })
    const { r, list } = await replicateAll(w, t, 2)
    const copies = new CopyStore(w.db)
    for (const f of list) {
      const e = await r.queue.get(`cid:${f.cid}`)
      expect(e?.state, `${f.path}: ${e?.reason}`).toBe('satisfied')
      const cs = (await copies.of(f.cid)).filter((c) => c.status === 'verified')
      expect(cs).toHaveLength(2)
      expect(new Set(cs.map((c) => c.detail?.provider)).size).toBe(2)
      for (const c of cs) {
        expect(c.holder).toMatch(/^filecoin:\d+\/\d+$/)
        expect(c.kind).toBe('filecoin')
        expect(c.retrieval?.[0]).toMatch(/^https:\/\/pdp\d\.example\.com\/piece\//)
        expect(c.retrieval?.[1]).toBe(`${new URL(c.retrieval![0]!).origin}/ipfs/${f.cid}`)
        // The file's range of the piece's CAR holds its blocks, and they rebuild its bytes.
        const res = await fetch(c.retrieval![0]!, {
          headers: {
            range: `bytes=${c.detail!.carOffset}-${Number(c.detail!.carOffset) + Number(c.detail!.carLength) - 1}`,
          },
        })
        expect(res.status).toBe(206)
        const slice = new Uint8Array(await res.arrayBuffer())
        expect(slice.length).toBe(c.detail!.carLength)
        expect(c.detail?.nextProofDue).toBeTruthy()
        expect(c.detail?.pieceCid).toBe(c.retrieval![0]!.split('/').pop())
      }
    }
    // Two pieces (the 3 MiB file alone; the two small ones together), each uploaded once and pulled once.
    const pieces = (await t.records.allPieces()).filter((p) => p.pieceCid)
    expect(pieces.map((p) => p.files.length).sort()).toEqual([1, 2])
    const uploads = w.foc.providers.reduce((a, p) => a + p.uploads, 0)
    const pulls = w.foc.providers.reduce((a, p) => a + p.pulls, 0)
    expect(uploads).toBe(2)
    expect(pulls).toBe(2)
    // Data set and piece metadata as FOC's IPFS indexing needs them.
    for (const ds of w.foc.dataSets.values()) {
      expect(ds.metadata).toMatchObject({ withIPFSIndexing: '', source: 'cidmirror-test' })
      for (const p of ds.pieces) expect(list.map((f) => f.cid)).toContain(p.metadata.ipfsRootCID)
    }
    // The whole piece is a CAR of the index's blocks: the big file's blocks are all there.
    const bigPiece = pieces.find((p) => p.files.length === 1)!
    const car = w.foc.providers.find((p) => p.pieces.has(bigPiece.pieceCid!))!.pieces.get(bigPiece.pieceCid!)!
    let bytes = 0
    for await (const b of await CarBlockIterator.fromBytes(car))
      if (b.cid.code === 0x55) bytes += b.bytes.length
    expect(bytes).toBe(big.length)
  }, 60_000)
})

describe('filecoin copies over time (fake chain and providers)', () => {
  let w: World
  afterEach(async () => {
    w.foc.stop()
    await w.db.close()
    rmSync(w.dir, { recursive: true, force: true })
  })

  it('copies = 3: secondaries that fail their pull are recorded (complete: false), retried with backoff, and the file reaches 3', async () => {
    w = await world({ 'pool/c.deb': randomBytes(300_000) })
    for (const p of w.foc.providers) p.failPulls = 1
    const t = await target(w, 3)
    const { r, list } = await replicateAll(w, t, 3)
    const key = `cid:${list[0]!.cid}`
    let e = await r.queue.get(key)
    expect(e?.state).toBe('failing')
    expect(e?.reason).toMatch(/1 of 3 copies/)
    expect(e?.targets.foc?.retryAt).toBeGreaterThan(Date.now())
    const [piece] = await t.records.allPieces()
    expect(piece!.copies).toHaveLength(1)
    expect(piece!.failed?.length).toBeGreaterThan(0)
    // Not due before its backoff; on the retry only the two missing copies are asked, elsewhere.
    expect(await r.runOnce()).toBe(0)
    await r.checkNow([key])
    await r.runOnce()
    e = await r.queue.get(key)
    expect(e?.state, e?.reason).toBe('satisfied')
    expect(e?.verified).toBe(3)
    const copies = (await new CopyStore(w.db).of(list[0]!.cid)).filter((c) => c.status === 'verified')
    expect(new Set(copies.map((c) => c.detail?.provider))).toEqual(new Set(['1', '2', '3']))
    expect(w.foc.holders(piece!.pieceCid!)).toHaveLength(3)
  }, 60_000)

  it('a restart in the middle uploads nothing twice', async () => {
    w = await world({
      'a/one.deb': randomBytes(1_500_000),
      'a/two.deb': randomBytes(1_200_000),
      'a/three.deb': randomBytes(1_100_000),
    })
    const list = await files(w.idx)
    const first = await target(w, 2, { pack: { smallFile: MiB } })
    await first.plan(list)
    const r1 = new Replicator({
      db: w.db,
      counters: [first],
      policy: () => ({ n: 2 }),
      recheckMs: 3_600_000,
      log,
    })
    // The first process stores one file, then dies (its LevelDB closed under it, reopened by the next).
    await r1.track({ scope: 'entity', cid: list[0]!.cid, mirror: 'debian', bytes: list[0]!.size })
    await r1.runOnce()
    expect((await r1.queue.get(`cid:${list[0]!.cid}`))?.state).toBe('satisfied')
    await w.db.close()
    w.db = await openDatabase(join(w.dir, 'db'))
    const second = await target(w, 2, { pack: { smallFile: MiB } })
    await second.plan(list)
    const r2 = new Replicator({
      db: w.db,
      counters: [second],
      policy: () => ({ n: 2 }),
      recheckMs: 3_600_000,
      log,
    })
    for (const f of list) await r2.track({ scope: 'entity', cid: f.cid, mirror: 'debian', bytes: f.size })
    await r2.runOnce()
    const pieces = (await second.records.allPieces()).filter((p) => p.pieceCid)
    expect(pieces).toHaveLength(3)
    for (const p of pieces) expect(w.foc.uploadsOf(p.pieceCid!), p.key).toBe(1)
    for (const f of list) expect((await r2.queue.get(`cid:${f.cid}`))?.state).toBe('satisfied')
  }, 60_000)

  it('a file above the upload limit spans pieces of one data set per provider and is counted whole', async () => {
    const big = randomBytes(5 * MiB + 3)
    w = await world({ 'iso/big.iso': big })
    // The service's limit is 1,065,353,216 bytes; the same rule with a 2.5 MiB limit keeps the test small.
    const t = await target(w, 2, { pack: { maxPieceBytes: 2.5 * MiB } })
    const { r, list } = await replicateAll(w, t, 2)
    const cid = list[0]!.cid
    expect((await r.queue.get(`cid:${cid}`))?.state).toBe('satisfied')
    const pieces = (await t.records.allPieces()).sort((a, b) => a.part!.index - b.part!.index)
    expect(pieces.map((p) => p.part?.of)).toEqual([4, 4, 4, 4])
    for (const p of pieces) expect(p.size).toBeLessThanOrEqual(2.5 * MiB)
    // Every part of one copy is in the same data set; the parts' leaves are the file.
    const byDataSet = new Map<string, number>()
    for (const p of pieces)
      for (const c of p.copies) byDataSet.set(c.dataSetId, (byDataSet.get(c.dataSetId) ?? 0) + 1)
    expect([...byDataSet.values()]).toEqual([4, 4])
    // The file's leaves, from its root node: every one in some part, in order (padding blocks aside).
    const blocks = new Map<string, Uint8Array>()
    for (const p of pieces) {
      const car = w.foc.providers.find((x) => x.pieces.has(p.pieceCid!))!.pieces.get(p.pieceCid!)!
      const it = await CarBlockIterator.fromBytes(car)
      expect((await it.getRoots()).map(String)).toEqual([cid])
      for await (const b of it) blocks.set(String(b.cid), b.bytes)
    }
    const root = dagPb.decode(blocks.get(cid)!)
    const leaves = root.Links.reduce((a, l) => a + blocks.get(String(l.Hash))!.length, 0)
    expect(leaves).toBe(big.length)
    let copies = (await new CopyStore(w.db).of(cid)).filter((c) => c.status === 'verified')
    expect(copies).toHaveLength(2)
    expect(copies[0]!.detail?.parts).toBe(4)
    expect(copies[0]!.retrieval).toHaveLength(5)
    // One part gone from one data set: that copy is not whole; the part is put back into the same data
    // set (the other parts are there), and the copy counts again.
    const ds = w.foc.dataSets.get(BigInt(copies[0]!.detail!.dataSetId as string))!
    const gone = ds.pieces[1]!
    gone.live = false
    await r.checkNow()
    await r.runOnce()
    expect(w.foc.uploadsOf(gone.pieceCid)).toBe(2)
    expect(ds.pieces.filter((p) => p.live && p.pieceCid === gone.pieceCid)).toHaveLength(1)
    copies = (await new CopyStore(w.db).of(cid)).filter((c) => c.status === 'verified')
    expect(copies.map((c) => c.holder).sort()).toEqual(
      [
        `filecoin:${ds.providerId}/${ds.id}`,
        copies.find((c) => c.detail?.dataSetId !== String(ds.id))!.holder,
      ].sort(),
    )
  }, 60_000)

  it('a data set terminated or overdue: its copies drop at the next re-check and the file is stored again elsewhere', async () => {
    w = await world({ 'pool/d.deb': randomBytes(200_000), 'pool/e.deb': randomBytes(100_000) })
    const t = await target(w, 2, { pack: { smallFile: MiB } })
    const { r, list } = await replicateAll(w, t, 2)
    const copies = new CopyStore(w.db)
    const cid = list[0]!.cid
    const before = (await copies.of(cid)).filter((c) => c.status === 'verified')
    expect(before).toHaveLength(2)
    const [x, y] = before.map((c) => w.foc.dataSets.get(BigInt(c.detail!.dataSetId as string))!)
    const holder = (d: { providerId: bigint; id: bigint }) => `filecoin:${d.providerId}/${d.id}`
    // y stops proving (overdue) while x's proofs go on: y's copy drops, and the file goes to the third
    // provider (y's still holds it: it is not asked again, and its copy is kept, uncounted, in case it proves again).
    w.foc.overdue([x!.id])
    await r.checkNow()
    await r.runOnce()
    let now = await copies.of(cid)
    expect(now.find((c) => c.holder === holder(y!))?.status).toBe('lost')
    let live = now.filter((c) => c.status === 'verified')
    expect(live).toHaveLength(2)
    const third = live.find((c) => c.holder !== holder(x!))!
    expect(new Set([third.detail?.provider, String(x!.providerId), String(y!.providerId)]).size).toBe(3)
    expect((await t.stats()).overdueProofs).toBe(1)
    // x is terminated: dropped, and stored again with its provider, in a new data set (the only one left).
    x!.live = false
    await r.checkNow()
    await r.runOnce()
    now = await copies.of(cid)
    expect(now.find((c) => c.holder === holder(x!))?.status).toBe('lost')
    live = now.filter((c) => c.status === 'verified')
    expect(live).toHaveLength(2)
    const again = live.find((c) => c.holder !== third.holder)!
    expect(again.detail?.provider).toBe(String(x!.providerId))
    expect(again.detail?.dataSetId).not.toBe(String(x!.id))
    expect((await r.queue.get(`cid:${cid}`))?.state).toBe('satisfied')
    expect(await t.stats()).toMatchObject({ pieces: 1, provenCopies: 2, overdueProofs: 1 })
  }, 60_000)
})

describe('a session key instead of the wallet key (fake chain, providers and session key registry)', () => {
  let w: World
  afterEach(async () => {
    w.foc.stop()
    await w.db.close()
    rmSync(w.dir, { recursive: true, force: true })
  })

  it('stores with a session key the wallet authorised; one without its permissions is refused', async () => {
    w = await world({ 'pool/s.deb': randomBytes(50_000) })
    const sessionKey = { privateKey: SESSION_KEY, wallet: WALLET }
    // Not authorised (expiry 0): refused before anything is stored.
    await expect(
      SynapseService.open({ network: 'calibration', source: 'cidmirror', sessionKey }),
    ).rejects.toThrow(/Session key does not have the required permissions/)
    w.foc.sessionKeyExpiry = BigInt(Math.floor(Date.now() / 1000) + 3600)
    const service = await SynapseService.open({ network: 'calibration', source: 'cidmirror', sessionKey })
    expect(service.address).toBe(WALLET)
    // The registry was asked about this session key for this wallet.
    expect(w.foc.sessionKeyChecks.at(-1)?.[0].toLowerCase()).toBe(WALLET.toLowerCase())
    expect(w.foc.sessionKeyChecks.at(-1)?.[1].toLowerCase()).toBe(
      privateKeyToAccount(SESSION_KEY).address.toLowerCase(),
    )
    const reader = new BlockReader(w.db)
    const t = new FilecoinTarget({
      name: 'foc',
      service,
      db: w.db,
      blocks: (c) => reader.get(c),
      copies: 2,
      statusTtlMs: 0,
      log,
    })
    const { r, list } = await replicateAll(w, t, 2)
    expect((await r.queue.get(`cid:${list[0]!.cid}`))?.state).toBe('satisfied')
    // The data sets are the wallet's (it pays); the session key only signed.
    for (const ds of w.foc.dataSets.values()) expect(ds.payer.toLowerCase()).toBe(WALLET.toLowerCase())
  }, 60_000)
})

describe('files that leave the mirror keep their pieces (fake chain and providers)', () => {
  let w: World
  afterEach(async () => {
    w.foc.stop()
    await w.db.close()
    rmSync(w.dir, { recursive: true, force: true })
  })

  it('a file deleted upstream stays an archived item, its pieces and copies kept, nothing uploaded again', async () => {
    w = await world({ 'pool/gone.deb': randomBytes(2 * MiB + 1), 'pool/keep.deb': randomBytes(4096) })
    const t = await target(w, 2, { pack: { smallFile: MiB } })
    const { r } = await replicateAll(w, t, 2)
    const gone = (await w.idx.get('pool/gone.deb'))!.cid
    const first = (await w.idx.lastScan())!.id
    const pieces = () =>
      [...w.foc.dataSets.values()].flatMap((d) => d.pieces.map((p) => p.metadata.ipfsRootCID))
    const before = pieces().sort()
    const uploads = () => w.foc.providers.reduce((a, p) => a + p.uploads, 0)
    const uploaded = uploads()

    rmSync(join(w.tree, 'pool/gone.deb'))
    const s = await w.idx.scan()
    const items = await archivedItems(w.idx, first, s.id)
    expect(items.map((i) => i.cid)).toEqual([gone])
    for (const i of items) await r.track(i)
    await r.checkNow()
    await r.runOnce()
    const e = await r.queue.get(`cid:${gone}`)
    expect(e?.item.archived).toBeDefined()
    expect(e?.state).toBe('satisfied')
    expect((await new CopyStore(w.db).of(gone)).filter((c) => c.status === 'verified')).toHaveLength(2)
    expect(pieces().sort()).toEqual(before)
    expect(uploads()).toBe(uploaded)

    // keep_archived applies to tree targets only: run out, the Filecoin copies stay and count.
    const expiring = new Replicator({
      db: w.db,
      counters: [t],
      policy: () => ({ n: 2 }),
      recheckMs: 3_600_000,
      keepArchivedMs: 0,
      log,
    })
    await expiring.checkNow()
    await expiring.runOnce()
    expect((await expiring.queue.get(`cid:${gone}`))?.state).toBe('satisfied')
    expect(pieces().sort()).toEqual(before)
    expect(uploads()).toBe(uploaded)
  }, 60_000)
})
