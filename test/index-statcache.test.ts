import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type Database, openDatabase } from '../src/db.ts'
import { type MirrorIndex, openMirrorIndex } from '../src/index/index.ts'
import { encodeRecord } from '../src/index/records.ts'
import { statCacheFiles } from '../src/index/statcache.ts'
import { MirrorStore } from '../src/index/store.ts'
import { kuboRepo } from './helpers/index-kubo.ts'

let work: string
let tree: string
let db: Database
let idx: MirrorIndex
let store: MirrorStore
let cacheFile: string
let kubo: ReturnType<typeof kuboRepo>

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), 'cidmirror-statcache-'))
  tree = join(work, 'tree')
  for (let d = 0; d < 3; d++) {
    mkdirSync(join(tree, `d${d}`), { recursive: true })
    for (let f = 0; f < 20; f++) writeFileSync(join(tree, `d${d}`, `f${f}`), `file ${d} ${f}\n`)
  }
  db = await openDatabase(join(work, 'db'))
  idx = openMirrorIndex(db, 'sc', tree)
  store = new MirrorStore(db, 'sc')
  cacheFile = statCacheFiles(db.location, 'sc').file
  kubo = kuboRepo(work)
})

afterAll(async () => {
  await db?.close()
  rmSync(work, { recursive: true, force: true })
})

/** Marks `rel` deleted in the committed index behind the scanner's back, as a stray writer would. */
async function forgeDeleted(rel: string): Promise<void> {
  await store.ready()
  const r = (await store.getRecord(rel))!
  await db.batch(
    [{ type: 'put', key: store.pPrefix + rel, value: encodeRecord({ ...r, state: 'deleted' }) }],
    {
      keyEncoding: 'utf8',
      valueEncoding: 'utf8',
    } as never,
  )
}

describe('stat cache', () => {
  it('a full scan writes it; an unchanged rescan trusts it and gives the same index', async () => {
    const first = await idx.scan()
    expect(existsSync(cacheFile)).toBe(true)
    expect(await store.statCacheToken()).toBe(first.id)
    const again = await idx.scan()
    expect(again).toMatchObject({ files: 60, dirs: 4, unchanged: 60, filesHashed: 0, rootCid: first.rootCid })
    expect(again.bytes).toBe(first.bytes)
    expect(again.rootCid).toBe(kubo.rootCid(tree))
    expect(await store.statCacheToken()).toBe(first.id)
  })

  it('a change of ctime alone (chmod) is seen', async () => {
    chmodSync(join(tree, 'd1', 'f3'), 0o600)
    const s = await idx.scan()
    expect(s).toMatchObject({ touched: 1, filesHashed: 1, unchanged: 59 })
    expect(await store.statCacheToken()).toBe(s.id)
  })

  it('a change of content, a new file and a deletion are seen, and the next rescan is quiet again', async () => {
    writeFileSync(join(tree, 'd0', 'f0'), 'changed content\n')
    writeFileSync(join(tree, 'd2', 'new'), 'new\n')
    rmSync(join(tree, 'd1', 'f19'))
    const s = await idx.scan()
    expect(s).toMatchObject({ changed: 1, added: 1, deleted: 1, filesHashed: 2 })
    expect(s.rootCid).toBe(kubo.rootCid(tree))
    const quiet = await idx.scan()
    expect(quiet).toMatchObject({ unchanged: 60, filesHashed: 0, rootCid: s.rootCid })
  })

  it('a corrupt cache is ignored: the full scan still repairs the index', async () => {
    await forgeDeleted('d2\x00f5')
    const bytes = readFileSync(cacheFile)
    bytes[Math.floor(bytes.length / 2)]! ^= 0x40
    writeFileSync(cacheFile, bytes)
    const s = await idx.scan()
    // Had the cache been believed, d2/f5 would have stayed deleted.
    expect(s).toMatchObject({ added: 1, filesHashed: 1 })
    expect(await idx.get('d2/f5')).toMatchObject({ state: 'present' })
    expect(s.rootCid).toBe(kubo.rootCid(tree))
  })

  it('a cache whose token the database does not hold is ignored', async () => {
    await forgeDeleted('d0\x00f7')
    await store.dropStatCache()
    const s = await idx.scan()
    expect(s).toMatchObject({ added: 1, filesHashed: 1 })
    expect(await idx.get('d0/f7')).toMatchObject({ state: 'present' })
  })

  it('a cache of an older scan (left by a crash before its token moved) is ignored', async () => {
    const old = readFileSync(cacheFile)
    writeFileSync(join(tree, 'd0', 'f1'), 'newer\n')
    const s = await idx.scan()
    expect(s).toMatchObject({ changed: 1 })
    writeFileSync(cacheFile, old) // the file of the previous scan, under the new token
    await forgeDeleted('d1\x00f1')
    const t = await idx.scan()
    expect(t).toMatchObject({ added: 1, filesHashed: 1 })
    expect(t.rootCid).toBe(kubo.rootCid(tree))
  })
})
