/**
 * Filecoin stores what left the disk before it was ever stored: the packer reads the leaves of a file
 * deleted from the tree through the gateway's fetch-back (the daemon's `fileBytesVia` over a real
 * `NetworkFetchBack`), each leaf hashed against its CID, from a real Kubo's gateway on 127.0.0.1; with
 * no source that has the right bytes (a loopback server sending wrong ones) the items wait, their
 * queue state and reason saying so, and nothing is uploaded. The real `@filoz/synapse-sdk`; THE
 * CHAIN AND THE STORAGE PROVIDERS ARE FAKES (test/helpers/fake-foc.ts, msw in this process).
 */
import { randomBytes } from 'node:crypto'
import { existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { CarBlockIterator } from '@ipld/car'
import * as dagPb from '@ipld/dag-pb'
import { CID } from 'multiformats/cid'
import pino from 'pino'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { formatFile } from '../src/cli/audit-format.ts'
import { fileBytesVia } from '../src/daemon/index.ts'
import { type Database, openDatabase } from '../src/db.ts'
import { createFetchBack } from '../src/gateway/index.ts'
import { BlockReader, CopyStore, mapBlocks, openMirrorIndex } from '../src/index/index.ts'
import {
  type AuditFile,
  archivedItems,
  auditMirror,
  type FileBytes,
  Replicator,
} from '../src/replicator/index.ts'
import { FakeFoc, focTarget } from './helpers/fake-foc.ts'
import { answerPlain, type Loopback, serve } from './helpers/fetch-sources.ts'
import { Kubo } from './helpers/kubo.ts'
import { tempDir } from './jobs-helpers.ts'

const MiB = 1024 * 1024
const log = pino({ level: process.env.FC_DEBUG ? 'debug' : 'silent' })

let tmp: ReturnType<typeof tempDir>
let kubo: Kubo
let liar: Loopback
let foc: FakeFoc
let db: Database

beforeAll(async () => {
  tmp = tempDir('cidmirror-fc-fetchback-')
  kubo = await Kubo.create({ parent: tmp.dir })
  await kubo.start()
  foc = new FakeFoc(3)
  foc.start()
}, 120_000)

afterAll(async () => {
  foc?.stop()
  await db?.close()
  await liar?.close()
  await kubo?.dispose()
  tmp?.cleanup()
})

describe('filecoin: files deleted before they were stored (fake chain and providers)', () => {
  it('wait while no source has their bytes, then are packed from the fetch-back, each leaf verified', async () => {
    const tree = join(tmp.dir, 'mirror')
    mkdirSync(join(tree, 'pool'), { recursive: true })
    const bytes = {
      // Three leaves (1 MiB chunks), and a one-chunk file that shares its piece with one still here.
      'pool/gone.deb': randomBytes(2 * MiB + 7),
      'pool/tiny.deb': randomBytes(3000),
      'pool/keep.deb': randomBytes(4000),
      // Deleted too: its one (empty) block needs no source.
      'pool/empty.deb': Buffer.alloc(0),
    }
    for (const [rel, b] of Object.entries(bytes)) writeFileSync(join(tree, rel), b)
    db = await openDatabase(join(tmp.dir, 'db'))
    const idx = openMirrorIndex(db, 'debian', tree)
    const first = await idx.scan()
    await mapBlocks(db, 'debian', tree, { since: 0 })
    const files: { cid: string; size: number; mirror: string; path: string }[] = []
    for await (const r of idx.records())
      if (r.kind === 'file') files.push({ cid: r.cid, size: r.size, mirror: 'debian', path: r.path })
    const cidOf = (p: string) => files.find((f) => f.path === p)!.cid
    // The real Kubo holds the two files that are about to leave (the same CIDs as the index).
    for (const p of ['pool/gone.deb', 'pool/tiny.deb'])
      expect((await kubo.ok(['add', '-Q', '--cid-version=1', join(tree, p)])).trim()).toBe(cidOf(p))

    // A source that answers every file with bytes of its length that are not its bytes.
    const wrong = new Map(files.map((f) => [f.cid, randomBytes(f.size)]))
    liar = await serve((req, res) =>
      answerPlain(req, res, wrong.get(/\/ipfs\/([^/?]+)/.exec(req.url ?? '')?.[1] ?? '') ?? Buffer.alloc(0)),
    )
    let reader: FileBytes | undefined
    const blocks = new BlockReader(db)
    const t = await focTarget(db, { fileBytes: () => reader, pack: { smallFile: MiB }, log })
    // Planned when their scan committed, as the daemon does; their first uploads refused (their
    // PieceCIDs computed from the disk, their intents recorded); then deleted upstream.
    expect(await t.plan(files)).toBe(2)
    const r = new Replicator({ db, counters: [t], policy: () => ({ n: 2 }), recheckMs: 3_600_000, log })
    for (const f of files) await r.track({ scope: 'entity', cid: f.cid, mirror: 'debian', bytes: f.size })
    foc.refuseUploads = true
    await r.runOnce()
    for (const f of files) expect((await r.queue.get(`cid:${f.cid}`))?.state).toBe('failing')
    expect((await t.records.allPieces()).every((p) => p.uploading !== undefined)).toBe(true)
    foc.refuseUploads = false
    rmSync(join(tree, 'pool/gone.deb'))
    rmSync(join(tree, 'pool/tiny.deb'))
    rmSync(join(tree, 'pool/empty.deb'))
    const second = await idx.scan()
    const archived = await archivedItems(idx, first.id, second.id)
    expect(archived.map((i) => i.cid).sort()).toEqual(
      ['pool/gone.deb', 'pool/tiny.deb', 'pool/empty.deb'].map(cidOf).sort(),
    )
    for (const i of archived) await r.track(i)
    const uploads = () => foc.providers.reduce((a, p) => a + p.uploads, 0)

    // No fetch-back, then one whose only source sends wrong bytes: the two deleted files wait and
    // nothing of theirs goes; keep.deb, which shared its piece with tiny.deb, goes on without it.
    for (const [why, now] of [
      ['no fetch-back runs', undefined],
      [
        'the fetch-back could not get them',
        fileBytesVia(createFetchBack({ rootOf: () => tree, gateways: [liar.url], nodes: blocks })),
      ],
    ] as const) {
      reader = now
      await r.checkNow()
      await r.runOnce()
      for (const p of ['pool/gone.deb', 'pool/tiny.deb']) {
        const e = await r.queue.get(`cid:${cidOf(p)}`)
        expect(e?.state, `${p}: ${e?.reason}`).toBe('waiting')
        expect(e?.reason).toContain(`${p} is not on this disk`)
        expect(e?.reason).toContain(why)
      }
      for (const p of ['pool/keep.deb', 'pool/empty.deb']) {
        const e = await r.queue.get(`cid:${cidOf(p)}`)
        expect(e?.state, `${p}: ${e?.reason}`).toBe('satisfied')
      }
      expect(uploads()).toBe(1)
    }
    expect((await r.queue.counts()).waiting).toBe(2)
    expect(liar.requests.length).toBeGreaterThan(0)
    // The audit shows it, with the block and why.
    const audited: AuditFile[] = []
    await auditMirror(db, idx, { n: 2 }, { filter: { archive: true }, onFile: (f) => audited.push(f) })
    const tiny = audited.find((f) => f.path === 'pool/tiny.deb')!
    expect(tiny.queue?.state).toBe('waiting')
    expect(formatFile({ type: 'file', ...tiny })).toMatch(
      /queue: waiting: .*pool\/tiny\.deb is not on this disk/,
    )

    // The fetch-back reaches the real Kubo: every file is stored, from leaves hashed on the way.
    reader = fileBytesVia(
      createFetchBack({ rootOf: () => tree, gateways: [liar.url, kubo.gateway], nodes: blocks }),
    )
    await r.checkNow()
    await r.runOnce()
    for (const p of Object.keys(bytes)) {
      const e = await r.queue.get(`cid:${cidOf(p)}`)
      expect(e?.state, `${p}: ${e?.reason}`).toBe('satisfied')
      expect((await new CopyStore(db).of(cidOf(p))).filter((c) => c.status === 'verified')).toHaveLength(2)
    }
    expect(uploads()).toBe(3)
    // What the providers hold rebuilds each file's bytes, from its root in the piece's CAR.
    let rebuilt = 0
    for (const piece of await t.records.allPieces()) {
      const car = foc.providers.find((p) => p.pieces.has(piece.pieceCid!))!.pieces.get(piece.pieceCid!)!
      const blocksIn = new Map<string, Uint8Array>()
      for await (const b of await CarBlockIterator.fromBytes(car)) blocksIn.set(String(b.cid), b.bytes)
      const bytesOf = (cid: CID): Buffer =>
        cid.code === 0x55
          ? Buffer.from(blocksIn.get(String(cid))!)
          : Buffer.concat(dagPb.decode(blocksIn.get(String(cid))!).Links.map((l) => bytesOf(l.Hash)))
      for (const f of piece.files) {
        expect(bytesOf(CID.parse(f.cid)).equals(bytes[f.path as keyof typeof bytes]), f.path).toBe(true)
        rebuilt++
      }
    }
    expect(rebuilt).toBe(4)
    // Fetched for the packer only: the tree and the index still say the files are gone.
    expect(existsSync(join(tree, 'pool/gone.deb'))).toBe(false)
    expect((await idx.get('pool/gone.deb'))?.state).toBe('deleted')
  }, 180_000)

  it('a file split across pieces is read part by part, each part from its first leaf on', async () => {
    const tree = join(tmp.dir, 'split')
    mkdirSync(join(tree, 'iso'), { recursive: true })
    const big = randomBytes(5 * MiB + 3)
    writeFileSync(join(tree, 'iso/big.iso'), big)
    const db2 = await openDatabase(join(tmp.dir, 'db-split'))
    try {
      const idx = openMirrorIndex(db2, 'iso', tree)
      const first = await idx.scan()
      await mapBlocks(db2, 'iso', tree, { since: 0 })
      const rec = (await idx.get('iso/big.iso'))!
      expect((await kubo.ok(['add', '-Q', '--cid-version=1', join(tree, 'iso/big.iso')])).trim()).toBe(
        rec.cid,
      )
      const blocks = new BlockReader(db2)
      const asked: number[] = []
      const via = fileBytesVia(
        createFetchBack({ rootOf: () => tree, gateways: [kubo.gateway], nodes: blocks }),
      )
      const t = await focTarget(db2, {
        // The service's limit is 1,065,353,216 bytes; the same rule with 2.5 MiB keeps the test small.
        pack: { maxPieceBytes: 2.5 * MiB },
        fileBytes: () => (f, start, signal) => {
          asked.push(start)
          return via(f, start, signal)
        },
        log,
      })
      expect(await t.plan([{ cid: rec.cid, size: rec.size, mirror: 'iso', path: 'iso/big.iso' }])).toBe(4)
      rmSync(join(tree, 'iso/big.iso'))
      const second = await idx.scan()
      const [item] = await archivedItems(idx, first.id, second.id)
      const r = new Replicator({
        db: db2,
        counters: [t],
        policy: () => ({ n: 2 }),
        recheckMs: 3_600_000,
        log,
      })
      await r.track(item!)
      await r.runOnce()
      const e = await r.queue.get(`cid:${rec.cid}`)
      expect(e?.state, e?.reason).toBe('satisfied')
      // Each part's stream starts at the part's first leaf (the root's part at 0), never before.
      const pieces = (await t.records.allPieces()).sort((a, b) => a.part!.index - b.part!.index)
      expect(pieces.map((p) => p.part?.of)).toEqual([4, 4, 4, 4])
      // Parts of 2 blocks, depth first: [root, leaf 0], [leaf 1, leaf 2], [leaf 3, leaf 4], [leaf 5].
      expect(asked).toEqual([0, 1 * MiB, 3 * MiB, 5 * MiB])
      // The parts' leaves, from the root node, rebuild the file.
      const blocksIn = new Map<string, Uint8Array>()
      for (const p of pieces) {
        const car = foc.providers.find((x) => x.pieces.has(p.pieceCid!))!.pieces.get(p.pieceCid!)!
        for await (const b of await CarBlockIterator.fromBytes(car)) blocksIn.set(String(b.cid), b.bytes)
      }
      const root = dagPb.decode(blocksIn.get(rec.cid)!)
      expect(Buffer.concat(root.Links.map((l) => blocksIn.get(String(l.Hash))!)).equals(big)).toBe(true)
    } finally {
      await db2.close()
    }
  }, 180_000)
})
