/**
 * The fetch-back of evicted files (issue 13), driven through its FetchBack seam, against a real Kubo
 * daemon on loopback and loopback HTTP servers written here: bad sources (a wrong block, a truncated
 * CAR, one that never answers), a counting proxy in front of Kubo's gateway, and a fake Filecoin
 * provider's `/piece/{pieceCid}` (a stand-in: no real storage provider is involved).
 */
import { randomBytes } from 'node:crypto'
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  unlinkSync,
  utimesSync,
  writeFileSync,
} from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type Database, openDatabase } from '../src/db.ts'
import { errorCode, httpStatusOf } from '../src/error-codes.ts'
import {
  createFetchBack,
  type EvictedFile,
  type FetchBackOptions,
  FetchFailedError,
  FetchTimeoutError,
} from '../src/gateway/index.ts'
import { type CopyRecord, CopyStore, type MirrorIndex, openMirrorIndex } from '../src/index/index.ts'
import { KuboNode } from '../src/ipfs/index.ts'
import {
  carFrom,
  carServer,
  corrupt,
  type Loopback,
  proxy,
  sections,
  serve,
  truncatingServer,
} from './helpers/fetch-sources.ts'
import { Kubo } from './helpers/kubo.ts'

const MiB = 1024 * 1024

let dir: string
let db: Database
let kubo: Kubo
const servers: Loopback[] = []

interface Sample {
  root: string
  idx: MirrorIndex
  file: EvictedFile
  bytes: Buffer
}

let n = 0
/**
 * A mirror with one file of `size` random bytes: indexed, added to Kubo, then evicted through the
 * index's own API (recorded, then unlinked), as the janitor does.
 */
async function evictedSample(size: number, content?: Buffer): Promise<Sample> {
  const name = `m${n++}`
  const root = join(dir, name)
  mkdirSync(join(root, 'pool/main'), { recursive: true })
  const path = 'pool/main/pkg_1.0+b1_amd64.deb'
  const abs = join(root, path)
  const bytes = content ?? randomBytes(size)
  writeFileSync(abs, bytes)
  const mtime = new Date('2021-03-04T05:06:07.123Z')
  utimesSync(abs, mtime, mtime)
  const idx = openMirrorIndex(db, name, root)
  await idx.scan()
  const rec = (await idx.get(path))!
  expect((await kubo.ok(['add', '-Q', '--cid-version=1', abs])).trim()).toBe(rec.cid)
  const out = await idx.local.evict(
    [{ path, cid: rec.cid, size: rec.size, mtimeMs: rec.mtimeMs }],
    async (r) => unlinkSync(join(root, r.path)),
  )
  expect(out).toEqual([expect.objectContaining({ evicted: true })])
  return { root, idx, bytes, file: { mirror: name, path, cid: rec.cid, size, mtimeMs: rec.mtimeMs } }
}

function options(s: Sample, extra: Partial<FetchBackOptions>): FetchBackOptions {
  return {
    rootOf: (m) => (m === s.file.mirror ? s.root : undefined),
    recorderOf: (m) => (m === s.file.mirror ? s.idx.local : undefined),
    ...extra,
  }
}

/** The path's local state in the index: evicted, or refetched once the fetch-back told it. */
async function localState(s: Sample): Promise<string | undefined> {
  return (await s.idx.local.of(s.file.path))?.state
}

async function collect(body: AsyncIterable<Uint8Array>): Promise<Buffer> {
  const parts: Uint8Array[] = []
  for await (const c of body) parts.push(c)
  return Buffer.concat(parts)
}

function tmpFiles(s: Sample): string[] {
  const d = join(dir, '.cidmirror-fetch', s.root.split('/').pop()!)
  return existsSync(d) ? readdirSync(d) : []
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'cidmirror-fetchback-'))
  kubo = await Kubo.create({ parent: dir })
  await kubo.start()
  db = await openDatabase(join(dir, 'db'))
})

afterAll(async () => {
  await Promise.all(servers.map((s) => s.close()))
  await kubo?.dispose()
  await db?.close()
  rmSync(dir, { recursive: true, force: true })
})

async function track<T extends Loopback>(p: Promise<T>): Promise<T> {
  const s = await p
  servers.push(s)
  return s
}

