/**
 * The fetch-back reaches the holders the replicator recorded directly (issue 13, item 3), with real
 * Kubo daemons on loopback: A is the local node (online, holding nothing of the file, never dialled to
 * the holders), B and C hold the file. A Kubo target without a `gateway` is read over the RPC API the
 * config names (`dag export`, verified block by block); a cluster's `ipfs_api` likewise; a pinning
 * service's delegates are dialled from A before A is asked. The holder addresses come from a real
 * config file through the daemon's own lookup (holderNodesOf), as the daemon wires it.
 */
import { randomBytes } from 'node:crypto'
import {
  mkdirSync,
  readdirSync,
  readFileSync,
  statSync,
  unlinkSync,
  utimesSync,
  writeFileSync,
} from 'node:fs'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { holderNodesOf, readReplicationConfig, type TargetSettings } from '../src/daemon/index.ts'
import { type Database, openDatabase } from '../src/db.ts'
import { createFetchBack, type EvictedFile, type FetchBackOptions } from '../src/gateway/index.ts'
import {
  BlockReader,
  type CopyRecord,
  CopyStore,
  type MirrorIndex,
  mapBlocks,
  openMirrorIndex,
} from '../src/index/index.ts'
import { KuboNode } from '../src/ipfs/index.ts'
import { loadConfig } from '../src/sync/index.ts'
import { rpcRelay } from './helpers/fetch-sources.ts'
import { disposeAll, Kubo } from './helpers/kubo.ts'
import { tempDir, writeToml } from './jobs-helpers.ts'

const MiB = 1024 * 1024

let tmp: ReturnType<typeof tempDir>
let db: Database
let copies: CopyStore
let a: Kubo
let b: Kubo
let c: Kubo
let local: KuboNode
let holders: ReturnType<typeof holderNodesOf>
let ids: { a: string; b: string; c: string }

interface Sample {
  root: string
  idx: MirrorIndex
  file: EvictedFile
  bytes: Buffer
}

let n = 0
/** A mirror with one file, indexed, added to the holders `on` (not to A), then evicted as the janitor does. */
async function evictedSample(size: number, on: Kubo[], opts: { map?: boolean } = {}): Promise<Sample> {
  const name = `m${n++}`
  const root = join(tmp.dir, name)
  mkdirSync(join(root, 'pool'), { recursive: true })
  const path = 'pool/pkg_1.0_amd64.deb'
  const abs = join(root, path)
  const bytes = randomBytes(size)
  writeFileSync(abs, bytes)
  const mtime = new Date('2020-01-02T03:04:05.000Z')
  utimesSync(abs, mtime, mtime)
  const idx = openMirrorIndex(db, name, root)
  await idx.scan()
  // Mapped: the file's inner nodes in the block map, so its leaves are known before any fetch.
  if (opts.map) expect((await mapBlocks(db, name, root)).stale).toEqual([])
  const rec = (await idx.get(path))!
  for (const k of on) expect((await k.ok(['add', '-Q', '--cid-version=1', abs])).trim()).toBe(rec.cid)
  await idx.local.evict([{ path, cid: rec.cid, size: rec.size, mtimeMs: rec.mtimeMs }], async (r) =>
    unlinkSync(join(root, r.path)),
  )
  return { root, idx, bytes, file: { mirror: name, path, cid: rec.cid, size, mtimeMs: rec.mtimeMs } }
}

function copy(s: Sample, over: Partial<CopyRecord> & Pick<CopyRecord, 'holder' | 'kind'>): CopyRecord {
  const now = Date.now()
  return {
    cid: s.file.cid,
    how: 'pinned',
    status: 'verified',
    scope: 'entity',
    local: false,
    checkedAt: now,
    since: now,
    ...over,
  }
}

function options(s: Sample, extra: Partial<FetchBackOptions> = {}): FetchBackOptions {
  return {
    rootOf: (m) => (m === s.file.mirror ? s.root : undefined),
    recorderOf: (m) => (m === s.file.mirror ? s.idx.local : undefined),
    node: local,
    copies,
    holders: holders.holders,
    ...extra,
  }
}

async function collect(body: AsyncIterable<Uint8Array>): Promise<Buffer> {
  const parts: Uint8Array[] = []
  for await (const x of body) parts.push(x)
  return Buffer.concat(parts)
}

function kuboTarget(name: string, api: string): TargetSettings {
  return {
    name,
    type: 'kubo',
    api,
    scope: 'tree',
    local: false,
    concurrency: undefined,
    gateway: undefined,
    token: undefined,
    replicationMin: undefined,
    replicationMax: undefined,
    ipfsApi: [],
  }
}

async function peersOf(k: Kubo): Promise<string> {
  return k.ok(['swarm', 'peers'])
}

