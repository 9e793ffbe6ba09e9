/**
 * The provider-record counter against real Kubo daemons on loopback and a loopback Delegated Routing
 * V1 server replaying recorded `/routing/v1/providers` answers (the spec's peer schema: bitswap and
 * gateway-http records), read by the real `@helia/delegated-routing-v1-http-api-client`. A is our node
 * (its record is left out), P is a second Kubo that pinned the tree: its gateway-http record points at
 * P's real gateway, so the root and the sampled files probe right and it is verified. A record whose
 * gateway fails, one whose gateway answers the root but not the files, and a bitswap-only record stay
 * announced. The local node's own routing (`findProviders`) finds P too.
 */
import { randomBytes } from 'node:crypto'
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { base58btc } from 'multiformats/bases/base58'
import { identity } from 'multiformats/hashes/identity'
import pino from 'pino'
import { request } from 'undici'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type Database, openDatabase } from '../src/db.ts'
import { type MirrorIndex, openMirrorIndex } from '../src/index/index.ts'
import { KuboNode } from '../src/ipfs/index.ts'
import {
  indexSampler,
  ProviderCounter,
  type ProviderCounterOptions,
  publishMirror,
  type QueueEntry,
  type ReplicationItem,
  Replicator,
} from '../src/replicator/index.ts'
import { disposeAll, Kubo } from './helpers/kubo.ts'

let dir: string
let tree: string
let db: Database
let idx: MirrorIndex
let kubos: Kubo[]
let a: KuboNode
let root: string
let item: ReplicationItem
const servers: Server[] = []
let routing: string
const answers = new Map<string, object[]>()
const routingHits: string[] = []
const ids = {
  a: '',
  p: '',
  failing: fakePeerId(),
  rootOnly: fakePeerId(),
  bitswap: fakePeerId(),
  local: fakePeerId(),
}
const log = pino({ level: 'silent' })

/** An Ed25519 peer id as Kubo prints it (identity multihash of the protobuf public key). */
function fakePeerId(): string {
  const key = Buffer.concat([Buffer.from([0x08, 0x01, 0x12, 0x20]), randomBytes(32)])
  return base58btc.baseEncode(identity.digest(key).bytes)
}

function write(rel: string, data: string | Uint8Array): void {
  const p = join(tree, rel)
  mkdirSync(join(p, '..'), { recursive: true })
  writeFileSync(p, data)
}

async function listen(s: Server): Promise<string> {
  await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', () => resolve()))
  servers.push(s)
  return `http://127.0.0.1:${(s.address() as AddressInfo).port}`
}

const port = (url: string) => new URL(url).port