describe('fetch-back from a real Kubo', () => {
  it("fetches an evicted file back through the local node's gateway: the same bytes and mtime, cached, the index told", async () => {
    const s = await evictedSample(5 * MiB + 12345)
    const fb = createFetchBack(options(s, { localGateway: kubo.gateway }))
    const res = await fb.open(s.file, undefined, AbortSignal.timeout(60_000))
    expect(res.source).toBe('local-node')
    expect((await collect(res.body)).equals(s.bytes)).toBe(true)
    await expect.poll(() => localState(s)).toBe('refetched')
    const abs = join(s.root, s.file.path)
    expect(readFileSync(abs).equals(s.bytes)).toBe(true)
    expect(statSync(abs).mtimeMs).toBe(s.file.mtimeMs)
    // The index holds the file present again, with its mtime, and when it came back (refetched_ttl).
    const local = (await s.idx.local.of(s.file.path))!
    expect(local).toMatchObject({ cid: s.file.cid, size: s.file.size, mtimeMs: s.file.mtimeMs })
    expect(Date.parse(local.refetchedAt!)).toBeGreaterThan(Date.parse(local.evictedAt!) - 1)
    expect((await s.idx.get(s.file.path))?.state).toBe('present')
    // The next scan finds the file as the index recorded it: nothing hashed again, the same root.
    const scan = await s.idx.scan()
    expect(scan).toMatchObject({ filesHashed: 0, evicted: 0, files: 1 })
    expect(tmpFiles(s)).toEqual([])
    const fig = fb.figures()
    expect(fig.completed).toBe(1)
    expect(fig.sources.find((x) => x.source === 'local-node')).toMatchObject({
      bytes: s.bytes.length,
      fetches: 1,
      failures: 0,
    })
  })

  it('a transient file (deleted upstream, a past version) goes to its clients only: nothing in the tree, the index not told, one fetch per CID', async () => {
    const s = await evictedSample(10 * MiB + 3)
    const counting = await track(proxy(kubo.gateway))
    const fb = createFetchBack(options(s, { gateways: [counting.url] }))
    const file: EvictedFile = { ...s.file, path: 'gone/old-name.deb', transient: true }
    // Two requests for the same CID under different names share the fetch; neither waits on the disk.
    const [a, b] = await Promise.all([
      fb.open(file, undefined, AbortSignal.timeout(60_000)),
      fb.open(
        { ...file, path: 'other/name.deb' },
        { start: 9 * MiB, end: 10 * MiB + 2 },
        AbortSignal.timeout(60_000),
      ),
    ])
    const [bytesA, bytesB] = await Promise.all([collect(a.body), collect(b.body)])
    expect(bytesA.equals(s.bytes)).toBe(true)
    expect(bytesB.equals(s.bytes.subarray(9 * MiB))).toBe(true)
    expect(counting.requests.length).toBe(1)
    expect(existsSync(join(s.root, 'gone'))).toBe(false)
    expect(existsSync(join(s.root, 'other'))).toBe(false)
    expect(existsSync(join(s.root, s.file.path))).toBe(false)
    expect(await localState(s)).toBe('evicted')
    await expect.poll(() => tmpFiles(s)).toEqual([])
    // A later request fetches again (nothing was kept).
    const c = await fb.open(file, { start: 0, end: 9 }, AbortSignal.timeout(60_000))
    expect((await collect(c.body)).equals(s.bytes.subarray(0, 10))).toBe(true)
    expect(counting.requests.length).toBe(2)
  })

  it("falls back to the node's own CAR export (RPC) when its gateway address is not configured, and serves a range", async () => {
    const s = await evictedSample(3 * MiB + 7)
    const node = new KuboNode({ api: kubo.api })
    try {
      const fb = createFetchBack(options(s, { node }))
      const res = await fb.open(s.file, { start: MiB - 10, end: 2 * MiB + 10 }, AbortSignal.timeout(60_000))
      expect(res.source).toBe('local-node')
      expect((await collect(res.body)).equals(s.bytes.subarray(MiB - 10, 2 * MiB + 11))).toBe(true)
    } finally {
      await node.close()
    }
  })

  it('a source with a wrong block and one that truncates its CAR fail: the next source is tried from where they stopped', async () => {
    const s = await evictedSample(4 * MiB + 99)
    const car = await carFrom(kubo.gateway, s.file.cid)
    const parts = sections(car)
    // Sections: header, the root node, then 5 leaves. The wrong block is the third leaf.
    const wrong = await track(carServer(corrupt(parts, 4)))
    const cut = await track(truncatingServer(car, parts.slice(0, 3).reduce((a, p) => a + p.length, 0) + 1000))
    const fb = createFetchBack(options(s, { gateways: [wrong.url, cut.url, kubo.gateway] }))
    const res = await fb.open(s.file, undefined, AbortSignal.timeout(60_000))
    expect(res.source).toBe(`gateway:${wrong.url}`)
    expect((await collect(res.body)).equals(s.bytes)).toBe(true)
    await expect.poll(() => localState(s)).toBe('refetched')
    const fig = fb.figures().sources
    expect(fig.find((x) => x.source === `gateway:${wrong.url}`)).toMatchObject({
      failures: 1,
      bytes: 2 * MiB,
    })
    expect(fig.find((x) => x.source === `gateway:${wrong.url}`)?.lastError).toMatch(/do not hash/)
    expect(fig.find((x) => x.source === `gateway:${cut.url}`)?.lastError).toMatch(
      /CAR ends inside a block|truncated/,
    )
    expect(fig.find((x) => x.source === `gateway:${kubo.gateway}`)).toMatchObject({ failures: 0, fetches: 1 })
    // The good gateway was asked only for the rest of the file.
    expect(readFileSync(join(s.root, s.file.path)).equals(s.bytes)).toBe(true)
  })

  it('when only bad sources remain, the body throws after the verified bytes, nothing is cached and the index is not told', async () => {
    const s = await evictedSample(4 * MiB)
    const car = await carFrom(kubo.gateway, s.file.cid)
    const parts = sections(car)
    const wrong = await track(carServer(corrupt(parts, 4)))
    const cut = await track(truncatingServer(car, car.length - 100))
    const fb = createFetchBack(options(s, { gateways: [wrong.url, cut.url] }))
    const res = await fb.open(s.file, undefined, AbortSignal.timeout(60_000))
    const got: Uint8Array[] = []
    const err = await (async () => {
      try {
        for await (const c of res.body) got.push(c)
      } catch (e) {
        return e
      }
    })()
    expect(err).toBeInstanceOf(FetchFailedError)
    // What was sent before the error was the file's own bytes, verified.
    const sent = Buffer.concat(got)
    expect(sent.length).toBeGreaterThan(0)
    expect(sent.length).toBeLessThan(s.bytes.length)
    expect(sent.equals(s.bytes.subarray(0, sent.length))).toBe(true)
    await expect.poll(() => fb.figures().failed).toBe(1)
    expect(existsSync(join(s.root, s.file.path))).toBe(false)
    expect(tmpFiles(s)).toEqual([])
    expect(await localState(s)).toBe('evicted')
  })

  it('a wrong first block fails before any byte: open rejects with a 502 error and one line', async () => {
    const s = await evictedSample(2 * MiB)
    const parts = sections(await carFrom(kubo.gateway, s.file.cid))
    const wrongRoot = await track(carServer(corrupt(parts, 1)))
    const missing = await track(serve((_q, r) => void r.writeHead(404).end('not here')))
    const fb = createFetchBack(options(s, { gateways: [wrongRoot.url, missing.url] }))
    const err = (await fb
      .open(s.file, undefined, AbortSignal.timeout(60_000))
      .catch((e) => e)) as FetchFailedError
    expect(err).toBeInstanceOf(FetchFailedError)
    expect(err.code).toBe(errorCode('FETCH_FAILED'))
    expect(httpStatusOf('FETCH_FAILED')).toBe(502)
    expect(err.message).not.toContain('\n')
    expect(err.message).toMatch(/do not hash.*HTTP 404/)
    expect(existsSync(join(s.root, s.file.path))).toBe(false)
    expect(tmpFiles(s)).toEqual([])
  })

  it('sources that never answer time out: open rejects with a 504 error', async () => {
    const s = await evictedSample(MiB)
    const silent = await track(serve(() => new Promise(() => {})))
    const fb = createFetchBack(options(s, { gateways: [silent.url], firstByteMs: 300 }))
    const err = await fb.open(s.file, undefined, AbortSignal.timeout(60_000)).catch((e) => e)
    expect(err).toBeInstanceOf(FetchTimeoutError)
    expect(httpStatusOf('FETCH_TIMEOUT')).toBe(504)
    expect(existsSync(join(s.root, s.file.path))).toBe(false)
  })

  it('temp files a crash left (kill -9 mid-fetch) are removed outside the tree, and the file is fetched whole', async () => {
    const s = await evictedSample(2 * MiB)
    const tmp = join(dir, '.cidmirror-fetch', s.root.split('/').pop()!)
    mkdirSync(tmp, { recursive: true })
    writeFileSync(join(tmp, 'deadbeefdeadbeef.part'), s.bytes.subarray(0, MiB))
    const fb = createFetchBack(options(s, { localGateway: kubo.gateway }))
    const res = await fb.open(s.file, undefined, AbortSignal.timeout(60_000))
    expect((await collect(res.body)).equals(s.bytes)).toBe(true)
    await expect.poll(() => localState(s)).toBe('refetched')
    expect(readdirSync(tmp)).toEqual([])
    // Nothing of the fetch ever lay in the mirror tree but the finished file.
    expect(readdirSync(join(s.root, 'pool/main'))).toEqual(['pkg_1.0+b1_amd64.deb'])
  })

  it('100 concurrent opens of one file make one network fetch', async () => {
    const s = await evictedSample(3 * MiB + 5)
    const counting = await track(proxy(kubo.gateway))
    const fb = createFetchBack(options(s, { gateways: [counting.url] }))
    const bodies = await Promise.all(
      Array.from({ length: 100 }, async () =>
        collect((await fb.open(s.file, undefined, AbortSignal.timeout(60_000))).body),
      ),
    )
    for (const b of bodies) expect(b.equals(s.bytes)).toBe(true)
    expect(counting.requests).toHaveLength(1)
    expect(fb.figures().joined).toBe(99)
  })

  it('a Range request on a file still arriving is answered from the fetch in flight', async () => {
    const s = await evictedSample(6 * MiB)
    let open!: () => void
    const opened = new Promise<void>((r) => {
      open = r
    })
    const gated = await track(proxy(kubo.gateway, { after: 2 * MiB, opened }))
    const fb = createFetchBack(options(s, { gateways: [gated.url] }))
    const first = await fb.open(s.file, undefined, AbortSignal.timeout(60_000))
    const firstBody = collect(first.body)
    const ranged = await fb.open(s.file, { start: 5 * MiB, end: 6 * MiB - 1 }, AbortSignal.timeout(60_000))
    // The fetch is held at 2 MiB: the range is not there yet, and the file is not cached.
    expect(existsSync(join(s.root, s.file.path))).toBe(false)
    const rangedBody = collect(ranged.body)
    open()
    expect((await rangedBody).equals(s.bytes.subarray(5 * MiB))).toBe(true)
    expect((await firstBody).equals(s.bytes)).toBe(true)
    expect(gated.requests).toHaveLength(1)
  })
})

