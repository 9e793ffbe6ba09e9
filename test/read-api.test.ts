import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import { request } from 'node:http'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { IndexClient, type ReadAccess, registerIndexRoutes } from '../src/api/index.ts'
import { MalformedCidError } from '../src/cid/index.ts'
import { type Database, openDatabase } from '../src/db.ts'
import {
  type IndexReader,
  InvalidIndexPathError,
  InvalidMirrorNameError,
  MirrorNotIndexedError,
  openIndexReader,
  openMirrorIndex,
} from '../src/index/index.ts'
import { createApiServer } from '../src/sync/http.ts'
import { quietLog, TOKEN } from './jobs-helpers.ts'

let work: string
let db: Database
let local: IndexReader
const servers: { close(): Promise<unknown> }[] = []
const base: Record<ReadAccess, string> = { token: '', public: '' }

async function serve(access: ReadAccess | (() => ReadAccess)): Promise<string> {
  const app = createApiServer({ log: quietLog(), token: TOKEN })
  registerIndexRoutes(app, { reader: local, access, auth: app.auth })
  await app.listen({ host: '127.0.0.1', port: 0 })
  servers.push(app)
  const addr = app.server.address()
  return `http://127.0.0.1:${typeof addr === 'object' && addr ? addr.port : 0}`
}

/** A GET with the request target sent byte for byte (no client-side URL normalization). */
function rawGet(
  url: string,
  target: string,
  token?: string,
): Promise<{ status: number; body: Record<string, unknown> }> {
  const u = new URL(url)
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: u.hostname,
        port: u.port,
        path: target,
        headers: token ? { authorization: `Bearer ${token}` } : {},
      },
      (res) => {
        let text = ''
        res.setEncoding('utf8')
        res.on('data', (d: string) => {
          text += d
        })
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text ? JSON.parse(text) : {} }))
      },
    )
    req.on('error', reject)
    req.end()
  })
}

const DEB = 'debian'
const OTHER = 'ubuntu+ports'
let debRoot: string

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), 'cidmirror-read-api-'))
  db = await openDatabase(join(work, 'db'))
  local = openIndexReader(db)
  debRoot = join(work, DEB)
  mkdirSync(join(debRoot, 'pool/main/a'), { recursive: true })
  mkdirSync(join(debRoot, 'dists/bookworm'), { recursive: true })
  for (let i = 0; i < 12; i++) writeFileSync(join(debRoot, 'pool/main/a', `same-${i}.deb`), 'same bytes')
  writeFileSync(join(debRoot, 'pool/main/a', 'libc6_2.36+deb12u1_amd64.deb'), Buffer.alloc(3000, 1))
  writeFileSync(join(debRoot, 'pool/main/a', 'name with spaces %2F?#.txt'), 'odd name')
  writeFileSync(join(debRoot, 'dists/bookworm/Release'), 'release v1')
  writeFileSync(join(debRoot, 'gone.txt'), 'soon gone')
  symlinkSync('bookworm', join(debRoot, 'dists/stable'))
  const idx = openMirrorIndex(db, DEB, debRoot)
  await idx.scan()
  rmSync(join(debRoot, 'gone.txt'))
  writeFileSync(join(debRoot, 'dists/bookworm/Release'), 'release v2')
  await idx.scan()
  await idx.scan()
  const otherRoot = join(work, 'other')
  mkdirSync(otherRoot)
  for (let i = 0; i < 3; i++) writeFileSync(join(otherRoot, `copy-${i}`), 'same bytes')
  await openMirrorIndex(db, OTHER, otherRoot).scan()
  base.token = await serve('token')
  base.public = await serve('public')
})
afterAll(async () => {
  for (const s of servers) await s.close()
  await db.close()
  rmSync(work, { recursive: true, force: true })
})

/** A call's answer, or its failure's class and message. */
async function settle<T>(p: Promise<T>): Promise<{ ok?: T; err?: string; name?: string }> {
  try {
    return { ok: await p }
  } catch (e) {
    return { err: (e as Error).message, name: (e as Error).constructor.name }
  }
}

