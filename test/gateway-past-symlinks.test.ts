/**
 * Symlinks in a past root, served as the mirror serves them (src/gateway/listing.ts: "shown as what
 * they lead to, and only when that is inside the mirror"): a real tree holding apt's
 * `dists/stable -> bookworm`, a file symlink, a `..` symlink, ones leading out and a loop, scanned
 * twice (the Release changed upstream in between), with a real Kubo on loopback holding the old
 * bytes. The DAG walk resolves each symlink against its parent within the root, every block checked
 * against its CID; one leading out, and a loop, is a one-line 404; the traversal corpus stays closed.
 * `/_deleted/` paths and listings follow the same symlinks through the index's records.
 */
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  rmSync,
  symlinkSync,
  unlinkSync,
  utimesSync,
  writeFileSync,
} from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { CID } from 'multiformats/cid'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type Database, openDatabase } from '../src/db.ts'
import {
  createFetchBack,
  fetchFileVia,
  type Gateway,
  pastVersionsOf,
  trustlessGateway,
} from '../src/gateway/index.ts'
import {
  BlockReader,
  blockMapSince,
  type MirrorIndex,
  mapBlocks,
  openMirrorIndex,
} from '../src/index/index.ts'
import { gatewayOver, rawExchange } from './helpers/gateway.ts'
import { Kubo } from './helpers/kubo.ts'
import { fileFromCar, get, readCar, resolveInCar } from './helpers/trustless.ts'

let dir: string
let root: string
let kubo: Kubo
let db: Database
let idx: MirrorIndex
let gw: Gateway
let root1: string
let root2: string
let v1Cid: string
const releaseV1 = Buffer.from('Origin: test\nSuite: bookworm\nVersion: 1\n')
const releaseV2 = Buffer.from('Origin: test\nSuite: bookworm\nVersion: 2 (changed upstream)\n')
const deb = Buffer.from('a package reached through dists/bookworm/pool -> ../../pool\n')
const oldDeb = Buffer.from('version 0.9, deleted upstream\n')
const contents = Buffer.from('Contents of bookworm, deleted upstream\n')
const mtime = new Date('2023-04-05T06:07:08.000Z')
const aText = Buffer.from('a.txt: what swap/link led to when both were deleted upstream\n')
const bText = Buffer.from('b.txt: what a new swap/link leads to, later\n')
const oldContents = Buffer.from('Contents of a suite whose whole tree was deleted upstream\n')

function put(rel: string, bytes: Buffer): void {
  const abs = join(root, rel)
  mkdirSync(join(abs, '..'), { recursive: true })
  writeFileSync(abs, bytes)
  utimesSync(abs, mtime, mtime)
}

function link(rel: string, target: string): void {
  mkdirSync(join(root, rel, '..'), { recursive: true })
  symlinkSync(target, join(root, rel))
}

async function scanAndMap(): Promise<string> {
  const since = await blockMapSince(db, 'sample')
  const s = await idx.scan()
  await mapBlocks(db, 'sample', root, { since })
  return s.rootCid
}

