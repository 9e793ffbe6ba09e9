import { mkdirSync, mkdtempSync, rmSync, symlinkSync, unlinkSync, utimesSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type Database, openDatabase } from '../src/db.ts'
import { type MirrorIndex, openMirrorIndex, type PastVersion } from '../src/index/index.ts'
import { decodeRecord, encodeRecord } from '../src/index/records.ts'
import { encodeJournal, MirrorStore, scanKey } from '../src/index/store.ts'
import { kuboRepo } from './helpers/index-kubo.ts'

let work: string
let tree: string
let db: Database
let idx: MirrorIndex

function write(rel: string, data: string): void {
  const p = join(tree, rel)
  mkdirSync(join(p, '..'), { recursive: true })
  writeFileSync(p, data)
}

async function all(it: AsyncIterable<PastVersion>): Promise<PastVersion[]> {
  const out: PastVersion[] = []
  for await (const v of it) out.push(v)
  return out
}

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), 'cidmirror-versions-'))
  tree = join(work, 'tree')
  write('a.txt', 'a one\n')
  write('b.txt', 'b\n')
  write('c/d.txt', 'd\n')
  write('touched.txt', 'same bytes\n')
  write('keep.txt', 'kept\n')
  symlinkSync('a.txt', join(tree, 'link'))
  db = await openDatabase(join(work, 'db'))
  idx = openMirrorIndex(db, 'versions', tree)
})

afterAll(async () => {
  await db?.close()
  rmSync(work, { recursive: true, force: true })
})