describe('the read API answers as the database does', () => {
  it('every reader call gives the same through the client as offline, errors included', async () => {
    const client = new IndexClient(base.token, TOKEN)
    const sameCid = (await local.record(DEB, 'pool/main/a/same-0.deb'))!.cid
    const calls: [string, (r: IndexReader) => Promise<unknown>][] = [
      ['mirrors', (r) => r.mirrors()],
      ['summary', (r) => r.summary(DEB)],
      ['summary other', (r) => r.summary(OTHER)],
      ['root record', (r) => r.record(DEB, '')],
      ['file record', (r) => r.record(DEB, 'pool/main/a/libc6_2.36+deb12u1_amd64.deb')],
      ['odd name', (r) => r.record(DEB, 'pool/main/a/name with spaces %2F?#.txt')],
      ['symlink', (r) => r.record(DEB, './dists//stable/')],
      ['deleted', (r) => r.record(DEB, 'gone.txt')],
      ['absent', (r) => r.record(DEB, 'no/such/file')],
      ['records', (r) => r.records(DEB)],
      ['records page', (r) => r.records(DEB, { under: 'pool', limit: 5 })],
      ['records next', (r) => r.records(DEB, { under: 'pool', after: 'pool/main/a/same-1.deb', limit: 5 })],
      ['children root', (r) => r.children(DEB, '')],
      ['children', (r) => r.children(DEB, 'pool/main/a')],
      ['children page', (r) => r.children(DEB, 'pool/main/a', { limit: 3 })],
      ['children next', (r) => r.children(DEB, 'pool/main/a', { after: 'same-1.deb', limit: 3 })],
      ['children bad after', (r) => r.children(DEB, '', { after: 'a/b' })],
      ['scans', (r) => r.scans(DEB)],
      ['scans page', (r) => r.scans(DEB, { limit: 2 })],
      ['scans before', (r) => r.scans(DEB, { before: 2 })],
      ['scan', (r) => r.scan(DEB, 2)],
      ['no scan', (r) => r.scan(DEB, 99)],
      ['paths', (r) => r.pathsOf(sameCid)],
      ['paths page', (r) => r.pathsOf(sameCid, { limit: 10 })],
      ['paths next', (r) => r.pathsOf(sameCid, { after: `${DEB}/pool/main/a/same-9.deb`, limit: 4 })],
      ['paths one mirror', (r) => r.pathsOf(sameCid, { mirror: OTHER })],
      ['paths none', (r) => r.pathsOf('bafkqaaa')],
      ['unknown mirror', (r) => r.summary('nope')],
      ['unknown mirror record', (r) => r.record('nope', 'x')],
      ['unknown mirror paths', (r) => r.pathsOf(sameCid, { mirror: 'nope' })],
      ['bad name', (r) => r.record('../etc', 'x')],
      ['bad path', (r) => r.record(DEB, 'pool/../../etc/passwd')],
      ['bad cid', (r) => r.pathsOf('not-a-cid')],
    ]
    for (const [what, call] of calls) {
      const offline = await settle(call(local))
      const online = await settle(call(client))
      expect({ what, online }).toEqual({ what, online: offline })
    }
    // What those answers hold, checked once.
    const summary = await local.summary(DEB)
    expect(summary).toMatchObject({
      mirror: DEB,
      root: debRoot,
      files: 16,
      dirs: 6,
      states: { present: 16, evicted: 0, deleted: 1, dirs: 6 },
    })
    expect(summary.rootCid).toBe(summary.lastScan?.rootCid)
    expect((await local.record(DEB, 'dists/stable'))?.kind).toBe('symlink')
    const all = await local.pathsOf(sameCid)
    expect(all.paths).toHaveLength(15)
    expect(all.next).toBeNull()
    const page = await local.pathsOf(sameCid, { limit: 10 })
    const rest = await local.pathsOf(sameCid, { after: page.next!, limit: 10 })
    expect([...page.paths, ...rest.paths]).toEqual(all.paths)
    expect(rest.next).toBeNull()
    expect(all.paths.filter((p) => p.mirror === OTHER)).toHaveLength(3)
    const scans = await local.scans(DEB, { limit: 2 })
    expect(scans.scans.map((s) => s.id)).toEqual([3, 2])
    expect((await local.scans(DEB, { before: scans.next!, limit: 2 })).scans.map((s) => s.id)).toEqual([1])
    // A listing holds the entries of one directory, not the tree below them, and pages through it.
    const root = await local.children(DEB, '')
    expect(root.records.map((r) => r.path)).toEqual(
      (await local.records(DEB)).records.map((r) => r.path).filter((p) => p !== '' && !p.includes('/')),
    )
    const dir = await local.children(DEB, 'pool/main/a')
    expect(dir.records.length).toBeGreaterThan(6)
    expect(
      dir.records.every((r) => r.path.startsWith('pool/main/a/') && r.path.split('/').length === 4),
    ).toBe(true)
    const first = await local.children(DEB, 'pool/main/a', { limit: 4 })
    const second = await local.children(DEB, 'pool/main/a', { after: first.next!, limit: 1000 })
    expect([...first.records, ...second.records]).toEqual(dir.records)
    expect(second.next).toBeNull()
    const records = await local.records(DEB, { under: 'pool' })
    expect(records.records[0]?.path).toBe('pool')
    expect(records.records.every((r) => r.path === 'pool' || r.path.startsWith('pool/'))).toBe(true)
    expect((await settle(local.record('../etc', 'x'))).name ?? '').toBe(InvalidMirrorNameError.name)
    expect((await settle(local.record(DEB, 'a/../b'))).name ?? '').toBe(InvalidIndexPathError.name)
    expect((await settle(local.pathsOf('zzz'))).name ?? '').toBe(MalformedCidError.name)
    expect((await settle(client.summary('nope'))).name ?? '').toBe(MirrorNotIndexedError.name)
  })

  it('a CID in another form (CIDv0, base58) finds the same paths', async () => {
    // The empty directory's CID of Kubo's profile, as CIDv0 text: not in this index, but parsed.
    const v1 = 'bafybeiczsscdsbs7ffqz55asqdf3smv6klcw3gofszvwlyarci47bgf354'
    const v0 = 'QmUNLLsPACCz1vLxQVkXqqLX5R1X345qqfHbsf67hvA3Nn'
    const client = new IndexClient(base.token, TOKEN)
    expect((await client.pathsOf(v0)).cid).toBe(v1)
    expect((await local.pathsOf(v0)).cid).toBe(v1)
  })
})

