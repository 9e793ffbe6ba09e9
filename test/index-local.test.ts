/**
 * The index room's local file states (src/index/local.ts) over a real LevelDB and a real tree: an
 * eviction recorded before the unlink, kept by scans with the root CID unchanged; a fetched-back file
 * marked present again (no re-hash) with its refetched time; the evicted list; an evicted path gone
 * upstream recorded deleted by the next scan, its directory re-encoded as Kubo would.
 */
import {
  copyFileSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  renameSync,
  rmSync,
  unlinkSync,
  writeFileSync,
} from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type Database, openDatabase } from '../src/db.ts'
import { type MirrorIndex, openMirrorIndex, type PathRecord } from '../src/index/index.ts'
import { kuboRepo } from './helpers/index-kubo.ts'

let work: string
let tree: string
let db: Database
let idx: MirrorIndex
let kubo: ReturnType<typeof kuboRepo>
let firstRoot: string

function write(rel: string, data: string): void {
  const p = join(tree, rel)
  mkdirSync(join(p, '..'), { recursive: true })
  writeFileSync(p, data)
}

function item(r: PathRecord) {
  return { path: r.path, cid: r.cid, size: r.size, mtimeMs: r.mtimeMs }
}

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), 'cidmirror-local-'))
  tree = join(work, 'tree')
  kubo = kuboRepo(work)
  write('pool/a.deb', 'package a\n')
  write('pool/b.deb', 'package b\n')
  write('pool/c.deb', 'package c\n')
  write('dists/Release', 'release\n')
  db = await openDatabase(join(work, 'db'))
  idx = openMirrorIndex(db, 'm', tree)
  const s = await idx.scan()
  firstRoot = s.rootCid
  expect(firstRoot).toBe(kubo.rootCid(tree))
})

afterAll(async () => {
  await db?.close()
  rmSync(work, { recursive: true, force: true })
})

