/**
 * What left the mirror, still served (issue 13, "beyond the anchors"), against a real Kubo on loopback
 * that holds the bytes this disk no longer has: files deleted upstream under `/_deleted/`, plain
 * downloads by CID, `/ipfs/<root>/<path>` of a past sync's root and of the current one, `/_roots/`.
 * A source that answers a wrong block is refused (nothing unverified is served), and the traversal
 * corpus stays closed for the new prefixes (DESIGN promise 7).
 */
import { randomBytes } from 'node:crypto'
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  unlinkSync,
  utimesSync,
  writeFileSync,
} from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { CID } from 'multiformats/cid'
import { pino } from 'pino'
import { request } from 'undici'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type GatewaySettings, readGatewayConfig, startGatewayService } from '../src/daemon/index.ts'
import { type Database, openDatabase } from '../src/db.ts'
import {
  createFetchBack,
  fetchFileVia,
  type Gateway,
  pastVersionsOf,
  statusPage,
  trustlessGateway,
} from '../src/gateway/index.ts'
import {
  BlockReader,
  blockMapSince,
  type MirrorIndex,
  mapBlocks,
  openIndexReader,
  openMirrorIndex,
} from '../src/index/index.ts'
import { loadConfig } from '../src/sync/index.ts'
import { carFrom, carServer, corrupt, type Loopback, proxy, sections } from './helpers/fetch-sources.ts'
import { gatewayOver, rawExchange } from './helpers/gateway.ts'
import { Kubo } from './helpers/kubo.ts'
import { fileFromCar, get, readCar, readToEnd, resolveInCar } from './helpers/trustless.ts'
import { commandMirror, writeToml } from './jobs-helpers.ts'

const MiB = 1024 * 1024
let dir: string
let root: string
let kubo: Kubo
let db: Database
let idx: MirrorIndex
let gw: Gateway
let bad: Gateway
let wrong: Loopback
let late: Loopback
let bad2: Gateway
let badCar: Gateway
let svc: Gateway
let svcConfig: string
let svcSettings: GatewaySettings
const big = randomBytes(3 * MiB + 4321)
const evictable = randomBytes(2 * MiB + 17)
const small = randomBytes(5000)
const releaseV1 = Buffer.from('Origin: test\nSuite: stable\nVersion: 1\n')
const releaseV2 = Buffer.from('Origin: test\nSuite: stable\nVersion: 2 (changed upstream)\n')
const mtime = new Date('2022-02-03T04:05:06.000Z')
let root1: string
let root2: string
let bigCid: string
let smallCid: string

async function scanAndMap(): Promise<string> {
  const since = await blockMapSince(db, 'sample')
  const s = await idx.scan()
  await mapBlocks(db, 'sample', root, { since })
  return s.rootCid
}