describe('fetch-back from a Filecoin provider (a loopback fake)', () => {
  it("reads the file's sections from the fake provider's /piece/{pieceCid} with a Range, checked, after its /ipfs/ fails", async () => {
    const s = await evictedSample(3 * MiB + 1)
    // A fake piece: a CAR header, another file's blocks, this file's blocks root first, padding.
    const parts = sections(await carFrom(kubo.gateway, s.file.cid))
    const other = sections(await carFrom(kubo.gateway, (await evictedSample(MiB + 3)).file.cid))
    const before = Buffer.concat([other[0]!, ...other.slice(1)])
    const mine = Buffer.concat(parts.slice(1))
    const piece = Buffer.concat([before, mine, Buffer.alloc(4096)])
    const pieceCid = 'bafkzcibcaapfakepiececidforthetestonlyaaaaaaaaaaaaaaa'
    const provider = await track(
      serve((req, res) => {
        const m = /^bytes=(\d+)-(\d+)$/.exec(String(req.headers.range ?? ''))
        if (req.url !== `/piece/${pieceCid}` || !m) return void res.writeHead(404).end('no such piece')
        const a = Number(m[1])
        const b = Number(m[2])
        res.writeHead(206, {
          'content-range': `bytes ${a}-${b}/${piece.length}`,
          'content-type': 'application/octet-stream',
        })
        res.end(piece.subarray(a, b + 1))
      }),
    )
    {
      const copies = new CopyStore(db)
      const copy: CopyRecord = {
        cid: s.file.cid,
        holder: 'filecoin:f0fake/1',
        kind: 'filecoin',
        how: 'pdp',
        status: 'verified',
        scope: 'entity',
        local: false,
        checkedAt: Date.now(),
        since: Date.now(),
        retrieval: [`${provider.url}/ipfs/${s.file.cid}`, `${provider.url}/piece/${pieceCid}`],
        detail: { pieceCid, carOffset: before.length, carLength: mine.length },
      }
      await copies.put(copy)
      const fb = createFetchBack(options(s, { copies }))
      const res = await fb.open(s.file, undefined, AbortSignal.timeout(60_000))
      expect(res.source).toBe(`filecoin:${provider.url}`)
      expect((await collect(res.body)).equals(s.bytes)).toBe(true)
      expect(provider.requests).toEqual([expect.stringMatching(/^\/ipfs\//), `/piece/${pieceCid}`])
      await expect.poll(() => localState(s)).toBe('refetched')
      expect(readFileSync(join(s.root, s.file.path)).equals(s.bytes)).toBe(true)
    }
  })

  it('reads a file split across two pieces whose sections hold a repeated leaf once (read back from the cache file)', async () => {
    // Ten distinct leaves, then the first again: more distinct leaves between the two than the walk keeps.
    const leaves = Array.from({ length: 10 }, () => randomBytes(MiB))
    const content = Buffer.concat([...leaves, leaves[0]!])
    const s = await evictedSample(content.length, content)
    const parts = sections(await carFrom(kubo.gateway, s.file.cid))
    // header, root, leaves 0..10; the piece packer writes leaf 10 (a repeat of leaf 0) not at all.
    expect(parts).toHaveLength(13)
    const partA = Buffer.concat(parts.slice(1, 7))
    const partB = Buffer.concat(parts.slice(7, 12))
    const pieceA = Buffer.concat([Buffer.alloc(1000, 1), partA])
    const pieceB = Buffer.concat([partB, Buffer.alloc(3000, 2)])
    const pieces: Record<string, Buffer> = { bafkzcibfakepiecea: pieceA, bafkzcibfakepieceb: pieceB }
    const provider = await track(
      serve((req, res) => {
        const piece = pieces[(req.url ?? '').replace('/piece/', '')]
        const m = /^bytes=(\d+)-(\d+)$/.exec(String(req.headers.range ?? ''))
        if (!piece || !m) return void res.writeHead(404).end('no such piece')
        const [a, b] = [Number(m[1]), Number(m[2])]
        res.writeHead(206, { 'content-range': `bytes ${a}-${b}/${piece.length}` })
        res.end(piece.subarray(a, b + 1))
      }),
    )
    const copies = new CopyStore(db)
    await copies.put({
      cid: s.file.cid,
      holder: 'filecoin:f0fake/2',
      kind: 'filecoin',
      how: 'pdp',
      status: 'verified',
      scope: 'entity',
      local: false,
      checkedAt: Date.now(),
      since: Date.now(),
      retrieval: [`${provider.url}/piece/bafkzcibfakepiecea`, `${provider.url}/piece/bafkzcibfakepieceb`],
      detail: {
        parts: 2,
        pieceCids: 'bafkzcibfakepiecea,bafkzcibfakepieceb',
        partRanges: `1000+${partA.length},0+${partB.length}`,
      },
    })
    const fb = createFetchBack(options(s, { copies }))
    const res = await fb.open(s.file, undefined, AbortSignal.timeout(60_000))
    expect(res.source).toBe(`filecoin:${provider.url}`)
    expect((await collect(res.body)).equals(content)).toBe(true)
    expect(provider.requests).toEqual(['/piece/bafkzcibfakepiecea', '/piece/bafkzcibfakepieceb'])
    await expect.poll(() => localState(s)).toBe('refetched')
  })
})