describe('local file states', () => {
  it('records an eviction before remove is called, and a scan keeps it with the same root CID', async () => {
    const a = (await idx.get('pool/a.deb'))!
    const seen: string[] = []
    const out = await idx.local.evict([item(a)], async (rec) => {
      // Promise 1/6: the record says evicted before the bytes leave, as read by a fresh reader.
      const again = openMirrorIndex(db, 'm', tree)
      seen.push((await again.get(rec.path))!.state, (await again.local.of(rec.path))!.state)
      unlinkSync(join(tree, rec.path))
    })
    expect(out).toEqual([expect.objectContaining({ path: 'pool/a.deb', evicted: true })])
    expect(seen).toEqual(['evicted', 'evicted'])
    const st = await idx.local.of('pool/a.deb')
    expect(st).toMatchObject({ state: 'evicted', cid: a.cid, size: a.size, mtimeMs: a.mtimeMs })
    expect(st?.evictedAt).toBeDefined()

    const s = await idx.scan()
    expect(s.evicted).toBe(1)
    expect(s.deleted).toBe(0)
    expect(s.rootCid).toBe(firstRoot)
    expect(await idx.get('pool/a.deb')).toMatchObject({ state: 'evicted', cid: a.cid, size: a.size })
    expect(await idx.pathsOf(a.cid)).toEqual(['pool/a.deb'])
    const listed = []
    for await (const e of idx.local.evicted()) listed.push(e)
    expect(listed).toEqual([
      { path: 'pool/a.deb', cid: a.cid, size: a.size, mtimeMs: a.mtimeMs, evictedAt: expect.any(Number) },
    ])
  })

  it('refuses to evict what changed since it was judged, or is not present', async () => {
    const b = (await idx.get('pool/b.deb'))!
    let removed = 0
    const out = await idx.local.evict(
      [
        { ...item(b), cid: 'bafkreiotherotherotherotherotherotherotherotherotherother' },
        { ...item(b), mtimeMs: b.mtimeMs + 1 },
        item((await idx.get('pool/a.deb'))!),
        { path: 'pool/nothing', cid: b.cid, size: 1, mtimeMs: 1 },
        { path: 'pool', cid: b.cid, size: 0, mtimeMs: 0 },
      ],
      async () => {
        removed++
      },
    )
    expect(out.map((o) => (o.evicted ? 'evicted' : o.reason))).toEqual([
      'changed',
      'changed',
      'not-present',
      'not-indexed',
      'not-a-file',
    ])
    expect(removed).toBe(0)
    expect((await idx.get('pool/b.deb'))!.state).toBe('present')
  })

  it('a fetched-back file marked refetched is present again and not hashed by the next scan', async () => {
    const a = (await idx.get('pool/a.deb'))!
    // As the fetch-back does: a temp file beside the tree, renamed into place.
    const tmp = join(tree, 'pool/.a.deb.tmp')
    writeFileSync(tmp, 'package a\n')
    renameSync(tmp, join(tree, 'pool/a.deb'))
    const st = lstatSync(join(tree, 'pool/a.deb'))
    const at = Date.now()
    const rec = await idx.local.markRefetched('pool/a.deb', {
      cid: a.cid,
      stat: { size: st.size, mtimeMs: st.mtimeMs, ctimeMs: st.ctimeMs, ino: st.ino },
      at,
    })
    expect(rec).toMatchObject({ state: 'present', cid: a.cid, ino: st.ino })
    expect(await idx.local.of('pool/a.deb')).toMatchObject({
      state: 'refetched',
      refetchedAt: new Date(at).toISOString(),
    })
    const s = await idx.scan()
    expect(s.filesHashed).toBe(0)
    expect(s.evicted).toBe(0)
    expect(s.rootCid).toBe(firstRoot)
    expect(await idx.local.of('pool/a.deb')).toMatchObject({ state: 'refetched', cid: a.cid })
    const listed = []
    for await (const e of idx.local.evicted()) listed.push(e)
    expect(listed).toEqual([])
  })

  it('refuses a refetch mark for a CID the record no longer holds', async () => {
    const st = lstatSync(join(tree, 'pool/a.deb'))
    const stat = { size: st.size, mtimeMs: st.mtimeMs, ctimeMs: st.ctimeMs, ino: st.ino }
    expect(await idx.local.markRefetched('pool/a.deb', { cid: 'bafkreinotthisone', stat })).toBeUndefined()
    expect(await idx.local.markRefetched('pool/none', { cid: 'bafkreinotthisone', stat })).toBeUndefined()
  })

  it('a file back on disk with no mark (the scan came first) is hashed once: present, same CID', async () => {
    const c = (await idx.get('pool/c.deb'))!
    const keep = join(work, 'c.keep')
    copyFileSync(join(tree, 'pool/c.deb'), keep)
    await idx.local.evict([item(c)], async (rec) => unlinkSync(join(tree, rec.path)))
    copyFileSync(keep, join(tree, 'pool/c.deb'))
    const s = await idx.scan()
    expect(s.filesHashed).toBe(1)
    expect(s.changed).toBe(0)
    expect(s.rootCid).toBe(firstRoot)
    expect(await idx.get('pool/c.deb')).toMatchObject({ state: 'present', cid: c.cid })
    expect((await idx.local.of('pool/c.deb'))!.state).toBe('present')
  })

  it('an evicted path gone upstream is recorded deleted by the next scan, the tree CID re-encoded', async () => {
    const b = (await idx.get('pool/b.deb'))!
    await idx.local.evict([item(b)], async (rec) => unlinkSync(join(tree, rec.path)))
    expect((await idx.scan()).rootCid).toBe(firstRoot)
    // Only evicted paths are marked.
    expect(await idx.local.markGoneUpstream(['pool/b.deb', 'pool/c.deb', 'dists/Release'])).toBe(1)
    const s = await idx.scan()
    expect(s.deleted).toBe(1)
    expect(s.evicted).toBe(0)
    expect(s.rootCid).not.toBe(firstRoot)
    expect(s.rootCid).toBe(kubo.rootCid(tree))
    expect((await idx.local.of('pool/b.deb'))!.state).toBe('deleted')
    expect(await idx.pathsOf(b.cid)).toEqual([])
    // The mark was acted on once: a further scan changes nothing.
    const again = await idx.scan()
    expect(again.deleted).toBe(0)
    expect(again.rootCid).toBe(s.rootCid)
  })

  it('an eviction asked for while a scan runs waits for the scan to commit', async () => {
    const r = (await idx.get('dists/Release'))!
    const order: string[] = []
    const scan = idx.scan().then(() => order.push('scan'))
    const evict = idx.local
      .evict([item(r)], async () => {
        order.push('remove')
      })
      .then(() => order.push('evicted'))
    await Promise.all([scan, evict])
    expect(order).toEqual(['scan', 'remove', 'evicted'])
  })
})