describe('read access', () => {
  it('token by default: no token or a wrong one is 401; public needs none', async () => {
    for (const target of ['/index/mirrors', `/index/mirrors/${DEB}`, `/index/mirrors/${DEB}/path/gone.txt`]) {
      expect((await rawGet(base.token, target)).status).toBe(401)
      expect((await rawGet(base.token, target, 'wrong')).status).toBe(401)
      expect((await rawGet(base.token, target, TOKEN)).status).toBe(200)
      expect((await rawGet(base.public, target)).status).toBe(200)
    }
    const denied = await rawGet(base.token, '/index/mirrors')
    expect(denied.body.code).toBe('CIDMIRROR_ERR_UNAUTHORIZED')
    const client = new IndexClient(base.token)
    await expect(client.mirrors()).rejects.toThrow(/HTTP 401/)
  })

  it('is read at each request, so a config reload applies it', async () => {
    let access: ReadAccess = 'token'
    const url = await serve(() => access)
    expect((await rawGet(url, '/index/mirrors')).status).toBe(401)
    access = 'public'
    expect((await rawGet(url, '/index/mirrors')).status).toBe(200)
    access = 'token'
    expect((await rawGet(url, '/index/mirrors')).status).toBe(401)
    expect((await rawGet(url, '/index/mirrors', TOKEN)).status).toBe(200)
  })
})

