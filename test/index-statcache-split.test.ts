import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type Database, openDatabase } from '../src/db.ts'
import { type MirrorIndex, openMirrorIndex } from '../src/index/index.ts'
import { pathOf } from '../src/index/keys.ts'
import { loadStatCache, STAT_CACHE_LAYOUT, splitStatCache, statCacheFiles } from '../src/index/statcache.ts'
import { MirrorStore } from '../src/index/store.ts'
import { kuboRepo } from './helpers/index-kubo.ts'

/**
 * The unchanged-rescan walk split over two walker threads (statcache.ts `splitStatCache`): a change in
 * either thread's part, at the split itself or above it, is seen, and the index stays Kubo's.
 */

let work: string
let db: Database
let kubo: ReturnType<typeof kuboRepo>

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), 'cidmirror-split-'))
  db = await openDatabase(join(work, 'db'))
  kubo = kuboRepo(work)
})

afterAll(async () => {
  await db?.close()
  rmSync(work, { recursive: true, force: true })
})

interface Mirror {
  tree: string
  idx: MirrorIndex
  store: MirrorStore
  /** The relative path where the second walker thread starts, per the current stat cache. */
  split(): string
  scan(): ReturnType<MirrorIndex['scan']>
}

function mirror(name: string, files: Record<string, string>): Mirror {
  const tree = join(work, name)
  for (const [rel, text] of Object.entries(files)) {
    mkdirSync(join(tree, rel, '..'), { recursive: true })
    writeFileSync(join(tree, rel), text)
  }
  const idx = openMirrorIndex(db, name, tree)
  const store = new MirrorStore(db, name)
  const file = statCacheFiles(db.location, name).file
  return {
    tree,
    idx,
    store,
    split() {
      const c = loadStatCache(file)!
      expect(c.checksumOk()).toBe(true)
      const parts = splitStatCache(c, 2)
      expect(parts).toHaveLength(2)
      return pathOf(parts[1]!.lo!)
    },
    // Split however small the tree.
    scan: () => idx.scan({ splitWalkAt: 2 }),
  }
}

function threeDirs(): Record<string, string> {
  const files: Record<string, string> = {}
  for (let d = 0; d < 3; d++) for (let f = 0; f < 20; f++) files[`d${d}/f${f}`] = `file ${d} ${f}\n`
  return files
}

/** An unchanged rescan: the stat cache's token stays (nothing was merged) and nothing is hashed. */
async function expectQuiet(m: Mirror, files: number, rootCid: string): Promise<void> {
  const token = await m.store.statCacheToken()
  const s = await m.scan()
  expect(s).toMatchObject({
    files,
    unchanged: files,
    filesHashed: 0,
    added: 0,
    changed: 0,
    deleted: 0,
    rootCid,
  })
  expect(await m.store.statCacheToken()).toBe(token)
}