function put(rel: string, bytes: Buffer): void {
  const abs = join(root, rel)
  mkdirSync(join(abs, '..'), { recursive: true })
  writeFileSync(abs, bytes)
  utimesSync(abs, mtime, mtime)
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'cidmirror-gw-past-'))
  kubo = await Kubo.create({ parent: dir })
  await kubo.start()
  root = join(dir, 'mirrors', 'sample')
  put('pool/main/big_1.0+b1.iso', big)
  put('pool/main/small_1.0.deb', small)
  put('dists/stable/Release', releaseV1)
  put('keep/same.txt', Buffer.from('stays\n'))
  put('old/sub/gone.txt', Buffer.from('a whole directory deleted upstream\n'))
  put('keep/evict-me.bin', evictable)
  // A secret beside the mirror root: no request may ever give a byte of it.
  writeFileSync(join(dir, 'mirrors', 'secret.txt'), 'TOP-SECRET-PAST\n')
  db = await openDatabase(join(dir, 'db'))
  idx = openMirrorIndex(db, 'sample', root)
  root1 = await scanAndMap()
  bigCid = (await idx.get('pool/main/big_1.0+b1.iso'))!.cid
  smallCid = (await idx.get('pool/main/small_1.0.deb'))!.cid
  // The network (a real Kubo) holds what this disk is about to lose: the deleted files, the old Release.
  for (const rel of [
    'pool/main/big_1.0+b1.iso',
    'pool/main/small_1.0.deb',
    'dists/stable/Release',
    'old/sub/gone.txt',
    'keep/evict-me.bin',
  ]) {
    const cid = (await kubo.ok(['add', '-Q', '--cid-version=1', join(root, rel)])).trim()
    expect(cid).toBe((await idx.get(rel))!.cid)
  }
  // Upstream deletes two files and changes one; the next sync's scan sees it.
  unlinkSync(join(root, 'pool/main/big_1.0+b1.iso'))
  unlinkSync(join(root, 'pool/main/small_1.0.deb'))
  put('dists/stable/Release', releaseV2)
  rmSync(join(root, 'old'), { recursive: true })
  root2 = await scanAndMap()
  expect(root2).not.toBe(root1)
  expect((await idx.get('pool/main/big_1.0+b1.iso'))?.state).toBe('deleted')
  // And the janitor evicts one present file (recorded, then unlinked).
  const ev = (await idx.get('keep/evict-me.bin'))!
  await idx.local.evict([{ path: ev.path, cid: ev.cid, size: ev.size, mtimeMs: ev.mtimeMs }], async () =>
    unlinkSync(join(root, 'keep/evict-me.bin')),
  )

  const blocks = new BlockReader(db)
  const mirrors = [{ name: 'sample', root }]
  const fetchBack = createFetchBack({
    rootOf: (m) => (m === 'sample' ? root : undefined),
    recorderOf: (m) => (m === 'sample' ? idx.local : undefined),
    gateways: [kubo.gateway],
  })
  const plugins = [
    {
      name: 'trustless',
      plugin: trustlessGateway,
      options: { blocks, fetchFile: fetchFileVia(fetchBack, 'sample') },
    },
    { name: 'status', plugin: statusPage, options: { index: openIndexReader(db) } },
  ]
  gw = await gatewayOver(db, mirrors, {
    fetchBack,
    past: { blocks, versions: pastVersionsOf((m) => (m === 'sample' ? idx : undefined)) },
    plugins,
  })
  // A gateway whose only source answers the deleted file's CAR with its root block changed.
  const parts = sections(await carFrom(kubo.gateway, bigCid))
  wrong = await carServer(corrupt(parts, 1))
  bad = await gatewayOver(db, mirrors, {
    fetchBack: createFetchBack({ rootOf: (m) => (m === 'sample' ? root : undefined), gateways: [wrong.url] }),
    past: { blocks },
  })
  // And one whose third leaf is wrong: the status line is out before it arrives.
  late = await carServer(corrupt(parts, 4))
  bad2 = await gatewayOver(db, mirrors, {
    fetchBack: createFetchBack({ rootOf: (m) => (m === 'sample' ? root : undefined), gateways: [late.url] }),
    past: { blocks },
  })
  // And one whose trustless CARs fill leaves through that source: a past directory's CAR breaks off.
  const lateBack = createFetchBack({
    rootOf: (m) => (m === 'sample' ? root : undefined),
    gateways: [late.url],
  })
  badCar = await gatewayOver(db, mirrors, {
    fetchBack: lateBack,
    past: { blocks },
    plugins: [
      {
        name: 'trustless',
        plugin: trustlessGateway,
        options: { blocks, fetchFile: fetchFileVia(lateBack, 'sample') },
      },
    ],
  })
  // The gateway as the daemon wires it from a config's [gateway] (fetch_from: the Kubo).
  const config = writeToml({ dir, mirrors: commandMirror('sample', 'true') })
  writeFileSync(
    config,
    `${readFileSync(config, 'utf8')}\n[gateway]\nlisten_port = 0\nfetch_from = ["${kubo.gateway}"]\n`,
  )
  svcConfig = config
  svcSettings = readGatewayConfig(await loadConfig(config))!
  svc = await startGatewayService({
    settings: svcSettings,
    db,
    log: pino({ level: 'silent' }),
  })
}, 120_000)

afterAll(async () => {
  await svc?.close()
  await gw?.close()
  await bad?.close()
  await bad2?.close()
  await badCar?.close()
  await wrong?.close()
  await late?.close()
  await kubo?.dispose()
  await db?.close()
  rmSync(dir, { recursive: true, force: true })
})

