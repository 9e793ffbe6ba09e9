/**
 * Copies of a file someone else stored on Filecoin, and IPNI records. THE CHAIN AND THE STORAGE
 * PROVIDERS ARE FAKES (test/helpers/fake-foc.ts: `@filoz/synapse-core/mocks` over msw, with an
 * `eth_getLogs` handler written for the `PieceAdded` scan); the IPNI endpoint is a loopback server
 * replaying a recorded cid.contact answer; the SDK and the delegated routing client are real.
 */
import { randomBytes } from 'node:crypto'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Writable } from 'node:stream'
import { CID } from 'multiformats/cid'
import pino from 'pino'
import { afterEach, describe, expect, it } from 'vitest'
import { cidOfFile, exportCar } from '../src/cid/index.ts'
import { type Database, openDatabase } from '../src/db.ts'
import { CopyStore, mapBlocks, openMirrorIndex } from '../src/index/index.ts'
import { IpniCounter, Replicator } from '../src/replicator/index.ts'
import { FakeFoc, focTarget } from './helpers/fake-foc.ts'

const log = pino({ level: 'silent' })
// Any well-formed PieceCIDs for the others' pieces (the fakes do not recompute them).
const PIECE_A = 'bafkzcibcd4bdomn3tgwgrh3g532zopskstnbrd2n3sxfqbze7rxt7vqn7veigmy'
const PIECE_B = 'bafkzcibeqcad6efnpwn62p5vvs5x3nh3j7xkzfgb3xtitcdm2hulmty3xx4tl3wace'

async function carOf(path: string): Promise<Uint8Array> {
  const chunks: Buffer[] = []
  const sink = new Writable({
    write(c, _e, cb) {
      chunks.push(Buffer.from(c))
      cb()
    },
  })
  await exportCar(path, sink)
  return Buffer.concat(chunks)
}

describe('copies someone else stored, found through PieceAdded (fake chain and providers)', () => {
  let dir: string
  let db: Database
  let foc: FakeFoc
  afterEach(async () => {
    foc.stop()
    await db.close()
    rmSync(dir, { recursive: true, force: true })
  })

  it('are counted once checked: live, proving, and a retrieval probe of the block from the provider', async () => {
    dir = mkdtempSync(join(tmpdir(), 'cidmirror-fco-'))
    const tree = join(dir, 'mirror')
    const { mkdirSync } = await import('node:fs')
    mkdirSync(tree)
    writeFileSync(join(tree, 'x.deb'), randomBytes(5000))
    writeFileSync(join(tree, 'y.deb'), randomBytes(7000))
    db = await openDatabase(join(dir, 'db'))
    await openMirrorIndex(db, 'deb', tree).scan()
    await mapBlocks(db, 'deb', tree)
    const x = (await cidOfFile(join(tree, 'x.deb'))).cid.toString()
    const y = (await cidOfFile(join(tree, 'y.deb'))).cid.toString()
    foc = new FakeFoc(3)
    foc.start()
    const from = foc.head
    // Someone else's data set on provider 2 holds x (its bytes there); provider 3 claims y without them.
    foc.addOthersPiece(2n, x, await carOf(join(tree, 'x.deb')), PIECE_A)
    foc.addOthersPiece(3n, y, await carOf(join(tree, 'x.deb')), PIECE_B)
    const t = await focTarget(db, { source: 'cidmirror', copies: 1, scanFromBlock: from, log })
    const r = new Replicator({ db, counters: [t], policy: () => ({ n: 1 }), recheckMs: 3_600_000, log })
    await r.track({ scope: 'entity', cid: x, mirror: 'deb', bytes: 5000 })
    await r.track({ scope: 'entity', cid: y, mirror: 'deb', bytes: 7000 })
    await r.runOnce()
    const copies = new CopyStore(db)
    // x: the other copy is verified (PDP live, proof not overdue, the block probed): nothing uploaded.
    const xs = await copies.of(x)
    expect(xs).toHaveLength(1)
    expect(xs[0]).toMatchObject({
      kind: 'filecoin',
      status: 'verified',
      how: 'pdp+retrieval-probe',
      holder: 'filecoin:2/1',
    })
    expect(xs[0]!.detail).toMatchObject({ dataSetId: '1', pieceId: '0', pieceCid: PIECE_A, provider: '2' })
    expect((await r.queue.get(`cid:${x}`))?.state).toBe('satisfied')
    // y: provider 3's record is only announced (its probe fails); we stored y ourselves.
    const ys = await copies.of(y)
    const theirs = ys.find((c) => c.how === 'piece-added')!
    expect(theirs).toMatchObject({ status: 'announced', holder: 'filecoin:3/2' })
    expect(theirs.error).toMatch(/retrieval probe: HTTP 404/)
    expect(ys.filter((c) => c.status === 'verified' && c.how === 'pdp')).toHaveLength(1)
    expect(foc.providers.reduce((a, p) => a + p.uploads, 0)).toBe(1)
    // The scan is incremental: the second starts at the block after the first one's end.
    const first = foc.getLogsCalls.length
    expect(foc.getLogsCalls[0]![0]).toBe(from)
    const late = foc.addOthersPiece(1n, y, await carOf(join(tree, 'y.deb')), PIECE_B)
    await r.checkNow()
    await r.runOnce()
    expect(foc.getLogsCalls.length).toBeGreaterThan(first)
    expect(foc.getLogsCalls[first]![0]).toBe(foc.getLogsCalls[first - 1]![1] + 1n)
    const again = await copies.of(y)
    expect(again.find((c) => c.holder === `filecoin:1/${late.id}`)).toMatchObject({
      status: 'verified',
      how: 'pdp+retrieval-probe',
    })
  }, 60_000)
})

