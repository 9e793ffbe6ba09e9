/**
 * `whole_file_digest`: the scan keeps each multi-chunk file's whole SHA-256 (checked against
 * `sha256sum`), from the same reads as its CID (the CIDs equal a scan without the option); an
 * unchanged rescan keeps it without hashing, a changed file gets the new one, the option off gives
 * none; records written before the field decode as they did; the gateway sends it as `Repr-Digest`
 * only while the file's stat matches the record.
 */
import { execFileSync } from 'node:child_process'
import { createHash, randomBytes } from 'node:crypto'
import { mkdirSync, mkdtempSync, rmSync, utimesSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { request } from 'undici'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { HashPool } from '../src/cid/index.ts'
import { type Database, openDatabase } from '../src/db.ts'
import type { Gateway } from '../src/gateway/index.ts'
import { type MirrorIndex, openMirrorIndex } from '../src/index/index.ts'
import { decodeRecord, encodeRecord, type StoredRecord } from '../src/index/records.ts'
import { loadConfig } from '../src/sync/index.ts'
import { gatewayOver } from './helpers/gateway.ts'
import { tool } from './helpers/tools.ts'
import { tempDir, writeToml } from './jobs-helpers.ts'

const MiB = 1024 * 1024
let work: string
let tree: string
let plainTree: string
let db: Database
let idx: MirrorIndex
let plain: MirrorIndex
let pool: HashPool
let gw: Gateway

/** `sha256sum`'s hex digest of a file, as base64 (the record's and Repr-Digest's form). */
function sha256sum(path: string): string {
  const hex = execFileSync(tool('sha256sum'), [path], { encoding: 'utf8' }).split(' ')[0]!
  return Buffer.from(hex, 'hex').toString('base64')
}

function write(root: string, rel: string, data: Uint8Array | string): void {
  const p = join(root, rel)
  mkdirSync(join(p, '..'), { recursive: true })
  writeFileSync(p, data)
}

async function get(path: string) {
  const r = await request(`${gw.url}${path}`)
  const body = Buffer.from(await r.body.arrayBuffer())
  return { status: r.statusCode, headers: r.headers as Record<string, string>, body }
}

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), 'cidmirror-digest-'))
  tree = join(work, 'digest')
  plainTree = join(work, 'plain')
  for (const root of [tree, plainTree]) {
    write(root, 'small.txt', 'one chunk\n')
    write(root, 'exact.bin', randomBytes(1024 * 1024))
    write(root, 'empty', '')
    write(root, 'three.bin', randomBytes(3 * MiB + 17))
    // Above the pool's split size (32 MiB): without the option its ranges go to every thread.
    write(root, 'iso/huge.iso', randomBytes(33 * MiB + 5))
  }
  db = await openDatabase(join(work, 'db'))
  // Two threads at least, so that the split path exists and the digest path must avoid it.
  pool = new HashPool({ threads: 2 })
  idx = openMirrorIndex(db, 'digest', tree)
  plain = openMirrorIndex(db, 'plain', plainTree)
  gw = await gatewayOver(db, [
    { name: 'digest', root: tree, duplicates: [] },
    { name: 'plain', root: plainTree, duplicates: [] },
  ])
})

afterAll(async () => {
  await gw?.close()
  await pool?.destroy()
  await db?.close()
  rmSync(work, { recursive: true, force: true })
})

describe('whole_file_digest in the index', () => {
  it('a multi-chunk file gets its sha256sum; one-chunk files and the option off get none; CIDs unchanged', async () => {
    const s = await idx.scan({ pool, wholeFileDigest: true })
    expect(s.filesHashed).toBe(5)
    await plain.scan({ pool })
    for (const rel of ['three.bin', 'iso/huge.iso']) {
      const r = (await idx.get(rel))!
      expect(r.sha256).toBe(sha256sum(join(tree, rel)))
      // The same bytes (random per tree) would differ; compare the CID with a plain hash of this tree's file.
      expect(r.cid).toBe((await pool.hashFile(join(tree, rel), r.size)).cid.toString())
      expect((await plain.get(rel))!.sha256).toBeUndefined()
    }
    for (const rel of ['small.txt', 'exact.bin', 'empty'])
      expect((await idx.get(rel))!.sha256).toBeUndefined()
    // Their raw-leaf CID is their digest: the gateway has it without the record's.
    const exact = await get('/digest/exact.bin')
    expect(exact.headers['repr-digest']).toBe(`sha-256=:${sha256sum(join(tree, 'exact.bin'))}:`)
  })

  it('an unchanged rescan keeps the digest without hashing', async () => {
    const before = (await idx.get('three.bin'))!
    const s = await idx.scan({ pool, wholeFileDigest: true })
    expect(s.filesHashed).toBe(0)
    expect(s.unchanged).toBe(5)
    expect((await idx.get('three.bin'))!.sha256).toBe(before.sha256)
  })

  it('a changed file gets the new digest; changed again with the option off, it has none', async () => {
    const path = join(tree, 'three.bin')
    const old = (await idx.get('three.bin'))!.sha256
    writeFileSync(path, randomBytes(2 * MiB + 3))
    const s = await idx.scan({ pool, wholeFileDigest: true })
    expect(s.changed).toBe(1)
    const now = (await idx.get('three.bin'))!.sha256
    expect(now).toBe(sha256sum(path))
    expect(now).not.toBe(old)
    writeFileSync(path, randomBytes(2 * MiB + 4))
    await idx.scan({ pool })
    expect((await idx.get('three.bin'))!.sha256).toBeUndefined()
    // The option back on: the unchanged file is hashed once more for its digest, then kept.
    const back = await idx.scan({ pool, wholeFileDigest: true })
    expect(back.filesHashed).toBe(1)
    expect((await idx.get('three.bin'))!.sha256).toBe(sha256sum(path))
    expect((await idx.scan({ pool, wholeFileDigest: true })).filesHashed).toBe(0)
  })
})