/** Flip a byte of the block B stores with exactly `bytes` (a raw leaf) in its flatfs blockstore. */
function corruptStoredBlock(k: Kubo, bytes: Buffer): void {
  const blocks = join(k.repo, 'blocks')
  for (const shard of readdirSync(blocks)) {
    const d = join(blocks, shard)
    if (!statSync(d).isDirectory()) continue
    for (const f of readdirSync(d)) {
      const p = join(d, f)
      if (statSync(p).size !== bytes.length) continue
      const got = readFileSync(p)
      if (!got.equals(bytes)) continue
      got[got.length >> 1] = got[got.length >> 1]! ^ 0xff
      writeFileSync(p, got)
      return
    }
  }
  throw new Error(`no stored block of ${bytes.length} bytes matched in ${blocks}`)
}

beforeAll(async () => {
  tmp = tempDir('cidmirror-fb-holders-')
  // Three online daemons that know no one: A never learns of B or C unless told to dial them.
  ;[a, b, c] = (await Kubo.swarm(3, { parent: tmp.dir, connect: false })) as [Kubo, Kubo, Kubo]
  ids = { a: (await a.peer()).id, b: (await b.peer()).id, c: (await c.peer()).id }
  local = new KuboNode({ api: a.api })
  db = await openDatabase(join(tmp.dir, 'db'))
  copies = new CopyStore(db)
  const file = writeToml({
    dir: tmp.dir,
    mirrors: `[[mirrors]]
name = "deb"
upstream = "rsync://127.0.0.1:1/m/"

[replication]
n = 1

[[replication.targets]]
name = "b"
type = "kubo"
api = "${b.api}"

[[replication.targets]]
name = "c"
type = "kubo"
api = "${c.api}"

[[replication.targets]]
name = "cl"
type = "cluster"
api = "http://127.0.0.1:9"
ipfs_api = ["${c.api}"]
`,
  })
  const repl = readReplicationConfig(await loadConfig(file))
  holders = holderNodesOf(() => repl.replication?.targets ?? [])
}, 180_000)

afterAll(async () => {
  await holders?.close()
  await local?.close()
  await disposeAll([a, b, c].filter(Boolean))
  await db?.close()
  tmp?.cleanup()
})