/**
 * A local entry belongs to the copy it was made for: a scan that deletes the path or changes its CID
 * drops the entry in its commit, so a later copy with the same bytes is not "refetched" (nor reported
 * evicted at the old time), and the janitor judges it as any other present file.
 */
describe('local entries end with the copy they were made for', () => {
  let m: MirrorIndex
  let t: string

  function put(rel: string, data: string): void {
    const p = join(t, rel)
    mkdirSync(join(p, '..'), { recursive: true })
    writeFileSync(p, data)
  }

  /** Evicts `rel` as the janitor does (recorded, then unlinked); resolves to its record before. */
  async function evictNow(rel: string): Promise<PathRecord> {
    const r = (await m.get(rel))!
    await m.local.evict([item(r)], async (rec) => unlinkSync(join(t, rec.path)))
    return r
  }

  /** `rel` is present with `cid` and no eviction or refetch time. */
  async function expectUnmarked(rel: string, cid: string): Promise<void> {
    const st = await m.local.of(rel)
    expect(st).toMatchObject({ state: 'present', cid })
    expect(st?.refetchedAt).toBeUndefined()
    expect(st?.evictedAt).toBeUndefined()
  }

  /** Evicts `rel`, then puts it back as the fetch-back does and marks it refetched. */
  async function evictAndRefetch(rel: string, data: string): Promise<void> {
    const r = await evictNow(rel)
    put(rel, data)
    const st = lstatSync(join(t, rel))
    const stat = { size: st.size, mtimeMs: st.mtimeMs, ctimeMs: st.ctimeMs, ino: st.ino }
    expect(await m.local.markRefetched(rel, { cid: r.cid, stat })).toBeDefined()
    expect((await m.local.of(rel))!.state).toBe('refetched')
  }

  beforeAll(async () => {
    t = join(work, 'tree-n')
    put('pool/x.deb', 'package x\n')
    put('pool/y.deb', 'package y\n')
    put('pool/z.deb', 'package z\n')
    m = openMirrorIndex(db, 'n', t)
    await m.scan()
  })

  it('a refetched file deleted upstream and added again with the same bytes is present, with no marks', async () => {
    await evictAndRefetch('pool/x.deb', 'package x\n')
    unlinkSync(join(t, 'pool/x.deb'))
    expect((await m.scan()).deleted).toBe(1)
    expect((await m.local.entries()).has('pool/x.deb')).toBe(false)
    put('pool/x.deb', 'package x\n')
    expect((await m.scan()).added).toBe(1)
    await expectUnmarked('pool/x.deb', (await m.get('pool/x.deb'))!.cid)
  })

  it('a refetched file changed upstream and changed back is present, with no marks', async () => {
    await evictAndRefetch('pool/y.deb', 'package y\n')
    put('pool/y.deb', 'package y, version 2\n')
    expect((await m.scan()).changed).toBe(1)
    expect((await m.local.entries()).has('pool/y.deb')).toBe(false)
    put('pool/y.deb', 'package y\n')
    expect((await m.scan()).changed).toBe(1)
    await expectUnmarked('pool/y.deb', (await m.get('pool/y.deb'))!.cid)
  })

  it('an evicted file changed upstream and changed back keeps no eviction time', async () => {
    const z = await evictNow('pool/z.deb')
    // The upstream changed it: the sync downloads the new version (no longer excluded).
    put('pool/z.deb', 'package z, version 2\n')
    expect((await m.scan()).changed).toBe(1)
    expect((await m.local.entries()).has('pool/z.deb')).toBe(false)
    put('pool/z.deb', 'package z\n')
    await m.scan()
    await expectUnmarked('pool/z.deb', z.cid)
  })

  it('an evicted file marked gone upstream loses its marks in the commit that records it deleted', async () => {
    await evictAndRefetch('pool/z.deb', 'package z\n')
    const z = await evictNow('pool/z.deb')
    expect(await m.local.markGoneUpstream(['pool/z.deb'])).toBe(1)
    expect((await m.scan()).deleted).toBe(1)
    expect((await m.local.entries()).has('pool/z.deb')).toBe(false)
    put('pool/z.deb', 'package z\n')
    await m.scan()
    await expectUnmarked('pool/z.deb', z.cid)
    // Evicted again, the path stays in the mirror: no gone mark is left to delete it.
    await evictNow('pool/z.deb')
    const s = await m.scan()
    expect(s.evicted).toBe(1)
    expect(s.deleted).toBe(0)
  })
})