describe('past versions', () => {
  const cid: Record<string, string> = {}

  it('a scan records what left the tree: deleted, replaced, a file that became a directory', async () => {
    const s1 = await idx.scan()
    for (const p of ['a.txt', 'b.txt', 'c/d.txt', 'touched.txt', 'link']) cid[p] = (await idx.get(p))!.cid
    expect(await all(idx.versions())).toEqual([])

    write('a.txt', 'a two\n')
    unlinkSync(join(tree, 'b.txt'))
    unlinkSync(join(tree, 'c/d.txt'))
    write('c/d.txt/e.txt', 'e\n')
    unlinkSync(join(tree, 'link'))
    utimesSync(join(tree, 'touched.txt'), new Date(2001, 1, 1), new Date(2001, 1, 1))
    const s2 = await idx.scan()
    expect(s2).toMatchObject({ changed: 1, deleted: 3, touched: 1 })
    // The tree is still Kubo's: versions are beside it, not in it.
    expect(s2.rootCid).toBe(kuboRepo(work).rootCid(tree))

    const left = await all(idx.versions())
    expect(left.map((v) => [v.path, v.reason, v.kind, v.cid, v.firstScan, v.lastScan, v.leftScan])).toEqual([
      ['a.txt', 'replaced', 'file', cid['a.txt'], s1.id, s1.id, s2.id],
      ['b.txt', 'deleted', 'file', cid['b.txt'], s1.id, s1.id, s2.id],
      ['c/d.txt', 'deleted', 'file', cid['c/d.txt'], s1.id, s1.id, s2.id],
      ['link', 'deleted', 'symlink', cid.link, s1.id, s1.id, s2.id],
    ])
    const b = left[1]!
    expect(b).toMatchObject({ size: 2, wasPresent: true })
    expect(left[3]!.target).toBe('a.txt')
    // The deleted record keeps its CID in the index too, state deleted.
    expect(await idx.get('b.txt')).toMatchObject({ state: 'deleted', cid: cid['b.txt'] })
  })

  it('a file whose metadata changed keeps its first scan when its content later changes', async () => {
    const s3prev = (await idx.lastScan())!
    write('touched.txt', 'other bytes\n')
    const s3 = await idx.scan()
    const [v] = await all(idx.versions({ after: s3prev.id }))
    expect(v).toMatchObject({ path: 'touched.txt', cid: cid['touched.txt'], reason: 'replaced' })
    expect(v!.firstScan).toBe(1)
    expect(v!.lastScan).toBe(s3prev.id)
    expect(v!.leftScan).toBe(s3.id)
    expect(new Date(v!.mtimeMs).getFullYear()).toBe(2001)
    expect((await all(idx.versions({ upTo: s3prev.id }))).length).toBe(4)
  })

  it('lists by path and by CID, and resolves a path as of a past scan', async () => {
    write('b.txt', 'b\n') // back, same content
    const s4 = await idx.scan()
    unlinkSync(join(tree, 'b.txt'))
    const s5 = await idx.scan()
    const byPath = await idx.versionsOf('b.txt')
    expect(byPath.map((v) => [v.firstScan, v.lastScan, v.leftScan])).toEqual([
      [1, 1, 2],
      [s4.id, s4.id, s5.id],
    ])
    const byCid = await idx.versionsByCid(cid['b.txt']!)
    expect(byCid.map((v) => [v.path, v.leftScan])).toEqual([
      ['b.txt', 2],
      ['b.txt', s5.id],
    ])
    expect(await idx.versionsByCid('bafkreinotheld')).toEqual([])

    expect((await idx.recordAt('a.txt', 1))?.cid).toBe(cid['a.txt'])
    const aNow = await idx.recordAt('a.txt', 2)
    expect(aNow?.cid).toBe((await idx.get('a.txt'))!.cid)
    expect(aNow && 'leftScan' in aNow).toBe(false)
    expect((await idx.recordAt('touched.txt', 2))?.cid).toBe(cid['touched.txt'])
    expect(await idx.recordAt('b.txt', 3)).toBeUndefined()
    expect((await idx.recordAt('b.txt', s4.id))?.cid).toBe(cid['b.txt'])
    expect(await idx.recordAt('c/d.txt', 2)).toBeUndefined() // a directory then
    expect((await idx.recordAt('keep.txt', 1))?.cid).toBe((await idx.get('keep.txt'))!.cid)
  })

  it('an interrupted scan leaves no versions; a commit killed half-way writes them when the index reopens', async () => {
    const dbPath = join(work, 'rf-db')
    const rfTree = join(work, 'rf-tree')
    mkdirSync(rfTree)
    writeFileSync(join(rfTree, 'f'), 'one\n')
    let rdb = await openDatabase(dbPath)
    const first = await openMirrorIndex(rdb, 'rf', rfTree).scan()
    const old = await openMirrorIndex(rdb, 'rf', rfTree).get('f')
    writeFileSync(join(rfTree, 'f'), 'two\n')
    const ac = new AbortController()
    ac.abort()
    await expect(openMirrorIndex(rdb, 'rf', rfTree).scan({ signal: ac.signal })).rejects.toThrow()
    expect(await all(openMirrorIndex(rdb, 'rf', rfTree).versions())).toEqual([])
    const second = await openMirrorIndex(rdb, 'rf', rfTree).scan()
    expect(second.changed).toBe(1)
    expect((await all(openMirrorIndex(rdb, 'rf', rfTree).versions())).map((v) => v.cid)).toEqual([old!.cid])

    // Rewind to what a kill during the commit leaves: marker written, journal not applied yet.
    const store = new MirrorStore(rdb, 'rf')
    await store.ready()
    const now = decodeRecord(await store.paths.get('f'))
    const was = { ...decodeRecord(JSON.parse(encodeRecord({ ...now, cid: old!.cid, scan: first.id }))) }
    await store.journal.put('f', JSON.parse(encodeJournal(second.id, old!.cid, now, was)))
    await store.paths.put('f', JSON.parse(encodeRecord(was)))
    for (const room of [store.versions, store.versionsByPath, store.versionsByCid]) await room.clear()
    await store.meta.put('commit', { id: second.id, summary: second } as never)
    await store.meta.put('last', first.id)
    await store.scans.del(scanKey(second.id))
    await rdb.close()

    rdb = await openDatabase(dbPath)
    try {
      const again = openMirrorIndex(rdb, 'rf', rfTree)
      const [v] = await all(again.versions())
      expect(v).toMatchObject({ path: 'f', cid: old!.cid, firstScan: first.id, lastScan: first.id })
      expect(v!.leftScan).toBe(second.id)
      expect(await again.versionsOf('f')).toEqual([v])
      expect(await again.versionsByCid(old!.cid)).toEqual([v])
    } finally {
      await rdb.close()
    }
  })
})