describe('/_deleted/', () => {
  it('lists the files deleted upstream (HTML and JSON), and only the directories that lead to some', async () => {
    const top = await get(gw.url, '/_deleted/sample/?format=json')
    expect(top.status).toBe(200)
    expect(JSON.parse(top.body.toString())).toEqual([
      { name: 'old', type: 'directory', mtime: expect.any(String) },
      { name: 'pool', type: 'directory', mtime: expect.any(String) },
    ])
    // A directory deleted as a whole: its deleted subtree is listed and served.
    expect(JSON.parse((await get(gw.url, '/_deleted/sample/old/sub/?format=json')).body.toString())).toEqual([
      { name: 'gone.txt', type: 'file', mtime: mtime.toUTCString(), size: 35, cid: expect.any(String) },
    ])
    const gone = await get(gw.url, '/_deleted/sample/old/sub/gone.txt')
    expect(gone.status).toBe(200)
    expect(gone.body.toString()).toBe('a whole directory deleted upstream\n')
    expect(gone.headers['x-ipfs-path']).toBe(`/ipfs/${root1}/old/sub/gone.txt`)
    const json = await get(gw.url, '/_deleted/sample/pool/main/', { accept: 'application/json' })
    expect(json.status).toBe(200)
    expect(JSON.parse(json.body.toString())).toEqual([
      { name: 'big_1.0+b1.iso', type: 'file', mtime: mtime.toUTCString(), size: big.length, cid: bigCid },
      { name: 'small_1.0.deb', type: 'file', mtime: mtime.toUTCString(), size: small.length, cid: smallCid },
    ])
    const html = await get(gw.url, '/_deleted/sample/pool/main/')
    expect(html.headers['content-type']).toBe('text/html; charset=utf-8')
    expect(html.body.toString()).toContain('<a href="big_1.0+b1.iso">big_1.0+b1.iso</a>')
    expect(html.body.toString()).toContain(bigCid)
    // The mirror list, a redirect to the slash, nothing for a tree with no deleted file, a present file.
    expect(JSON.parse((await get(gw.url, '/_deleted/?format=json')).body.toString())).toEqual([
      { name: 'sample', type: 'directory' },
    ])
    const moved = await get(gw.url, '/_deleted/sample/pool')
    expect(moved.status).toBe(301)
    expect(moved.headers.location).toBe('/_deleted/sample/pool/')
    expect((await get(gw.url, '/_deleted/sample/dists/')).status).toBe(404)
    expect((await get(gw.url, '/_deleted/sample/keep/same.txt')).status).toBe(404)
    expect((await get(gw.url, '/_deleted/sample/dists/stable/Release')).status).toBe(404)
    expect((await get(gw.url, '/_deleted/nope/')).status).toBe(404)
  })

  it('downloads a deleted file fetched back from Kubo, verified: the same bytes, the integrity headers, nothing put back in the tree', async () => {
    const r = await get(gw.url, '/_deleted/sample/pool/main/big_1.0+b1.iso')
    expect(r.status).toBe(200)
    expect(r.body.equals(big)).toBe(true)
    expect(r.headers.etag).toBe(`"${bigCid}"`)
    expect(r.headers['content-length']).toBe(String(big.length))
    expect(r.headers['last-modified']).toBe(mtime.toUTCString())
    expect(r.headers['accept-ranges']).toBe('bytes')
    // The roots of the last tree that held it, verifiable from the first sync's root.
    const roots = r.headers['x-ipfs-roots']!.split(',')
    expect(roots[0]).toBe(root1)
    expect(roots.at(-1)).toBe(bigCid)
    expect(roots).toHaveLength(4)
    expect(r.headers['x-ipfs-path']).toBe(`/ipfs/${root1}/pool/main/big_1.0+b1.iso`)
    expect(existsSync(join(root, 'pool/main/big_1.0+b1.iso'))).toBe(false)
    expect((await idx.get('pool/main/big_1.0+b1.iso'))?.state).toBe('deleted')

    const small1 = await get(gw.url, '/_deleted/sample/pool/main/small_1.0.deb')
    expect(small1.status).toBe(200)
    expect(small1.body.equals(small)).toBe(true)
    expect(small1.headers['repr-digest']).toMatch(/^sha-256=:/)
    expect(small1.headers['content-type']).toBe('application/vnd.debian.binary-package')
  })

  it('answers HEAD, Range, If-Range and conditional requests as for an evicted file', async () => {
    const path = '/_deleted/sample/pool/main/big_1.0+b1.iso'
    const head = await get(gw.url, path, {}, 'HEAD')
    expect(head.status).toBe(200)
    expect(head.headers['content-length']).toBe(String(big.length))
    expect(head.body.length).toBe(0)
    const part = await get(gw.url, path, { range: `bytes=${2 * MiB - 5}-${2 * MiB + 5}` })
    expect(part.status).toBe(206)
    expect(part.headers['content-range']).toBe(`bytes ${2 * MiB - 5}-${2 * MiB + 5}/${big.length}`)
    expect(part.body.equals(big.subarray(2 * MiB - 5, 2 * MiB + 6))).toBe(true)
    const stale = await get(gw.url, path, { range: 'bytes=0-9', 'if-range': '"bafkreiother"' })
    expect(stale.status).toBe(200)
    expect(stale.body.equals(big)).toBe(true)
    expect((await get(gw.url, path, { 'if-none-match': `"${bigCid}"` })).status).toBe(304)
    expect((await get(gw.url, path, { 'if-modified-since': mtime.toUTCString() })).status).toBe(304)
    const past = await get(gw.url, path, { range: `bytes=${big.length}-` })
    expect(past.status).toBe(416)
    expect(past.headers['content-range']).toBe(`bytes */${big.length}`)
  })

  it('refuses a source that answers a wrong block: 502 with one line, nothing served unverified, nothing cached', async () => {
    const r = await get(bad.url, '/_deleted/sample/pool/main/big_1.0+b1.iso')
    expect(r.status).toBe(502)
    expect(r.body.toString()).toMatch(/^502 Bad Gateway: .*\n$/)
    expect(r.body.includes(big.subarray(0, 64))).toBe(false)
    expect(wrong.requests.length).toBeGreaterThan(0)
    expect(existsSync(join(root, 'pool/main/big_1.0+b1.iso'))).toBe(false)
    expect((await idx.get('pool/main/big_1.0+b1.iso'))?.state).toBe('deleted')
  })

  it('without a fetch-back, a deleted file is a one-line 503 that names its CID as one that left the mirror, not as evicted', async () => {
    const none = await gatewayOver(db, [{ name: 'sample', root }], {
      past: {
        blocks: new BlockReader(db),
        versions: pastVersionsOf((m) => (m === 'sample' ? idx : undefined)),
      },
    })
    try {
      const r = await get(none.url, '/_deleted/sample/pool/main/big_1.0+b1.iso')
      expect(r.status).toBe(503)
      const line = r.body.toString()
      expect(line).toMatch(/^503 Service Unavailable: .*CIDMIRROR_ERR_GATEWAY_NO_FETCHBACK\)\n$/)
      expect(line).toContain(`${bigCid} left the mirror`)
      expect(line).not.toMatch(/evicted/)
      // HEAD needs no bytes: the index's headers, as with a fetch-back.
      const head = await get(none.url, '/_deleted/sample/pool/main/big_1.0+b1.iso', {}, 'HEAD')
      expect(head.status).toBe(200)
      expect(head.headers.etag).toBe(`"${bigCid}"`)
    } finally {
      await none.close()
    }
  })

  it('a wrong block after the status line aborts the connection short of its Content-Length, after the verified bytes only', async () => {
    const { data, closed } = await rawExchange(
      bad2.port,
      'GET /_deleted/sample/pool/main/big_1.0+b1.iso HTTP/1.1\r\nHost: x\r\n\r\n',
      1,
    )
    expect(closed).toBe(true)
    const end = data.indexOf('\r\n\r\n')
    expect(data.subarray(0, end).toString('latin1')).toMatch(/^HTTP\/1\.1 200 /)
    expect(data.subarray(0, end).toString('latin1')).toContain(`Content-Length: ${big.length}`)
    const body = data.subarray(end + 4)
    // The first two leaves (verified) at most; never the whole file, never a wrong byte.
    expect(body.length).toBeLessThanOrEqual(2 * MiB)
    expect(body.equals(big.subarray(0, body.length))).toBe(true)
    expect(existsSync(join(root, 'pool/main/big_1.0+b1.iso'))).toBe(false)
  })
})