/** The CID of the DAG entry at `path` of `rootCid`, as `ipfs resolve` of the real Kubo says. */
async function kuboCid(rootCid: string, path: string): Promise<string> {
  const out = await kubo.ok(['resolve', '--offline', `/ipfs/${rootCid}/${path}`])
  return out.trim().replace(/^\/ipfs\//, '')
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'cidmirror-gw-symlinks-'))
  kubo = await Kubo.create({ parent: dir })
  await kubo.start()
  root = join(dir, 'mirrors', 'sample')
  put('dists/bookworm/Release', releaseV1)
  put('pool/main/p/pkg_1.0.deb', deb)
  put('pool/main/p/pkg_0.9.deb', oldDeb)
  put('dists/bookworm/Contents-old', contents)
  link('dists/stable', 'bookworm')
  link('dists/bookworm/pool', '../../pool')
  link('current', 'dists/bookworm/Release')
  link('dists/out', '../../secret.txt')
  link('dists/abs', '/etc/hostname')
  link('dists/dangling', 'trixie')
  link('loop/a', 'b')
  link('loop/b', 'a')
  // A symlink deleted with its target (a new one of that name comes later), and a whole tree deleted
  // with the symlinked directory on its paths.
  put('swap/a.txt', aText)
  link('swap/link', 'a.txt')
  put('olddists/bookworm/Contents', oldContents)
  link('olddists/stable', 'bookworm')
  link('olddists/current', 'bookworm/Contents')
  // A secret beside the mirror root: no request may ever give a byte of it.
  writeFileSync(join(dir, 'mirrors', 'secret.txt'), 'TOP-SECRET-SYMLINK\n')
  db = await openDatabase(join(dir, 'db'))
  idx = openMirrorIndex(db, 'sample', root)
  root1 = await scanAndMap()
  v1Cid = (await idx.get('dists/bookworm/Release'))!.cid
  // The network (a real Kubo) holds the first sync's whole tree, symlinks as they are.
  const added = (await kubo.ok(['add', '-Q', '-r', '--cid-version=1', root])).trim()
  expect(added).toBe(root1)
  // Upstream changes the Release; the next sync's scan sees it.
  unlinkSync(join(root, 'dists/bookworm/Release'))
  put('dists/bookworm/Release', releaseV2)
  // And deletes two files: one under a symlinked directory, one reached through two symlinks.
  unlinkSync(join(root, 'dists/bookworm/Contents-old'))
  unlinkSync(join(root, 'pool/main/p/pkg_0.9.deb'))
  unlinkSync(join(root, 'swap/link'))
  unlinkSync(join(root, 'swap/a.txt'))
  rmSync(join(root, 'olddists'), { recursive: true })
  root2 = await scanAndMap()
  expect(root2).not.toBe(root1)

  const fetchBack = createFetchBack({
    rootOf: (m) => (m === 'sample' ? root : undefined),
    recorderOf: (m) => (m === 'sample' ? idx.local : undefined),
    gateways: [kubo.gateway],
  })
  const blocks = new BlockReader(db)
  gw = await gatewayOver(db, [{ name: 'sample', root }], {
    fetchBack,
    past: { blocks, versions: pastVersionsOf((m) => (m === 'sample' ? idx : undefined)) },
    plugins: [
      {
        name: 'trustless',
        plugin: trustlessGateway,
        options: { blocks, fetchFile: fetchFileVia(fetchBack, 'sample') },
      },
    ],
  })
}, 120_000)

afterAll(async () => {
  await gw?.close()
  await kubo?.dispose()
  await db?.close()
  rmSync(dir, { recursive: true, force: true })
})