/** The PieceCID in graphsync metadata, read by hand: varint 0x0910, a CBOR map, `PieceCID` tag 42 bytes. */
function pieceCidOf(b64: string): string {
  const raw = Buffer.from(b64, 'base64')
  const at = raw.indexOf(Buffer.from('PieceCID')) + 'PieceCID'.length
  expect([...raw.subarray(at, at + 3)]).toEqual([0xd8, 0x2a, 0x58])
  const len = raw[at + 3]!
  return CID.decode(raw.subarray(at + 5, at + 4 + len)).toString()
}

describe('IPNI records (a loopback server replaying a recorded cid.contact answer)', () => {
  const servers: Server[] = []
  let dir: string
  afterEach(async () => {
    for (const s of servers.splice(0)) await new Promise((r) => s.close(r))
    rmSync(dir, { recursive: true, force: true })
  })

  async function listen(handler: Parameters<typeof createServer>[1]): Promise<number> {
    const s = createServer(handler)
    servers.push(s)
    await new Promise<void>((r) => s.listen(0, '127.0.0.1', r))
    return (s.address() as AddressInfo).port
  }

  it('gateway-http and graphsync-filecoinv1 records, metadata decoded; only a successful probe verifies', async () => {
    dir = mkdtempSync(join(tmpdir(), 'cidmirror-ipni-'))
    const bytes = randomBytes(3000)
    writeFileSync(join(dir, 'f'), bytes)
    const cid = (await cidOfFile(join(dir, 'f'))).cid.toString()
    // A provider gateway that serves the block, and one that answers with other bytes.
    const good = await listen((req, res) => {
      if (req.url?.startsWith(`/ipfs/${cid}`)) res.end(bytes)
      else res.writeHead(404).end()
    })
    const bad = await listen((_req, res) => res.end(randomBytes(3000)))
    const recorded = JSON.parse(
      readFileSync(join(import.meta.dirname, 'fixtures', 'ipni-providers.json'), 'utf8'),
    )
    const providers = recorded.Providers as Record<string, unknown>[]
    const gatewayRecord = providers[1]!
    const answer = {
      Providers: [
        providers[0],
        { ...gatewayRecord, Addrs: [`/ip4/127.0.0.1/tcp/${good}/http`] },
        {
          ...gatewayRecord,
          ID: '12D3KooWDMJSprsuxhjJVnuQQcyibc5GxanUUxpDzHU74rhknqkU',
          Addrs: [`/ip4/127.0.0.1/tcp/${bad}/http`],
        },
        providers[2],
      ],
    }
    const asked: string[] = []
    const ipni = await listen((req, res) => {
      asked.push(req.url ?? '')
      res.setHeader('content-type', 'application/json')
      res.end(JSON.stringify(answer))
    })
    const counter = new IpniCounter({ name: 'ipni', endpoints: [`http://127.0.0.1:${ipni}`] })
    try {
      const item = { key: `cid:${cid}`, scope: 'entity' as const, cid }
      const recs = await counter.check(item, { signal: AbortSignal.timeout(30_000) })
      expect(asked[0]).toBe(`/routing/v1/providers/${cid}`)
      // The bitswap record is not a Filecoin copy; the three others are listed once each.
      expect(recs).toHaveLength(3)
      const byId = (id: string) => recs.find((r) => r.holder === `ipni:${id}`)!
      expect(byId('12D3KooWHEzPJNmo4shWendFFrxDNttYf8DW4eLC7M2JzuXHC1hE')).toMatchObject({
        kind: 'filecoin',
        status: 'verified',
        how: 'ipni+retrieval-probe',
        retrieval: [`http://127.0.0.1:${good}/ipfs/${cid}`],
      })
      const wrong = byId('12D3KooWDMJSprsuxhjJVnuQQcyibc5GxanUUxpDzHU74rhknqkU')
      expect(wrong).toMatchObject({ status: 'announced', how: 'ipni' })
      expect(wrong.error).toMatch(/do not hash to the CID|not the CID|hash/)
      const gs = byId('12D3KooWHKChM2uYi4EXREaCGtaxersCsp7hbFiMqMUK8o7CgV6Q')
      expect(gs).toMatchObject({ status: 'announced', how: 'ipni' })
      expect(gs.detail).toMatchObject({
        protocols: 'transport-graphsync-filecoinv1',
        pieceCid: pieceCidOf(providers[2]!['transport-graphsync-filecoinv1'] as string),
        verifiedDeal: true,
        fastRetrieval: true,
      })
    } finally {
      await counter.close()
    }
  })
})