describe('/ipfs/ plain downloads and past roots', () => {
  it('gives a deleted file by its CID as plain bytes, and the trustless formats as before', async () => {
    const r = await get(gw.url, `/ipfs/${bigCid}`)
    expect(r.status).toBe(200)
    expect(r.body.equals(big)).toBe(true)
    expect(r.headers.etag).toBe(`"${bigCid}"`)
    expect(r.headers['cache-control']).toBe('public, max-age=29030400, immutable')
    const named = await get(gw.url, `/ipfs/${bigCid}?filename=big.deb`, { range: 'bytes=0-99' })
    expect(named.status).toBe(206)
    expect(named.body.equals(big.subarray(0, 100))).toBe(true)
    expect(named.headers['content-type']).toBe('application/vnd.debian.binary-package')
    expect(named.headers['content-disposition']).toBe('inline; filename="big.deb"')
    // A one-chunk deleted file by its CID: its size and name from the index's past versions.
    const one = await get(gw.url, `/ipfs/${smallCid}`)
    expect(one.status).toBe(200)
    expect(one.body.equals(small)).toBe(true)
    expect(one.headers['content-type']).toBe('application/vnd.debian.binary-package')
    expect(one.headers['last-modified']).toBe(mtime.toUTCString())
    expect(one.headers['content-disposition']).toBe('inline; filename="small_1.0.deb"')
    // An evicted file by its CID: fetched back into its place, as through its mirror path.
    const evCid = (await idx.get('keep/evict-me.bin'))!.cid
    const ev = await get(gw.url, `/ipfs/${evCid}`)
    expect(ev.status).toBe(200)
    expect(ev.body.equals(evictable)).toBe(true)
    expect(ev.headers['content-type']).toBe('application/octet-stream')
    await expect.poll(async () => (await idx.get('keep/evict-me.bin'))?.state).toBe('present')
    expect(readFileSync(join(root, 'keep/evict-me.bin')).equals(evictable)).toBe(true)
    // A present file's CID is read from the tree.
    const same = (await idx.get('keep/same.txt'))!.cid
    expect((await get(gw.url, `/ipfs/${same}`)).body.toString()).toBe('stays\n')
    // Trustless requests still get the trustless answers.
    const raw = await get(gw.url, `/ipfs/${same}?format=raw`)
    expect(raw.headers['content-type']).toBe('application/vnd.ipld.raw')
    expect(raw.body.toString()).toBe('stays\n')
    expect(
      (await get(gw.url, `/ipfs/${same}`, { accept: 'application/vnd.ipld.car' })).headers['content-type'],
    ).toMatch(/^application\/vnd\.ipld\.car/)
    expect((await get(gw.url, '/ipfs/not-a-cid')).status).toBe(400)
  })

  it('serves /ipfs/<old root>/path with the old bytes and /ipfs/<new root>/path with the new', async () => {
    const old = await get(gw.url, `/ipfs/${root1}/dists/stable/Release`)
    expect(old.status).toBe(200)
    expect(old.body.equals(releaseV1)).toBe(true)
    expect(old.headers['content-type']).toBe('text/plain; charset=utf-8')
    expect(old.headers['x-ipfs-roots']!.split(',')[0]).toBe(root1)
    // Its date is the version's that this root's tree held.
    expect(old.headers['last-modified']).toBe(mtime.toUTCString())
    expect(old.headers.etag).toBe(`"${(await idx.versionsOf('dists/stable/Release'))[0]!.cid}"`)
    const now = await get(gw.url, `/ipfs/${root2}/dists/stable/Release`)
    expect(now.status).toBe(200)
    expect(now.body.equals(releaseV2)).toBe(true)
    expect(now.headers.etag).toBe(`"${(await idx.get('dists/stable/Release'))!.cid}"`)
    // Files deleted since: fetched back through the old root; a range of one.
    expect((await get(gw.url, `/ipfs/${root1}/pool/main/small_1.0.deb`)).body.equals(small)).toBe(true)
    const part = await get(gw.url, `/ipfs/${root1}/pool/main/big_1.0+b1.iso`, { range: 'bytes=-100' })
    expect(part.status).toBe(206)
    expect(part.body.equals(big.subarray(big.length - 100))).toBe(true)
    expect((await get(gw.url, `/ipfs/${root2}/pool/main/small_1.0.deb`)).status).toBe(404)
  })

  it('lists directories of a past root, and gives a verifiable CAR for a path of the current one', async () => {
    const moved = await get(gw.url, `/ipfs/${root1}/pool/main`)
    expect(moved.status).toBe(301)
    // `?format=` is the trustless formats' under /ipfs/: a JSON listing is asked by Accept.
    const list = await get(gw.url, `/ipfs/${root1}/pool/main/`, { accept: 'application/json' })
    expect(list.status).toBe(200)
    expect(JSON.parse(list.body.toString())).toEqual([
      { name: 'big_1.0+b1.iso', type: 'file', size: big.length, cid: bigCid },
      { name: 'small_1.0.deb', type: 'file', size: small.length, cid: smallCid },
    ])
    const top = await get(gw.url, `/ipfs/${root1}/`)
    expect(top.body.toString()).toContain('<a href="dists/">dists/</a>')
    // A past file whose leaves are on no local store: its inner nodes from the block map, its leaves
    // fetched back, each checked; the client verifies the whole CAR from the old root down.
    const old = await get(gw.url, `/ipfs/${root1}/pool/main/big_1.0+b1.iso?format=car`)
    expect(old.status).toBe(200)
    const oldCar = await readCar(old.body)
    expect(oldCar.roots).toEqual([root1])
    const oldFile = resolveInCar(oldCar, CID.parse(root1), ['pool', 'main', 'big_1.0+b1.iso'])
    expect(oldFile.toString()).toBe(bigCid)
    expect(fileFromCar(oldCar, oldFile).equals(big)).toBe(true)
    const ranged = await get(
      gw.url,
      `/ipfs/${bigCid}?format=car&dag-scope=entity&entity-bytes=${2 * MiB + 1}:*`,
    )
    const rangedCar = await readCar(ranged.body)
    // The root node and the last two leaves (2 MiB.. and 3 MiB..), no other.
    expect(rangedCar.blocks).toHaveLength(3)
    expect(Buffer.concat(rangedCar.blocks.slice(1).map((b) => b.bytes)).equals(big.subarray(2 * MiB))).toBe(
      true,
    )
    expect(existsSync(join(root, 'pool/main/big_1.0+b1.iso'))).toBe(false)
    // A one-chunk file of the past root (the old Release): its block fetched back, the path proven.
    const rel = await readCar((await get(gw.url, `/ipfs/${root1}/dists/stable/Release?format=car`)).body)
    const relFile = resolveInCar(rel, CID.parse(root1), ['dists', 'stable', 'Release'])
    expect(fileFromCar(rel, relFile).equals(releaseV1)).toBe(true)
    // Every transient fetch's temp file is gone once its readers are (outside the tree, as all are).
    const tmp = join(dir, 'mirrors', '.cidmirror-fetch', 'sample')
    await expect.poll(() => readdirSync(tmp)).toEqual([])
    const car = await get(gw.url, `/ipfs/${root2}/dists/stable/Release?format=car`)
    expect(car.status).toBe(200)
    const parsed = await readCar(car.body)
    const file = resolveInCar(parsed, CID.parse(root2), ['dists', 'stable', 'Release'])
    expect(fileFromCar(parsed, file).equals(releaseV2)).toBe(true)
  })

  it('gives a complete, verifiable CAR of a whole past directory (dag-scope=all), every leaf no store holds fetched back', async () => {
    // pool/main of the old root: a multi-chunk and a one-chunk file, both deleted upstream.
    const dirCar = await get(gw.url, `/ipfs/${root1}/pool/main?format=car`)
    expect(dirCar.status).toBe(200)
    const main = await readCar(dirCar.body)
    expect(
      fileFromCar(main, resolveInCar(main, CID.parse(root1), ['pool', 'main', 'big_1.0+b1.iso'])).equals(big),
    ).toBe(true)
    expect(
      fileFromCar(main, resolveInCar(main, CID.parse(root1), ['pool', 'main', 'small_1.0.deb'])).equals(
        small,
      ),
    ).toBe(true)
    // The whole old root: present, deleted, replaced and evicted files side by side, each from its CAR alone.
    const whole = await readCar((await get(gw.url, `/ipfs/${root1}?format=car&dag-scope=all`)).body)
    expect(whole.roots).toEqual([root1])
    const want: [string, Buffer][] = [
      ['pool/main/big_1.0+b1.iso', big],
      ['pool/main/small_1.0.deb', small],
      ['dists/stable/Release', releaseV1],
      ['keep/same.txt', Buffer.from('stays\n')],
      ['keep/evict-me.bin', evictable],
      ['old/sub/gone.txt', Buffer.from('a whole directory deleted upstream\n')],
    ]
    for (const [path, bytes] of want)
      expect(
        fileFromCar(whole, resolveInCar(whole, CID.parse(root1), path.split('/'))).equals(bytes),
        path,
      ).toBe(true)
    // Nothing went back into the tree or the index.
    expect(existsSync(join(root, 'pool/main/small_1.0.deb'))).toBe(false)
    expect((await idx.get('pool/main/small_1.0.deb'))?.state).toBe('deleted')
    await expect.poll(() => readdirSync(join(dir, 'mirrors', '.cidmirror-fetch', 'sample'))).toEqual([])
  })

  it("ends a past directory's CAR unfinished (aborted, never a clean end) when a leaf cannot be had from any source", async () => {
    const r = await request(`${badCar.url}/ipfs/${root1}/pool/main?format=car`)
    expect(r.statusCode).toBe(200)
    const { got, err } = await readToEnd(r.body)
    expect(err).toBeInstanceOf(Error)
    // What came is verified: big's first leaf (fetched back), never its wrong third one, nor what follows.
    expect(got.includes(big.subarray(0, MiB))).toBe(true)
    expect(got.includes(big.subarray(2 * MiB, 2 * MiB + 64))).toBe(false)
    expect(got.includes(small.subarray(0, 64))).toBe(false)
    expect(late.requests.length).toBeGreaterThan(0)
  })

  it("lists each sync's root at /_roots/<mirror>, newest first, each a working link", async () => {
    const r = await get(gw.url, '/_roots/sample')
    expect(r.status).toBe(200)
    const body = JSON.parse(r.body.toString())
    expect(body.roots.map((x: { rootCid: string }) => x.rootCid)).toEqual([root2, root1])
    expect(body.roots[1]).toMatchObject({ scan: 1, url: `/ipfs/${root1}/`, ended: expect.any(String) })
    expect(body.next).toBeNull()
    expect((await get(gw.url, body.roots[1].url)).status).toBe(200)
    expect(JSON.parse((await get(gw.url, '/_roots/')).body.toString())).toEqual({
      mirrors: [{ mirror: 'sample', roots: '/_roots/sample' }],
    })
    expect((await get(gw.url, '/_roots/nope')).status).toBe(404)
    // The gateway's root page links both beside each mirror.
    const home = (await get(gw.url, '/')).body.toString()
    expect(home).toContain('<a href="/_deleted/sample/">deleted upstream</a>')
    expect(home).toContain('<a href="/_roots/sample">past roots</a>')
    // The status page links them.
    const status = JSON.parse((await get(gw.url, '/_status.json')).body.toString())
    expect(status.mirrors[0].index).toMatchObject({ rootCid: root2, roots: '/_roots/sample' })
    expect(status.mirrors[0].index.pastRoots.map((x: { rootCid: string }) => x.rootCid)).toEqual([
      root2,
      root1,
    ])
    const page = (await get(gw.url, '/_status')).body.toString()
    expect(page).toContain('<a href="/_roots/sample">past roots</a>')
    expect(page).toContain(`<code>${root1}</code></td><td><a href="/ipfs/${root1}/">tree</a>`)
  })

  it('keeps the traversal corpus closed under /_deleted/, /ipfs/<root>/ and /_roots/ (promise 7)', async () => {
    const corpus = [
      '/_deleted/sample/../secret.txt',
      '/_deleted/sample/%2e%2e/secret.txt',
      '/_deleted/sample/pool/%2e%2e%2f%2e%2e%2fsecret.txt',
      '/_deleted/sample/pool%2f..%2f..%2fsecret.txt',
      '/_deleted/sample/%00',
      '/_deleted/sample/..\\..\\secret.txt',
      `/_deleted/sample/${'a'.repeat(300)}`,
      `/ipfs/${root1}/../secret.txt`,
      `/ipfs/${root1}/%2e%2e/secret.txt`,
      `/ipfs/${root1}/dists%2f..%2f..%2fsecret.txt`,
      `/ipfs/${root1}/%00`,
      `/ipfs/${root1}/..\\secret.txt`,
      '/_roots/../secret.txt',
      '/_roots/%2e%2e',
    ]
    for (const path of corpus) {
      const { responses, data } = await rawExchange(gw.port, `GET ${path} HTTP/1.1\r\nHost: x\r\n\r\n`, 1)
      expect(data.toString('latin1')).not.toContain('TOP-SECRET')
      expect([400, 404], path).toContain(responses[0]?.status)
    }
  })
})