describe('bad input is a 4xx with a code, never a 500', () => {
  const long = 'x'.repeat(300)
  const cases: [string, number, string][] = [
    [`/index/mirrors/${DEB}/path/..`, 400, 'CIDMIRROR_ERR_INVALID_PATH'],
    [`/index/mirrors/${DEB}/path/pool/../../../etc/passwd`, 400, 'CIDMIRROR_ERR_INVALID_PATH'],
    [`/index/mirrors/${DEB}/path/%2e%2e/%2e%2e/etc/passwd`, 400, 'CIDMIRROR_ERR_INVALID_PATH'],
    [`/index/mirrors/${DEB}/path/pool%2f..%2f..%2fetc`, 400, 'CIDMIRROR_ERR_INVALID_PATH'],
    [`/index/mirrors/${DEB}/path/a%00b`, 400, 'CIDMIRROR_ERR_INVALID_PATH'],
    [`/index/mirrors/${DEB}/path/${long}`, 400, 'CIDMIRROR_ERR_INVALID_PATH'],
    [`/index/mirrors/${DEB}/path/${'abcdefgh/'.repeat(500)}`, 400, 'CIDMIRROR_ERR_INVALID_PATH'],
    [`/index/mirrors/${DEB}/path/%zz`, 400, 'CIDMIRROR_ERR_BAD_REQUEST'],
    [`/index/mirrors/${DEB}/path/no-such-file`, 404, 'CIDMIRROR_ERR_NOT_INDEXED'],
    [`/index/mirrors/%2e%2e`, 400, 'CIDMIRROR_ERR_MIRROR_NAME'],
    [`/index/mirrors/a%2fb`, 400, 'CIDMIRROR_ERR_MIRROR_NAME'],
    [`/index/mirrors/a%00b`, 400, 'CIDMIRROR_ERR_MIRROR_NAME'],
    [`/index/mirrors/${'m'.repeat(101)}`, 400, 'CIDMIRROR_ERR_MIRROR_NAME'],
    [`/index/mirrors/${'%C3%A9'.repeat(300)}`, 400, 'CIDMIRROR_ERR_MIRROR_NAME'],
    [`/index/mirrors/nope`, 404, 'CIDMIRROR_ERR_MIRROR_NOT_INDEXED'],
    [`/index/mirrors/nope/scans`, 404, 'CIDMIRROR_ERR_MIRROR_NOT_INDEXED'],
    [`/index/mirrors/${DEB}/records?under=../x`, 400, 'CIDMIRROR_ERR_INVALID_PATH'],
    [`/index/mirrors/${DEB}/records?after=%00`, 400, 'CIDMIRROR_ERR_INVALID_PATH'],
    [`/index/mirrors/${DEB}/records?limit=0`, 400, 'CIDMIRROR_ERR_BAD_REQUEST'],
    [`/index/mirrors/${DEB}/records?limit=10001`, 400, 'CIDMIRROR_ERR_BAD_REQUEST'],
    [`/index/mirrors/${DEB}/records?limit=ten`, 400, 'CIDMIRROR_ERR_BAD_REQUEST'],
    [`/index/mirrors/${DEB}/records?limit=1&limit=2`, 400, 'CIDMIRROR_ERR_BAD_REQUEST'],
    [`/index/mirrors/${DEB}/records?depth=1`, 400, 'CIDMIRROR_ERR_BAD_REQUEST'],
    [`/index/mirrors/${DEB}?x=1`, 400, 'CIDMIRROR_ERR_BAD_REQUEST'],
    [`/index/mirrors/${DEB}/scans?before=-1`, 400, 'CIDMIRROR_ERR_BAD_REQUEST'],
    [`/index/mirrors/${DEB}/scans?before=99999999999999999999`, 400, 'CIDMIRROR_ERR_BAD_REQUEST'],
    [`/index/mirrors/${DEB}/scans/x`, 400, 'CIDMIRROR_ERR_BAD_REQUEST'],
    [`/index/mirrors/${DEB}/scans/0`, 400, 'CIDMIRROR_ERR_BAD_REQUEST'],
    [`/index/mirrors/${DEB}/scans/99`, 404, 'CIDMIRROR_ERR_UNKNOWN_SCAN'],
    [`/index/cids/not-a-cid`, 400, 'CIDMIRROR_ERR_INVALID_CID'],
    [`/index/cids/b${'a'.repeat(300)}`, 400, 'CIDMIRROR_ERR_INVALID_CID'],
    [`/index/cids/bafkqaaa?mirror=..`, 400, 'CIDMIRROR_ERR_MIRROR_NAME'],
    [`/index/cids/bafkqaaa?mirror=nope`, 404, 'CIDMIRROR_ERR_MIRROR_NOT_INDEXED'],
    [`/index/cids/bafkqaaa?after=${DEB}/../x`, 400, 'CIDMIRROR_ERR_INVALID_PATH'],
    [`/index/cids/bafkqaaa?limit=-5`, 400, 'CIDMIRROR_ERR_BAD_REQUEST'],
    [`/index/nothing-here`, 404, 'CIDMIRROR_ERR_NO_ROUTE'],
  ]
  it.each(cases)('%s -> %i %s', async (target, status, code) => {
    const res = await rawGet(base.token, target, TOKEN)
    expect({ status: res.status, code: res.body.code }).toEqual({ status, code })
    expect(typeof res.body.error).toBe('string')
  })
})