function counter(o: Partial<ProviderCounterOptions> = {}): ProviderCounter {
  return new ProviderCounter({
    name: 'providers',
    node: a,
    endpoints: [routing],
    localPeers: [ids.local],
    sample: indexSampler((m) => (m === 'debian' ? idx : undefined)),
    sampleSize: 3,
    ...o,
  })
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'cidmirror-repl-providers-'))
  tree = join(dir, 'mirror')
  write('pool/a.deb', randomBytes(2 * 1024 * 1024 + 3))
  write('pool/b.deb', randomBytes(5000))
  write('pool/c.deb', randomBytes(300))
  write('dists/stable/Release', 'Suite: stable\n')
  db = await openDatabase(join(dir, 'db'))
  idx = openMirrorIndex(db, 'debian', tree)
  kubos = await Kubo.swarm(2, { parent: dir, filestore: true })
  a = new KuboNode({ api: kubos[0]!.api, local: true })
  const s = await idx.scan()
  await publishMirror(db, idx, a, { since: s.id })
  root = s.rootCid
  item = { key: 'tree:debian', scope: 'tree', cid: root, mirror: 'debian', scan: s.id }
  // P holds the whole tree (fetched from A) and announces it.
  const P = kubos[1]!
  await P.ok(['pin', 'add', '--progress=false', root])
  ids.a = (await kubos[0]!.peer()).id
  const pPeer = await P.peer()
  ids.p = pPeer.id
  const pSwarm = pPeer.addresses.find((x) => x.startsWith('/ip4/127.0.0.1/tcp/'))!

  const failing = await listen(
    createServer((_req, res) => {
      res.writeHead(502)
      res.end('bad gateway')
    }),
  )
  // Answers the root block (from P's gateway) and nothing else: a holder that lost the tree.
  const rootOnly = await listen(
    createServer(async (req, res) => {
      if (!req.url?.startsWith(`/ipfs/${root}`)) {
        res.writeHead(404)
        res.end()
        return
      }
      const r = await request(`${P.gateway}${req.url}`, { headers: { accept: 'application/vnd.ipld.raw' } })
      res.writeHead(r.statusCode, { 'content-type': 'application/vnd.ipld.raw' })
      res.end(Buffer.from(await r.body.arrayBuffer()))
    }),
  )
  // Recorded answers, in the spec's shape (https://specs.ipfs.tech/routing/http-routing-v1/).
  answers.set(root, [
    { Schema: 'peer', ID: ids.p, Addrs: [pSwarm], Protocols: ['transport-bitswap'] },
    {
      Schema: 'peer',
      ID: ids.p,
      Addrs: [`/ip4/127.0.0.1/tcp/${port(P.gateway)}/http`],
      Protocols: ['transport-ipfs-gateway-http'],
    },
    {
      Schema: 'peer',
      ID: ids.failing,
      Addrs: [`/ip4/127.0.0.1/tcp/${port(failing)}/http`],
      Protocols: ['transport-ipfs-gateway-http'],
    },
    {
      Schema: 'peer',
      ID: ids.rootOnly,
      Addrs: [`/ip4/127.0.0.1/tcp/${port(rootOnly)}/http`],
      Protocols: ['transport-ipfs-gateway-http'],
    },
    {
      Schema: 'peer',
      ID: ids.bitswap,
      Addrs: ['/ip4/198.51.100.7/tcp/4001', '/ip4/198.51.100.7/udp/4001/quic-v1'],
      Protocols: ['transport-bitswap'],
    },
    { Schema: 'peer', ID: ids.a, Addrs: ['/ip4/127.0.0.1/tcp/4001'], Protocols: ['transport-bitswap'] },
    { Schema: 'peer', ID: ids.local, Addrs: ['/ip4/127.0.0.1/tcp/4002'], Protocols: ['transport-bitswap'] },
  ])
  routing = await listen(
    createServer((req, res) => {
      const m = /^\/routing\/v1\/providers\/([^/?]+)/.exec(req.url ?? '')
      const records = m ? answers.get(m[1]!) : undefined
      if (!records) {
        res.writeHead(404)
        res.end()
        return
      }
      routingHits.push(m![1]!)
      if (req.headers.accept?.includes('application/x-ndjson')) {
        res.writeHead(200, { 'content-type': 'application/x-ndjson' })
        res.end(records.map((r) => `${JSON.stringify(r)}\n`).join(''))
      } else {
        res.writeHead(200, { 'content-type': 'application/json' })
        res.end(JSON.stringify({ Providers: records }))
      }
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

describe('provider-record counter', () => {
  it('delegated routing records: announced copies, verified only by a probe of the root and sampled files', async () => {
    const c = counter()
    const copies = await c.check(item, { signal: AbortSignal.timeout(60_000) })
    await c.close()
    expect(routingHits).toContain(root)
    const by = new Map(copies.map((x) => [x.holder, x]))
    // Ours and the local peer are not copies off this disk.
    expect([...by.keys()].sort()).toEqual(
      [ids.p, ids.failing, ids.rootOnly, ids.bitswap].map((id) => `ipfs:${id}`).sort(),
    )
    expect(by.get(`ipfs:${ids.p}`)).toMatchObject({
      status: 'verified',
      how: 'retrieval-probe',
      kind: 'ipfs-provider',
      retrieval: [`${kubos[1]!.gateway}/ipfs/${root}`],
    })
    expect(by.get(`ipfs:${ids.failing}`)).toMatchObject({ status: 'announced', how: 'provider-record' })
    expect(by.get(`ipfs:${ids.failing}`)?.error).toMatch(/HTTP 502/)
    // The root probed right, a sampled file did not.
    const ro = by.get(`ipfs:${ids.rootOnly}`)
    expect(ro?.status).toBe('announced')
    expect(ro?.error).toMatch(/HTTP 404/)
    expect(ro?.error).not.toContain(`${root}:`)
    // A bitswap-only record offers no HTTP to probe: announced, with nothing tried.
    expect(by.get(`ipfs:${ids.bitswap}`)?.status).toBe('announced')
    expect(by.get(`ipfs:${ids.bitswap}`)?.error).toBeUndefined()
  })

  it("the local node's findProviders finds the Kubo that announced the tree", async () => {
    await kubos[1]!.ok(['routing', 'provide', root])
    const c = counter({ endpoints: [] })
    const deadline = Date.now() + 60_000
    let copies = await c.check(item, { signal: AbortSignal.timeout(60_000) })
    while (!copies.some((x) => x.holder === `ipfs:${ids.p}`)) {
      if (Date.now() > deadline) throw new Error('the local node never found P as a provider')
      await new Promise((r) => setTimeout(r, 50))
      copies = await c.check(item, { signal: AbortSignal.timeout(60_000) })
    }
    await c.close()
    const p = copies.find((x) => x.holder === `ipfs:${ids.p}`)!
    // A DHT record says nothing of HTTP: announced only.
    expect(p).toMatchObject({ status: 'announced', how: 'provider-record' })
    expect(p.detail?.sources).toBe('dht')
    expect(copies.some((x) => x.holder === `ipfs:${ids.a}`)).toBe(false)
  })

  it('in the replicator: the verified provider meets n = 1, the announced ones are recorded as such', async () => {
    const r = new Replicator({
      db,
      counters: [counter()],
      policy: () => ({ n: 1 }),
      recheckMs: 3_600_000,
      log,
    })
    await r.track({ scope: 'tree', cid: root, mirror: 'debian', scan: item.scan! })
    await r.runOnce()
    const e = (await r.queue.get('tree:debian')) as QueueEntry
    expect(e.state).toBe('satisfied')
    expect(e.verified).toBe(1)
    const copies = await r.copies.trees('debian')
    const p = copies.find((x) => x.holder === `ipfs:${ids.p}`)
    expect(p?.status).toBe('verified')
    expect(p?.detail?.sources).toMatch(/dht/)
    expect(copies.filter((x) => x.status === 'announced')).toHaveLength(3)
    const withN2 = new Replicator({
      db,
      counters: [counter()],
      policy: () => ({ n: 2 }),
      recheckMs: 3_600_000,
      log,
    })
    await withN2.checkNow()
    await withN2.runOnce()
    expect(((await withN2.queue.get('tree:debian')) as QueueEntry).state).toBe('under-replicated')
    await r.stop()
    await withN2.stop()
  })
})