describe('as the daemon wires it (startGatewayService from [gateway])', () => {
  it('serves /_deleted/, plain /ipfs/ of a past root, a deleted one-chunk file by CID and a past CAR', async () => {
    const del = await get(svc.url, '/_deleted/sample/pool/main/small_1.0.deb')
    expect(del.status).toBe(200)
    expect(del.body.equals(small)).toBe(true)
    expect(del.headers['x-ipfs-roots']!.split(',')[0]).toBe(root1)
    const one = await get(svc.url, `/ipfs/${smallCid}`)
    expect(one.body.equals(small)).toBe(true)
    expect(one.headers['content-type']).toBe('application/vnd.debian.binary-package')
    expect((await get(svc.url, `/ipfs/${root1}/dists/stable/Release`)).body.equals(releaseV1)).toBe(true)
    const car = await readCar((await get(svc.url, `/ipfs/${root1}/pool/main/big_1.0+b1.iso?format=car`)).body)
    const file = resolveInCar(car, CID.parse(root1), ['pool', 'main', 'big_1.0+b1.iso'])
    expect(fileFromCar(car, file).equals(big)).toBe(true)
    expect(JSON.parse((await get(svc.url, '/_roots/sample')).body.toString()).roots).toHaveLength(2)
    expect(existsSync(join(root, 'pool/main/small_1.0.deb'))).toBe(false)
    // Its past fetches are kept beside the database ([gateway] past_cache, 256 MiB by default).
    expect(svcSettings.pastCache).toEqual({ dir: expect.stringMatching(/-past-cache$/), maxBytes: 256 * MiB })
    const pastCache = async () =>
      JSON.parse((await get(svc.url, '/_status.json')).body.toString()).fetchBack.pastCache
    await expect.poll(async () => (await pastCache()).kept).toBeGreaterThan(0)
    expect(await pastCache()).toMatchObject({ maxBytes: 256 * MiB, entries: expect.any(Number) })
    expect(readdirSync(svcSettings.pastCache.dir)).toContain(smallCid)
    expect((await get(svc.url, '/_status')).body.toString()).toContain('Past fetches kept:')
  })

  it('refuses a past_cache that is not a size, naming the key and the file', async () => {
    const file = join(dir, 'past-cache-bad.toml')
    writeFileSync(
      file,
      readFileSync(svcConfig, 'utf8').replace('[gateway]\n', '[gateway]\npast_cache = "lots"\n'),
    )
    const e = await loadConfig(file)
      .then((c) => readGatewayConfig(c))
      .then(
        () => undefined,
        (x: unknown) => x as Error & { key?: string },
      )
    expect(e?.key).toBe('gateway.past_cache')
    expect(e?.message).toMatch(/"lots" is not a size/)
    expect(e?.message).toContain(file)
    writeFileSync(
      file,
      readFileSync(svcConfig, 'utf8').replace('[gateway]\n', '[gateway]\npast_cache = "0"\n'),
    )
    expect(readGatewayConfig(await loadConfig(file))!.pastCache.maxBytes).toBe(0)
  })
})