describe('/ipfs/<root>/ through symlinks', () => {
  it('follows dists/stable -> bookworm mid-path: the old root gives the old Release, the new root the new', async () => {
    const old = await get(gw.url, `/ipfs/${root1}/dists/stable/Release`)
    expect(old.status).toBe(200)
    expect(old.body.equals(releaseV1)).toBe(true)
    expect(old.headers.etag).toBe(`"${v1Cid}"`)
    expect(old.headers['content-length']).toBe(String(releaseV1.length))
    // The date of the version that the old tree held at the real path.
    expect(old.headers['last-modified']).toBe(mtime.toUTCString())
    expect(old.headers['x-ipfs-path']).toBe(`/ipfs/${root1}/dists/stable/Release`)
    // The CIDs walked: the root, dists, the symlink node, the directory it led to, the file.
    expect(old.headers['x-ipfs-roots']!.split(',')).toEqual([
      root1,
      await kuboCid(root1, 'dists'),
      await kuboCid(root1, 'dists/stable'),
      await kuboCid(root1, 'dists/bookworm'),
      v1Cid,
    ])
    const now = await get(gw.url, `/ipfs/${root2}/dists/stable/Release`)
    expect(now.status).toBe(200)
    expect(now.body.equals(releaseV2)).toBe(true)
    expect(now.headers.etag).toBe(`"${(await idx.get('dists/bookworm/Release'))!.cid}"`)
  })

  it('follows a file symlink at the end, a `..` target after a symlinked directory, and a symlinked directory at the end', async () => {
    const cur = await get(gw.url, `/ipfs/${root1}/current`)
    expect(cur.status).toBe(200)
    expect(cur.body.equals(releaseV1)).toBe(true)
    expect(cur.headers.etag).toBe(`"${v1Cid}"`)
    const pkg = await get(gw.url, `/ipfs/${root2}/dists/stable/pool/main/p/pkg_1.0.deb`)
    expect(pkg.status).toBe(200)
    expect(pkg.body.equals(deb)).toBe(true)
    expect(pkg.headers['content-type']).toBe('application/vnd.debian.binary-package')
    expect(pkg.headers['x-ipfs-roots']!.split(',').at(-1)).toBe(
      (await idx.get('pool/main/p/pkg_1.0.deb'))!.cid,
    )
    const moved = await get(gw.url, `/ipfs/${root1}/dists/stable`)
    expect(moved.status).toBe(301)
    const list = await get(gw.url, `/ipfs/${root1}/dists/stable/`, { accept: 'application/json' })
    expect(list.status).toBe(200)
    expect(JSON.parse(list.body.toString())).toEqual([
      { name: 'pool', type: 'directory', cid: await kuboCid(root1, 'pool') },
      {
        name: 'Contents-old',
        type: 'file',
        size: contents.length,
        cid: await kuboCid(root1, 'dists/bookworm/Contents-old'),
      },
      { name: 'Release', type: 'file', size: releaseV1.length, cid: v1Cid },
    ])
  })

  it('lists a symlink as what it leads to, and leaves out one leading out of the root, a dangling one and a loop', async () => {
    const dists = await get(gw.url, `/ipfs/${root1}/dists/`, { accept: 'application/json' })
    expect(dists.status).toBe(200)
    const bookworm = await kuboCid(root1, 'dists/bookworm')
    expect(JSON.parse(dists.body.toString())).toEqual([
      { name: 'bookworm', type: 'directory', cid: bookworm },
      { name: 'stable', type: 'directory', cid: bookworm },
    ])
    const top = await get(gw.url, `/ipfs/${root1}/`, { accept: 'application/json' })
    const entries = JSON.parse(top.body.toString()) as { name: string; type: string; size: number }[]
    // Before, `current` showed as an 18-byte file (its symlink node) that could not be opened.
    expect(entries.find((e) => e.name === 'current')).toEqual({
      name: 'current',
      type: 'file',
      size: releaseV1.length,
      cid: v1Cid,
    })
    const html = (await get(gw.url, `/ipfs/${root1}/dists/`)).body.toString()
    expect(html).toContain('<a href="stable/">stable/</a>')
    expect(html).not.toContain('out')
    expect(html).not.toContain('abs')
    expect(
      JSON.parse((await get(gw.url, `/ipfs/${root1}/loop/`, { accept: 'application/json' })).body.toString()),
    ).toEqual([])
  })

  it('does not follow a symlink leading out (above the root, absolute) nor a loop: a one-line 404 with the reason', async () => {
    const out = await get(gw.url, `/ipfs/${root1}/dists/out`)
    expect(out.status).toBe(404)
    expect(out.body.toString()).toMatch(/^404 Not Found: .*leads above the root, not followed\n$/)
    const abs = await get(gw.url, `/ipfs/${root1}/dists/abs`)
    expect(abs.status).toBe(404)
    expect(abs.body.toString()).toMatch(/^404 Not Found: .*abs -> \/etc\/hostname is not followed.*\n$/)
    const loop = await get(gw.url, `/ipfs/${root1}/loop/a`)
    expect(loop.status).toBe(404)
    expect(loop.body.toString()).toMatch(/^404 Not Found: .*more than 32 symlinks.*\(a loop\).*\n$/)
    expect((await get(gw.url, `/ipfs/${root1}/loop/b/x`)).status).toBe(404)
    const dangling = await get(gw.url, `/ipfs/${root1}/dists/dangling`)
    expect(dangling.status).toBe(404)
    expect(dangling.body.toString()).toMatch(/no entry "trixie"/)
    // A symlink node asked by its own CID has no directory to resolve it in.
    const bare = await get(gw.url, `/ipfs/${await kuboCid(root1, 'dists/stable')}`)
    expect(bare.status).toBe(404)
    expect(bare.body.toString()).toMatch(/a symlink with no directory to resolve it in/)
  })

  it('leaves the trustless formats walking the DAG as it is: a CAR of the real path, none through the symlink', async () => {
    const car = await get(gw.url, `/ipfs/${root1}/dists/bookworm/Release?format=car`)
    expect(car.status).toBe(200)
    const parsed = await readCar(car.body)
    const file = resolveInCar(parsed, CID.parse(root1), ['dists', 'bookworm', 'Release'])
    expect(fileFromCar(parsed, file).equals(releaseV1)).toBe(true)
    const through = await get(gw.url, `/ipfs/${root1}/dists/stable/Release?format=car`)
    expect(through.status).toBe(404)
    expect(through.body.toString()).toContain('CIDMIRROR_ERR_TRUSTLESS_NO_SUCH_PATH')
  })

  it('keeps the traversal corpus closed through symlinks (promise 7)', async () => {
    const corpus = [
      `/ipfs/${root1}/dists/out`,
      `/ipfs/${root1}/dists/out/`,
      `/ipfs/${root1}/dists/abs`,
      `/ipfs/${root1}/dists/stable/../../secret.txt`,
      `/ipfs/${root1}/dists/stable/%2e%2e/%2e%2e/secret.txt`,
      `/ipfs/${root1}/dists/stable%2f..%2f..%2fsecret.txt`,
      `/ipfs/${root1}/dists/stable/pool/%2e%2e/%2e%2e/%2e%2e/secret.txt`,
      `/ipfs/${root1}/current/..\\..\\secret.txt`,
    ]
    for (const path of corpus) {
      const { responses, data } = await rawExchange(gw.port, `GET ${path} HTTP/1.1\r\nHost: x\r\n\r\n`, 1)
      expect(data.toString('latin1')).not.toContain('TOP-SECRET')
      expect([400, 404], path).toContain(responses[0]?.status)
    }
  })
})