describe('fetch-back from the recorded holders, directly', () => {
  it('reads a Kubo target without a gateway over its RPC API when the local node has no copy and no connection to it', async () => {
    const s = await evictedSample(3 * MiB + 777, [b])
    await copies.put(copy(s, { holder: `ipfs:${ids.b}`, kind: 'ipfs-node', target: 'b' }))
    // The local node searches in vain (no peers): its time limit passes, then the holder is read.
    const fb = createFetchBack(options(s, { firstByteMs: 3_000 }))
    const res = await fb.open(s.file, undefined, AbortSignal.timeout(60_000))
    expect(res.source).toBe(`holder:ipfs:${ids.b}`)
    expect((await collect(res.body)).equals(s.bytes)).toBe(true)
    await expect.poll(async () => (await s.idx.local.of(s.file.path))?.state).toBe('refetched')
    expect(readFileSync(join(s.root, s.file.path)).equals(s.bytes)).toBe(true)
    const fig = fb.figures().sources
    expect(fig.find((x) => x.source === 'local-node')).toMatchObject({ failures: 1, bytes: 0 })
    expect(fig.find((x) => x.source === `holder:ipfs:${ids.b}`)).toMatchObject({
      kind: 'holder',
      fetches: 1,
      failures: 0,
      bytes: s.bytes.length,
    })
    // The bytes came over B's RPC API, not over bitswap: A never connected to B.
    expect(await peersOf(a)).not.toContain(ids.b)
  })

  it('a holder answering a wrong block is refused and the next holder continues from where it stopped', async () => {
    const s = await evictedSample(4 * MiB, [b, c])
    corruptStoredBlock(b, s.bytes.subarray(2 * MiB, 3 * MiB))
    await copies.put(copy(s, { holder: `ipfs:${ids.b}`, kind: 'ipfs-node', target: 'b' }))
    // Verified before announced: B is tried first, whatever order the store lists the two in.
    await copies.put(
      copy(s, { holder: `ipfs:${ids.c}`, kind: 'ipfs-node', target: 'c', status: 'announced' }),
    )
    // No local node: the holders are the only sources.
    const fb = createFetchBack(options(s, { node: undefined }))
    const res = await fb.open(s.file, undefined, AbortSignal.timeout(60_000))
    expect((await collect(res.body)).equals(s.bytes)).toBe(true)
    await expect.poll(async () => (await s.idx.local.of(s.file.path))?.state).toBe('refetched')
    expect(readFileSync(join(s.root, s.file.path)).equals(s.bytes)).toBe(true)
    const fig = fb.figures().sources
    const bad = fig.find((x) => x.source === `holder:ipfs:${ids.b}`)
    expect(bad).toMatchObject({ failures: 1, fetches: 0 })
    expect(bad?.lastError).toMatch(/do not hash/)
    // B's good leaves before the wrong one were kept; C gave the rest.
    expect(bad?.bytes).toBe(2 * MiB)
    expect(fig.find((x) => x.source === `holder:ipfs:${ids.c}`)).toMatchObject({
      fetches: 1,
      failures: 0,
      bytes: 2 * MiB,
    })
  })

  it('with the leaves known: the holder sends plain bytes (RPC cat, offline), checked leaf by leaf; a wrong leaf fails it and the next holder goes on', async () => {
    const s = await evictedSample(6 * MiB + 5, [b, c], { map: true })
    corruptStoredBlock(b, s.bytes.subarray(3 * MiB, 4 * MiB))
    const relayB = await rpcRelay(new KuboNode({ api: b.api }).label)
    const relayC = await rpcRelay(new KuboNode({ api: c.api }).label)
    const set = holderNodesOf(() => [kuboTarget('bp', relayB.url), kuboTarget('cp', relayC.url)])
    try {
      await copies.put(copy(s, { holder: `ipfs:${ids.b}`, kind: 'ipfs-node', target: 'bp' }))
      await copies.put(
        copy(s, { holder: `ipfs:${ids.c}`, kind: 'ipfs-node', target: 'cp', status: 'announced' }),
      )
      const fb = createFetchBack(
        options(s, { node: undefined, holders: set.holders, nodes: new BlockReader(db) }),
      )
      const res = await fb.open(s.file, undefined, AbortSignal.timeout(60_000))
      expect(res.source).toBe(`holder:ipfs:${ids.b}`)
      expect((await collect(res.body)).equals(s.bytes)).toBe(true)
      await expect.poll(async () => (await s.idx.local.of(s.file.path))?.state).toBe('refetched')
      const fig = fb.figures().sources
      const bad = fig.find((x) => x.source === `holder:ipfs:${ids.b}`)
      expect(bad).toMatchObject({ failures: 1, fetches: 0, bytes: 3 * MiB })
      expect(bad?.lastError).toMatch(/hash/)
      expect(fig.find((x) => x.source === `holder:ipfs:${ids.c}`)).toMatchObject({
        fetches: 1,
        bytes: 3 * MiB + 5,
      })
      // Plain bytes, not CARs: B was asked for the whole file, C for the rest from the wrong leaf on.
      expect(relayB.requests.map((r) => r.split('?')[0])).toEqual(['/api/v0/cat'])
      expect(relayC.requests).toEqual([
        expect.stringMatching(/^\/api\/v0\/cat\?.*offset=3145728&length=3145733/),
      ])
    } finally {
      await set.close()
      await relayB.close()
      await relayC.close()
    }
  })

  it('a holder that lost the file answers at once (asked offline): it fails and the next holder serves', async () => {
    const s = await evictedSample(2 * MiB + 9, [c], { map: true })
    await copies.put(copy(s, { holder: `ipfs:${ids.b}`, kind: 'ipfs-node', target: 'b' }))
    await copies.put(
      copy(s, { holder: `ipfs:${ids.c}`, kind: 'ipfs-node', target: 'c', status: 'announced' }),
    )
    // The default time limits: B must fail by its answer, not by waiting out a limit.
    const fb = createFetchBack(options(s, { node: undefined, nodes: new BlockReader(db) }))
    const res = await fb.open(s.file, undefined, AbortSignal.timeout(60_000))
    expect(res.source).toBe(`holder:ipfs:${ids.c}`)
    expect((await collect(res.body)).equals(s.bytes)).toBe(true)
    const bad = fb.figures().sources.find((x) => x.source === `holder:ipfs:${ids.b}`)
    expect(bad).toMatchObject({ failures: 1, timeouts: 0, bytes: 0 })
    expect(bad?.lastError).toMatch(/not found locally/)
  })

  it("reads a cluster peer's IPFS node through the target's ipfs_api", async () => {
    const s = await evictedSample(MiB + 3, [c])
    await copies.put(copy(s, { holder: `ipfs:${ids.c}`, kind: 'ipfs-cluster', target: 'cl' }))
    const fb = createFetchBack(options(s, { node: undefined }))
    const res = await fb.open(s.file, { start: MiB, end: MiB + 2 }, AbortSignal.timeout(60_000))
    expect(res.source).toBe(`holder:cl@${c.api}`)
    expect((await collect(res.body)).equals(s.bytes.subarray(MiB))).toBe(true)
  })

  it("dials a pinning service's delegates from the local node first, which then fetches over bitswap", async () => {
    const s = await evictedSample(2 * MiB + 1, [c])
    const addr = (await c.peer()).addresses.find((x) => x.startsWith('/ip4/127.0.0.1/tcp/'))!
    expect(await peersOf(a)).not.toContain(ids.c)
    await copies.put(
      copy(s, {
        holder: 'psa:http://127.0.0.1:9/psa',
        kind: 'pinning-service',
        how: 'pinning-service:pinned',
        status: 'announced',
        detail: { requestid: 'r1', delegates: addr },
      }),
    )
    const fb = createFetchBack(options(s, { holders: undefined }))
    const res = await fb.open(s.file, undefined, AbortSignal.timeout(60_000))
    expect(res.source).toBe('local-node')
    expect((await collect(res.body)).equals(s.bytes)).toBe(true)
    expect(await peersOf(a)).toContain(ids.c)
  })
})