describe('the cache of past fetches', () => {
  const cacheDir = () => join(dir, 'past-cache')
  let relay: Loopback
  let cached: Gateway
  let fetchBack: ReturnType<typeof createFetchBack>
  const gone = Buffer.from('a whole directory deleted upstream\n')
  let goneCid: string
  /** The cache's entries (no temp file left among them). */
  const entries = () => readdirSync(cacheDir()).sort()
  /** Files admitted so far (each counted once its admission, and any eviction it caused, is over). */
  const kept = () => fetchBack.figures().pastCache?.kept
  const over = (maxBytes: number) =>
    createFetchBack({
      rootOf: (m) => (m === 'sample' ? root : undefined),
      gateways: [relay.url],
      pastCache: { dir: cacheDir(), maxBytes },
    })

  beforeAll(async () => {
    // The network, counted: a relay to the real Kubo that holds the deleted files.
    relay = await proxy(kubo.gateway)
    goneCid = (await idx.get('old/sub/gone.txt'))!.cid
    // Room for the big and the small file together, not for a third one beside them.
    fetchBack = over(big.length + small.length + 20)
    cached = await gatewayOver(db, [{ name: 'sample', root }], {
      fetchBack,
      past: {
        blocks: new BlockReader(db),
        versions: pastVersionsOf((m) => (m === 'sample' ? idx : undefined)),
      },
    })
  })

  afterAll(async () => {
    await cached?.close()
    await relay?.close()
  })

  it('a second download of a deleted file is read from the cache, not fetched again; the tree and the index are left alone', async () => {
    const first = await get(cached.url, '/_deleted/sample/pool/main/small_1.0.deb')
    expect(first.status).toBe(200)
    expect(first.body.equals(small)).toBe(true)
    const asked = relay.requests.length
    expect(asked).toBeGreaterThan(0)
    await expect.poll(kept).toBe(1)
    expect(entries()).toEqual([smallCid])
    const again = await get(cached.url, '/_deleted/sample/pool/main/small_1.0.deb')
    expect(again.status).toBe(200)
    expect(again.body.equals(small)).toBe(true)
    expect(again.headers.etag).toBe(`"${smallCid}"`)
    const part = await get(cached.url, '/_deleted/sample/pool/main/small_1.0.deb', { range: 'bytes=10-19' })
    expect(part.status).toBe(206)
    expect(part.body.equals(small.subarray(10, 20))).toBe(true)
    // The same CID by a plain /ipfs/ download too.
    expect((await get(cached.url, `/ipfs/${smallCid}`)).body.equals(small)).toBe(true)
    expect(relay.requests.length).toBe(asked)
    expect(fetchBack.figures().pastCache).toMatchObject({ entries: 1, bytes: small.length, hits: 3 })
    expect(existsSync(join(root, 'pool/main/small_1.0.deb'))).toBe(false)
    expect((await idx.get('pool/main/small_1.0.deb'))?.state).toBe('deleted')
  })

  it('keeps at most its size, evicting the least recently used first, and survives a restart', async () => {
    expect((await get(cached.url, '/_deleted/sample/old/sub/gone.txt')).body.equals(gone)).toBe(true)
    await expect.poll(kept).toBe(2)
    expect(entries()).toEqual([goneCid, smallCid].sort())
    // The small file used again: gone.txt is now the least recently used.
    expect((await get(cached.url, '/_deleted/sample/pool/main/small_1.0.deb')).body.equals(small)).toBe(true)
    const big1 = await get(cached.url, '/_deleted/sample/pool/main/big_1.0+b1.iso')
    expect(big1.body.equals(big)).toBe(true)
    await expect.poll(kept).toBe(3)
    expect(entries()).toEqual([bigCid, smallCid].sort())
    expect(fetchBack.figures().pastCache).toMatchObject({
      entries: 2,
      bytes: big.length + small.length,
      evicted: 1,
    })
    // A new process over the same folder serves the big file from it, without the network.
    const asked = relay.requests.length
    const next = await gatewayOver(db, [{ name: 'sample', root }], {
      fetchBack: over(big.length + small.length + 20),
      past: {
        blocks: new BlockReader(db),
        versions: pastVersionsOf((m) => (m === 'sample' ? idx : undefined)),
      },
    })
    try {
      const r = await get(next.url, '/_deleted/sample/pool/main/big_1.0+b1.iso')
      expect(r.body.equals(big)).toBe(true)
      expect(relay.requests.length).toBe(asked)
    } finally {
      await next.close()
    }
    // A file larger than the whole cache is served and never kept.
    const tiny = await gatewayOver(db, [{ name: 'sample', root }], {
      fetchBack: createFetchBack({
        rootOf: (m) => (m === 'sample' ? root : undefined),
        gateways: [relay.url],
        pastCache: { dir: join(dir, 'past-cache-tiny'), maxBytes: 1000 },
      }),
      past: {
        blocks: new BlockReader(db),
        versions: pastVersionsOf((m) => (m === 'sample' ? idx : undefined)),
      },
    })
    try {
      expect((await get(tiny.url, '/_deleted/sample/pool/main/small_1.0.deb')).body.equals(small)).toBe(true)
      expect(readdirSync(join(dir, 'past-cache-tiny')).filter((n) => !n.endsWith('.part'))).toEqual([])
    } finally {
      await tiny.close()
    }
  })
})
