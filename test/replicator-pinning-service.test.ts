/**
 * The Pinning Service API target against `mock-ipfs-pinning-service` on loopback, a stand-in for a
 * real service (Pinata, Filebase): it speaks the API (validated against the spec's OpenAPI document)
 * but pins nothing itself, so the test plays the service's back end: a real Kubo (P) fetches the tree
 * from the origins we sent and the test then marks the pin `pinned`. The mock's default delegates are
 * fake public addresses; it is given P's loopback address instead. The service's word "pinned" counts
 * as verified only when a retrieval probe of P's gateway returns bytes that hash to the CID.
 */
import { randomBytes } from 'node:crypto'
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
// @ts-expect-error the package ships JSDoc-typed CommonJS without declarations; typed below
import mock from 'mock-ipfs-pinning-service'
import pino from 'pino'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type Database, openDatabase } from '../src/db.ts'
import { type MirrorIndex, openMirrorIndex } from '../src/index/index.ts'
import { KuboNode } from '../src/ipfs/index.ts'
import {
  PinningServiceTarget,
  type PinningServiceTargetOptions,
  publishMirror,
  type QueueEntry,
  Replicator,
} from '../src/replicator/index.ts'
import { disposeAll, Kubo } from './helpers/kubo.ts'

interface MockPin {
  requestid: string
  status: string
  pin: { cid: string; name?: string; origins?: string[] }
}
interface MockState {
  pins: Map<string, MockPin>
}
interface MockApp {
  locals: { state: MockState }
  listen(port: number, host: string, cb: () => void): Server
}
const setup = mock.setup as unknown as (o: {
  token: string
  delegates: string
  loglevel: string
}) => Promise<MockApp>

const TOKEN = 'secret-token'
let dir: string
let tree: string
let db: Database
let idx: MirrorIndex
let kubos: Kubo[]
let a: KuboNode
let app: MockApp
const servers: Server[] = []
let endpoint: string
let wrongGateway: string
let serviceNode: { id: string; address: string }
const log = pino({ level: 'silent' })

function write(rel: string, data: string | Uint8Array): void {
  const p = join(tree, rel)
  mkdirSync(join(p, '..'), { recursive: true })
  writeFileSync(p, data)
}