describe('a rescan split over two walker threads', () => {
  it('is quiet on an unchanged tree, and sees a change in the second part only', async () => {
    const m = mirror('two', threeDirs())
    const first = await m.scan()
    expect(first.rootCid).toBe(kubo.rootCid(m.tree))
    expect(m.split()).toMatch(/^d1\//)
    await expectQuiet(m, 60, first.rootCid)

    writeFileSync(join(m.tree, 'd2', 'f7'), 'second part changed\n')
    const s = await m.scan()
    expect(s).toMatchObject({ changed: 1, filesHashed: 1, unchanged: 59 })
    expect(s.rootCid).toBe(kubo.rootCid(m.tree))
    await expectQuiet(m, 60, s.rootCid)
  })

  it('sees a change in the first part only', async () => {
    const m = mirror('two', {})
    const before = (await m.idx.lastScan())!
    writeFileSync(join(m.tree, 'd0', 'f3'), 'first part changed\n')
    const s = await m.scan()
    expect(s).toMatchObject({ changed: 1, filesHashed: 1, unchanged: 59 })
    expect(s.rootCid).not.toBe(before.rootCid)
    expect(s.rootCid).toBe(kubo.rootCid(m.tree))
    await expectQuiet(m, 60, s.rootCid)
  })

  it('sees changes in both parts, a new file at the end and one before everything', async () => {
    const m = mirror('two', {})
    writeFileSync(join(m.tree, 'd0', 'f0'), 'both: first\n')
    writeFileSync(join(m.tree, 'd2', 'f19'), 'both: second\n')
    writeFileSync(join(m.tree, 'zz-last'), 'new at the end\n')
    writeFileSync(join(m.tree, '0-first'), 'new at the start\n')
    const s = await m.scan()
    expect(s).toMatchObject({ changed: 2, added: 2, filesHashed: 4, unchanged: 58 })
    expect(s.rootCid).toBe(kubo.rootCid(m.tree))
    await expectQuiet(m, 62, s.rootCid)
  })

  it('sees the entry the second part starts at deleted, and its directory become a symlink', async () => {
    const m = mirror('two', {})
    const at = m.split()
    rmSync(join(m.tree, at))
    const s = await m.scan()
    expect(s).toMatchObject({ deleted: 1, unchanged: 61 })
    expect(await m.idx.get(at)).toMatchObject({ state: 'deleted' })
    expect(s.rootCid).toBe(kubo.rootCid(m.tree))
    await expectQuiet(m, 61, s.rootCid)

    // The directory above the split, replaced by a symlink to a directory: the second thread must not
    // follow it (a walk lstat()s, it does not descend into symlinks).
    const dir = m.split().split('/')[0]!
    rmSync(join(m.tree, dir), { recursive: true })
    symlinkSync('d0', join(m.tree, dir))
    const t = await m.scan()
    expect(t.deleted).toBeGreaterThan(0)
    expect(t.added).toBe(1)
    expect(await m.idx.get(`${dir}/f0`)).toMatchObject({ state: 'deleted' })
    expect(await m.idx.get(dir)).toMatchObject({ kind: 'symlink', state: 'present' })
    expect(t.rootCid).toBe(kubo.rootCid(m.tree))
    await expectQuiet(m, t.files, t.rootCid)
  })

  it('splits a tree with a single top-level directory deeper down', async () => {
    const files: Record<string, string> = {}
    for (const [rel, text] of Object.entries(threeDirs())) files[`pool/main/${rel}`] = text
    const m = mirror('one-top', files)
    const first = await m.scan()
    expect(first.rootCid).toBe(kubo.rootCid(m.tree))
    expect(m.split()).toMatch(/^pool\/main\/d1\//)
    await expectQuiet(m, 60, first.rootCid)
    writeFileSync(join(m.tree, 'pool', 'main', 'd2', 'f1'), 'deep, second part\n')
    const s = await m.scan()
    expect(s).toMatchObject({ changed: 1, unchanged: 59 })
    expect(s.rootCid).toBe(kubo.rootCid(m.tree))
    writeFileSync(join(m.tree, 'pool', 'main', 'd0', 'f1'), 'deep, first part\n')
    const t = await m.scan()
    expect(t).toMatchObject({ changed: 1, unchanged: 59 })
    expect(t.rootCid).toBe(kubo.rootCid(m.tree))
    await expectQuiet(m, 60, t.rootCid)
  })
})

/**
 * The walker threads run from their source text and get what they share with the scanner passed in
 * (walk-worker.ts): the name order and the stat cache layout. These fail when the two sides disagree.
 */
describe('the walker threads and the scanner', () => {
  // UTF-8 order: a < é < U+FFFD < 😀; UTF-16 order puts the emoji (a surrogate pair) before U+FFFD.
  const names = ['a', 'é', '\uFFFD', '😀']
  function unicodeTree(): Record<string, string> {
    const files: Record<string, string> = {}
    for (const d of names) for (const f of names) files[`${d}/${f}-${d}`] = `${d} ${f}\n`
    for (let i = 0; i < 8; i++) files[`\uFFFD/n${i}`] = `${i}\n`
    return files
  }

  it('walk names in the scanner key order, split inside a directory named U+FFFD', async () => {
    const m = mirror('unicode', unicodeTree())
    const first = await m.scan()
    expect(first.rootCid).toBe(kubo.rootCid(m.tree))
    expect(m.split()).toMatch(/^\uFFFD\//)
    await expectQuiet(m, 24, first.rootCid)
    // A full merge (no stat cache believed): the walk and the stored records meet key for key.
    await m.store.dropStatCache()
    const merged = await m.scan()
    expect(merged).toMatchObject({
      unchanged: 24,
      added: 0,
      deleted: 0,
      filesHashed: 0,
      rootCid: first.rootCid,
    })
    writeFileSync(join(m.tree, '😀', 'a-😀'), 'changed, last part\n')
    writeFileSync(join(m.tree, 'é', '😀-é'), 'changed, first part\n')
    const s = await m.scan()
    expect(s).toMatchObject({ changed: 2, unchanged: 22, added: 0, deleted: 0 })
    expect(s.rootCid).toBe(kubo.rootCid(m.tree))
    await expectQuiet(m, 24, s.rootCid)
  })

  it('write the same stat cache, byte for byte, for the same tree', async () => {
    const m = mirror('same-cache', unicodeTree())
    const file = statCacheFiles(db.location, 'same-cache').file
    /** The cache's bytes up to the header JSON, which holds the scan id. */
    const cacheBytes = (): Buffer => {
      const c = loadStatCache(file)!
      expect(c.checksumOk()).toBe(true)
      return Buffer.from(c.sab).subarray(0, c.end + STAT_CACHE_LAYOUT.footer.header)
    }
    await m.scan() // a first scan: the scanner writes the cache (its walk has no stats)
    const byScanner = cacheBytes()
    rmSync(file)
    await m.scan() // no cache: one walker thread writes it as it walks
    const byWalker = cacheBytes()
    await m.store.dropStatCache()
    await m.scan() // a cache not believed: two threads compare with it, then send and write it again
    const byTwoThreads = cacheBytes()
    expect(byWalker.equals(byScanner)).toBe(true)
    expect(byTwoThreads.equals(byScanner)).toBe(true)
  })
})