describe("/_deleted/ through the mirror's symlinks", () => {
  it('follows dists/stable -> bookworm and pool -> ../../pool to deleted files, and lists a symlink as what it leads to', async () => {
    const gone = await get(gw.url, '/_deleted/sample/dists/stable/Contents-old')
    expect(gone.status).toBe(200)
    expect(gone.body.equals(contents)).toBe(true)
    // The headers of the real path, in the last root that held it.
    expect(gone.headers['x-ipfs-path']).toBe(`/ipfs/${root1}/dists/bookworm/Contents-old`)
    expect(gone.headers['last-modified']).toBe(mtime.toUTCString())
    const pkg = await get(gw.url, '/_deleted/sample/dists/stable/pool/main/p/pkg_0.9.deb')
    expect(pkg.status).toBe(200)
    expect(pkg.body.equals(oldDeb)).toBe(true)
    expect(pkg.headers.etag).toBe(`"${await kuboCid(root1, 'pool/main/p/pkg_0.9.deb')}"`)
    const dists = await get(gw.url, '/_deleted/sample/dists/?format=json')
    expect(dists.status).toBe(200)
    expect(JSON.parse(dists.body.toString())).toEqual([
      { name: 'bookworm', type: 'directory', mtime: expect.any(String) },
      { name: 'stable', type: 'directory', mtime: expect.any(String) },
    ])
    const stable = await get(gw.url, '/_deleted/sample/dists/stable/?format=json')
    expect(JSON.parse(stable.body.toString())).toEqual([
      { name: 'pool', type: 'directory', mtime: expect.any(String) },
      {
        name: 'Contents-old',
        type: 'file',
        mtime: mtime.toUTCString(),
        size: contents.length,
        cid: await kuboCid(root1, 'dists/bookworm/Contents-old'),
      },
    ])
    expect((await get(gw.url, '/_deleted/sample/dists/stable')).status).toBe(301)
    // A present file through a symlink is still not a deleted one.
    expect((await get(gw.url, '/_deleted/sample/dists/stable/Release')).status).toBe(404)
  })

  it('does not follow a symlink leading out of the mirror, nor a loop: a one-line 404', async () => {
    const out = await get(gw.url, '/_deleted/sample/dists/out/')
    expect(out.status).toBe(404)
    expect(out.body.toString()).toMatch(/^404 Not Found: a symlink leads above the mirror, not followed\n$/)
    const abs = await get(gw.url, '/_deleted/sample/dists/abs')
    expect(abs.body.toString()).toMatch(/^404 Not Found: dists\/abs -> \/etc\/hostname is not followed.*\n$/)
    const loop = await get(gw.url, '/_deleted/sample/loop/a/x')
    expect(loop.status).toBe(404)
    expect(loop.body.toString()).toMatch(/more than 32 symlinks .*\(a loop\)/)
    for (const path of [
      '/_deleted/sample/dists/out',
      '/_deleted/sample/dists/stable/../../secret.txt',
      '/_deleted/sample/dists/stable/%2e%2e/%2e%2e/%2e%2e/secret.txt',
      '/_deleted/sample/dists/stable/pool%2f..%2f..%2f..%2fsecret.txt',
    ]) {
      const { responses, data } = await rawExchange(gw.port, `GET ${path} HTTP/1.1\r\nHost: x\r\n\r\n`, 1)
      expect(data.toString('latin1')).not.toContain('TOP-SECRET')
      expect([400, 404], path).toContain(responses[0]?.status)
    }
  })
})