describe('records', () => {
  const base: StoredRecord = {
    kind: 'file',
    cid: 'bafybeigdyrzt5sfp7udm7hu76uh7y26nf3efuylqabf3oclgtqy55fbzdi',
    tsize: 3_145_900,
    size: 3_145_745,
    mtimeMs: 1_700_000_000_123,
    ctimeMs: 1_700_000_000_456,
    ino: 42,
    firstSeen: 1_700_000_000_000,
    lastSynced: 1_700_000_100_000,
    state: 'present',
    scan: 7,
  }

  it('a record written before the digest field decodes as it did', () => {
    const old = `[0,"${base.cid}",3145900,3145745,1700000000123,1700000000456,42,1700000000000,1700000100000,0,7]`
    expect(decodeRecord(JSON.parse(old))).toEqual(base)
    const oldLink = `[2,"${base.cid}",5,5,1,2,3,4,5,0,7,"a.txt"]`
    expect(decodeRecord(JSON.parse(oldLink))).toMatchObject({ kind: 'symlink', target: 'a.txt' })
    expect(decodeRecord(JSON.parse(oldLink)).sha256).toBeUndefined()
    // And a record without the digest is still written in the old form.
    expect(encodeRecord(base)).toBe(old)
  })

  it('a digest round-trips, with and without a target', () => {
    const sha256 = Buffer.alloc(32, 7).toString('base64')
    const withDigest = { ...base, sha256 }
    expect(decodeRecord(JSON.parse(encodeRecord(withDigest)))).toEqual(withDigest)
    const both = { ...base, target: 'x "y"', sha256 }
    expect(decodeRecord(JSON.parse(encodeRecord(both)))).toEqual(both)
  })
})

describe('the gateway sends Repr-Digest for large files', () => {
  it('from the record, for the bytes served; none for the option off', async () => {
    for (const rel of ['three.bin', 'iso/huge.iso']) {
      const r = await get(`/digest/${rel}`)
      expect(r.status).toBe(200)
      expect(r.headers['repr-digest']).toBe(
        `sha-256=:${createHash('sha256').update(r.body).digest('base64')}:`,
      )
      expect(r.headers['repr-digest']).toBe(`sha-256=:${sha256sum(join(tree, rel))}:`)
      const p = await get(`/plain/${rel}`)
      expect(p.status).toBe(200)
      expect(p.headers['repr-digest']).toBeUndefined()
    }
    const meta4 = await get('/digest/three.bin.meta4')
    expect(meta4.body.toString()).toContain(
      `<hash type="sha-256">${Buffer.from(sha256sum(join(tree, 'three.bin')), 'base64').toString('hex')}</hash>`,
    )
  })

  it('a file changed since the scan gets no Repr-Digest until the next scan', async () => {
    const path = join(tree, 'three.bin')
    const before = await get('/digest/three.bin')
    expect(before.headers['repr-digest']).toBeDefined()
    const next = randomBytes(2 * MiB + 9)
    writeFileSync(path, next)
    // A distinct mtime, so the change shows even within the stat's resolution.
    utimesSync(path, new Date(), new Date(Date.now() + 5000))
    let after = await get('/digest/three.bin')
    const deadline = Date.now() + 30_000
    while (!after.body.equals(next) && Date.now() < deadline) {
      // The old bytes may be served within the gateway's stat cache, but always with their own digest.
      expect(after.headers['repr-digest']).toBe(before.headers['repr-digest'])
      await new Promise((r) => setTimeout(r, 25))
      after = await get('/digest/three.bin')
    }
    expect(after.body.equals(next)).toBe(true)
    expect(after.headers['repr-digest']).toBeUndefined()
    await idx.scan({ pool, wholeFileDigest: true })
    const rescanned = await get('/digest/three.bin')
    expect(rescanned.headers['repr-digest']).toBe(`sha-256=:${sha256sum(path)}:`)
  })
})

describe('config', () => {
  it('[[mirrors]] whole_file_digest is read, off by default', async () => {
    const tmp = tempDir('cidmirror-digestcfg-')
    try {
      const file = writeToml({
        dir: tmp.dir,
        mirrors:
          '[[mirrors]]\nname = "iso"\nupstream = "rsync://127.0.0.1:1/i/"\nwhole_file_digest = true\n\n[[mirrors]]\nname = "deb"\nupstream = "rsync://127.0.0.1:1/d/"\n',
      })
      const c = await loadConfig(file)
      expect(c.mirrors.map((m) => [m.name, m.wholeFileDigest])).toEqual([
        ['iso', true],
        ['deb', false],
      ])
    } finally {
      tmp.cleanup()
    }
  })
})