async function listen(s: Server | MockApp): Promise<string> {
  const server = await new Promise<Server>((resolve) => {
    const srv: Server = s.listen(0, '127.0.0.1', () => resolve(srv))
  })
  servers.push(server)
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`
}

function target(o: Partial<PinningServiceTargetOptions> = {}): PinningServiceTarget {
  return new PinningServiceTarget({
    name: 'psa',
    endpoint,
    token: TOKEN,
    origins: async () => (await a.id()).addresses,
    connect: (addr, signal) => a.connect(addr, { signal }),
    ...o,
  })
}

function replicator(t: PinningServiceTarget): Replicator {
  return new Replicator({
    db,
    counters: [t],
    policy: () => ({ n: 1 }),
    recheckMs: 3_600_000,
    backoff: { baseMs: 60_000, maxMs: 600_000 },
    log,
  })
}

/** The service's back end at work: P pins the CID, fetching from the origins, then says "pinned". */
async function serviceFinishes(cid: string): Promise<void> {
  const p = app.locals.state.pins.get(cid)
  if (!p) throw new Error(`the service has no pin of ${cid}`)
  for (const o of p.pin.origins ?? []) await kubos[1]!.run(['swarm', 'connect', o])
  await kubos[1]!.ok(['pin', 'add', '--progress=false', cid])
  app.locals.state.pins.set(cid, { ...p, status: 'pinned' })
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'cidmirror-repl-psa-'))
  tree = join(dir, 'mirror')
  write('pool/a.deb', randomBytes(1024 * 1024 + 5))
  write('dists/stable/Release', 'Suite: stable\n')
  db = await openDatabase(join(dir, 'db'))
  idx = openMirrorIndex(db, 'debian', tree)
  // A is our node, P the service's; they meet only through the origins and the delegates.
  kubos = await Kubo.swarm(2, { parent: dir, filestore: true, connect: false })
  a = new KuboNode({ api: kubos[0]!.api, local: true })
  const p = await kubos[1]!.peer()
  serviceNode = { id: p.id, address: p.addresses.find((x) => x.startsWith('/ip4/127.0.0.1/tcp/'))! }
  app = await setup({ token: TOKEN, delegates: serviceNode.address, loglevel: 'error' })
  endpoint = await listen(app)
  // A gateway that answers every block with the wrong bytes.
  wrongGateway = await listen(
    createServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/vnd.ipld.raw' })
      res.end(randomBytes(64))
    }),
  )
}, 180_000)

afterAll(async () => {
  for (const s of servers) s.close()
  await a?.close()
  await disposeAll(kubos ?? [])
  await db?.close()
  rmSync(dir, { recursive: true, force: true })
})

describe('Pinning Service API target (mock-ipfs-pinning-service as a stand-in)', () => {
  let root: string

  it('POSTs /pins with our node addresses as origins, and connects to the delegates', async () => {
    const s = await idx.scan()
    await publishMirror(db, idx, a, { since: s.id })
    root = s.rootCid
    const r = replicator(target())
    await r.track({ scope: 'tree', cid: root, mirror: 'debian', scan: s.id })
    await r.runOnce()
    const e = (await r.queue.get('tree:debian')) as QueueEntry
    expect(e.state).toBe('under-replicated')
    const pin = app.locals.state.pins.get(root)
    expect(pin?.status).toBe('queued')
    expect(pin?.pin.name).toBe('cidmirror:debian')
    expect(new Set(pin?.pin.origins)).toEqual(new Set((await a.id()).addresses))
    // Our node dialled the delegate the service named (P's loopback address).
    const peers = await kubos[0]!.ok(['swarm', 'peers'])
    expect(peers).toContain(serviceNode.id)
    const copies = await r.copies.trees('debian')
    expect(copies.map((c) => [c.holder, c.status])).toEqual([[`psa:${endpoint}`, 'pending']])
    // The delegates are kept with the copy: the fetch-back dials them before asking our node.
    expect(copies[0]?.detail?.delegates).toBe(serviceNode.address)
    await r.stop()
  })

  it('a wrong token is refused with the service reason, as a target failure', async () => {
    const t = target({ token: 'wrong' })
    await expect(
      t.check(
        { key: 'tree:debian', scope: 'tree', cid: root, mirror: 'debian' },
        { signal: AbortSignal.timeout(30_000) },
      ),
    ).rejects.toThrow(/401|Unauthorized|token/i)
  })

  it('"pinned" without a probe gateway stays announced: not counted toward n', async () => {
    await serviceFinishes(root)
    const r = replicator(target())
    await r.checkNow()
    await r.runOnce()
    const e = (await r.queue.get('tree:debian')) as QueueEntry
    expect(e.state).toBe('under-replicated')
    expect(e.verified).toBe(0)
    const [copy] = await r.copies.trees('debian')
    expect(copy).toMatchObject({ status: 'announced', how: 'pinning-service:pinned' })
    await r.stop()
  })

  it('a probe gateway returning wrong bytes keeps it announced', async () => {
    const r = replicator(target({ gateway: wrongGateway }))
    await r.checkNow()
    await r.runOnce()
    expect(((await r.queue.get('tree:debian')) as QueueEntry).state).toBe('under-replicated')
    const [copy] = await r.copies.trees('debian')
    expect(copy?.status).toBe('announced')
    expect(copy?.how).toMatch(/probe failed: the bytes do not hash to the CID/)
    await r.stop()
  })

  it('becomes verified when the probe gateway (the service node, on loopback) returns the right bytes', async () => {
    const r = replicator(target({ gateway: kubos[1]!.gateway }))
    await r.checkNow()
    await r.runOnce()
    const e = (await r.queue.get('tree:debian')) as QueueEntry
    expect(e.state).toBe('satisfied')
    expect(e.verified).toBe(1)
    const [copy] = await r.copies.trees('debian')
    expect(copy).toMatchObject({ status: 'verified', how: 'retrieval-probe', holder: `psa:${endpoint}` })
    expect(copy?.retrieval).toEqual([`${kubos[1]!.gateway}/ipfs/${root}`])
    await r.stop()
  })

  it('a new root replaces the previous pin object (the API pin update), not a second pin', async () => {
    write('pool/new.deb', randomBytes(4096))
    const s = await idx.scan()
    await publishMirror(db, idx, a, { since: s.id })
    const r = replicator(target({ gateway: kubos[1]!.gateway }))
    await r.track({ scope: 'tree', cid: s.rootCid, mirror: 'debian', scan: s.id })
    await r.runOnce()
    const pins = [...app.locals.state.pins.values()].map((p) => p.pin.cid)
    expect(pins).toEqual([s.rootCid])
    await serviceFinishes(s.rootCid)
    await r.checkNow()
    await r.runOnce()
    expect(((await r.queue.get('tree:debian')) as QueueEntry).state).toBe('satisfied')
    await r.stop()
  })
})