describe('/_deleted/ through symlinks as they were when the file left', () => {
  let aCid: string
  beforeAll(async () => {
    aCid = (await idx.versionsOf('swap/a.txt'))[0]!.cid
    // A later sync: a new symlink of the same name, leading to a file that is in the tree.
    put('swap/b.txt', bText)
    link('swap/link', 'b.txt')
    await scanAndMap()
    expect((await idx.get('swap/link'))?.target).toBe('b.txt')
  })

  it("serves the deleted file a deleted symlink led to (a.txt), not what today's symlink of that name leads to", async () => {
    const r = await get(gw.url, '/_deleted/sample/swap/link')
    expect(r.status).toBe(200)
    // a.txt's bytes, fetched back from Kubo and verified against a.txt's CID; not b.txt's.
    expect(r.body.equals(aText)).toBe(true)
    expect(r.headers.etag).toBe(`"${aCid}"`)
    expect(r.headers['content-length']).toBe(String(aText.length))
    expect(r.headers['last-modified']).toBe(mtime.toUTCString())
    expect(r.headers['x-ipfs-path']).toBe(`/ipfs/${root1}/swap/a.txt`)
    expect(r.headers['x-ipfs-roots']!.split(',').at(-1)).toBe(aCid)
    expect(existsSync(join(root, 'swap/a.txt'))).toBe(false)
    // The file itself, and HEAD and a Range through the old symlink, as for any deleted file.
    expect((await get(gw.url, '/_deleted/sample/swap/a.txt')).body.equals(aText)).toBe(true)
    const part = await get(gw.url, '/_deleted/sample/swap/link', { range: 'bytes=0-5' })
    expect(part.status).toBe(206)
    expect(part.body.equals(aText.subarray(0, 6))).toBe(true)
    // Today's symlink and its present file are still the mirror's, not a deleted path.
    expect((await get(gw.url, '/_deleted/sample/swap/b.txt')).status).toBe(404)
    expect((await get(gw.url, '/sample/swap/link')).body.equals(bText)).toBe(true)
  })

  it('follows a symlinked directory deleted with its whole tree, as that tree had it', async () => {
    const r = await get(gw.url, '/_deleted/sample/olddists/stable/Contents')
    expect(r.status).toBe(200)
    expect(r.body.equals(oldContents)).toBe(true)
    expect(r.headers.etag).toBe(`"${await kuboCid(root1, 'olddists/bookworm/Contents')}"`)
    expect(r.headers['x-ipfs-path']).toBe(`/ipfs/${root1}/olddists/bookworm/Contents`)
    // A name that path never had is still nothing.
    expect((await get(gw.url, '/_deleted/sample/olddists/stable/Release')).status).toBe(404)
    // A file symlink deleted with the tree: served, and listed, as the file it led to.
    const cur = await get(gw.url, '/_deleted/sample/olddists/current')
    expect(cur.status).toBe(200)
    expect(cur.body.equals(oldContents)).toBe(true)
  })

  it("lists a symlink as the deleted file it led to when it left (or when today's leads to none)", async () => {
    const contentsCid = await kuboCid(root1, 'olddists/bookworm/Contents')
    const old = await get(gw.url, '/_deleted/sample/olddists/?format=json')
    expect(JSON.parse(old.body.toString())).toEqual([
      { name: 'bookworm', type: 'directory', mtime: expect.any(String) },
      { name: 'stable', type: 'directory', mtime: expect.any(String) },
      {
        name: 'current',
        type: 'file',
        mtime: mtime.toUTCString(),
        size: oldContents.length,
        cid: contentsCid,
      },
    ])
    // The symlinked directory as it was: redirected to its slash, listed as the directory it led to.
    expect((await get(gw.url, '/_deleted/sample/olddists/stable')).status).toBe(301)
    const stable = await get(gw.url, '/_deleted/sample/olddists/stable/?format=json')
    expect(stable.status).toBe(200)
    expect(JSON.parse(stable.body.toString())).toEqual([
      {
        name: 'Contents',
        type: 'file',
        mtime: mtime.toUTCString(),
        size: oldContents.length,
        cid: contentsCid,
      },
    ])
    const swap = await get(gw.url, '/_deleted/sample/swap/?format=json')
    expect(JSON.parse(swap.body.toString())).toEqual([
      { name: 'a.txt', type: 'file', mtime: mtime.toUTCString(), size: aText.length, cid: aCid },
      { name: 'link', type: 'file', mtime: mtime.toUTCString(), size: aText.length, cid: aCid },
    ])
  })
})
