import { randomBytes } from 'node:crypto'
import {
  chmodSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  renameSync,
  rmSync,
  symlinkSync,
  unlinkSync,
  utimesSync,
  writeFileSync,
} from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type Database, openDatabase } from '../src/db.ts'
import { type MirrorIndex, openMirrorIndex, type ScanSummary } from '../src/index/index.ts'
import { kuboRepo } from './helpers/index-kubo.ts'

let work: string
let tree: string
let db: Database
let idx: MirrorIndex
let kubo: ReturnType<typeof kuboRepo>

function write(rel: string, data: string | Uint8Array): void {
  const p = join(tree, rel)
  mkdirSync(join(p, '..'), { recursive: true })
  writeFileSync(p, data)
}

async function scanAndCheck(): Promise<ScanSummary> {
  const s = await idx.scan()
  expect(s.rootCid).toBe(kubo.rootCid(tree))
  return s
}

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), 'cidmirror-index-'))
  tree = join(work, 'tree')
  kubo = kuboRepo(work)
  write('a.txt', 'hello\n')
  write('empty', '')
  write('.hidden', 'dotfile\n')
  write('.dotdir/inner.txt', 'inner\n')
  write('dir/big.bin', randomBytes(1024 * 1024 + 1))
  write('dir/sub/deep.txt', 'deep\n')
  write('dir/sub/ünïcödé 名前.txt', 'unicode\n')
  write('dir-x/after.txt', 'sorts between dir and dir/ in bytes\n')
  write('same.txt', 'AAAA')
  mkdirSync(join(tree, 'emptydir'))
  symlinkSync('a.txt', join(tree, 'link'))
  for (let i = 0; i < 50; i++) write(`many/f${i}`, `file ${i}\n`)
  db = await openDatabase(join(work, 'db'))
  idx = openMirrorIndex(db, 'test-mirror', tree)
})

afterAll(async () => {
  await db?.close()
  rmSync(work, { recursive: true, force: true })
})

describe('incremental index', () => {
  it('indexes every path, dotfiles included, with the tree CID of ipfs add -r -H', async () => {
    const s = await scanAndCheck()
    expect(s).toMatchObject({
      id: 1,
      added: 60,
      changed: 0,
      deleted: 0,
      unchanged: 0,
      files: 60,
      filesHashed: 60,
    })
    const a = await idx.get('a.txt')
    expect(a).toMatchObject({ path: 'a.txt', kind: 'file', size: 6, state: 'present', scan: 1 })
    expect(a!.cid).toMatch(/^bafk/)
    // A first scan stats files on the descriptor it hashes (walk-protocol.ts `listed`): the same stat.
    const st = lstatSync(join(tree, 'a.txt'))
    expect(a).toMatchObject({ size: st.size, mtimeMs: st.mtimeMs, ctimeMs: st.ctimeMs, ino: st.ino })
    expect(await idx.get('.dotdir/inner.txt')).toMatchObject({ kind: 'file', state: 'present' })
    expect(await idx.get('link')).toMatchObject({ kind: 'symlink', target: 'a.txt', size: 5 })
    expect(await idx.get('emptydir')).toMatchObject({ kind: 'dir' })
    expect((await idx.get(''))!.cid).toBe(s.rootCid)
    expect((await idx.get('./dir/sub/'))!.kind).toBe('dir')
    expect(await idx.pathsOf(a!.cid)).toEqual(['a.txt'])
    expect(await idx.lastScan()).toEqual(s)
  })

  it('an unchanged rescan hashes nothing', async () => {
    const before = await idx.get('a.txt')
    const s = await scanAndCheck()
    expect(s).toMatchObject({ added: 0, changed: 0, touched: 0, deleted: 0, unchanged: 60, filesHashed: 0 })
    expect(await idx.get('a.txt')).toEqual(before)
  })

  it('a modified file is re-hashed, its directories re-encoded', async () => {
    const old = await idx.get('dir/sub/deep.txt')
    write('dir/sub/deep.txt', 'deeper and longer\n')
    const s = await scanAndCheck()
    expect(s).toMatchObject({ changed: 1, added: 0, deleted: 0, filesHashed: 1, unchanged: 59 })
    const now = await idx.get('dir/sub/deep.txt')
    expect(now!.cid).not.toBe(old!.cid)
    expect(now!.firstSeen).toBe(old!.firstSeen)
    expect(await idx.pathsOf(old!.cid)).toEqual([])
    expect(await idx.pathsOf(now!.cid)).toEqual(['dir/sub/deep.txt'])
  })

  it('a touched file (mtime only) is re-hashed and keeps its CID', async () => {
    const old = await idx.get('a.txt')
    const root = (await idx.lastScan())!.rootCid
    utimesSync(join(tree, 'a.txt'), new Date(2001, 1, 1), new Date(2001, 1, 1))
    const s = await scanAndCheck()
    expect(s).toMatchObject({ touched: 1, changed: 0, filesHashed: 1, rootCid: root })
    const now = await idx.get('a.txt')
    expect(now!.cid).toBe(old!.cid)
    expect(now!.mtimeMs).toBe(new Date(2001, 1, 1).getTime())
  })

  it('a chmod (ctime only) is re-hashed and keeps its CID', async () => {
    chmodSync(join(tree, 'empty'), 0o600)
    const s = await scanAndCheck()
    expect(s).toMatchObject({ touched: 1, changed: 0, filesHashed: 1 })
  })

  it('a deleted file stays as a deleted record', async () => {
    const old = await idx.get('many/f7')
    unlinkSync(join(tree, 'many/f7'))
    const s = await scanAndCheck()
    expect(s).toMatchObject({ deleted: 1, files: 59, filesHashed: 0 })
    expect(await idx.get('many/f7')).toMatchObject({ state: 'deleted', cid: old!.cid })
    expect(await idx.pathsOf(old!.cid)).toEqual([])
  })

  it('a rename is a deletion and an addition, without re-hashing when the CID is known', async () => {
    const old = await idx.get('many/f8')
    renameSync(join(tree, 'many/f8'), join(tree, 'many/renamed'))
    const s = await scanAndCheck()
    expect(s).toMatchObject({ deleted: 1, added: 1 })
    expect(await idx.get('many/f8')).toMatchObject({ state: 'deleted' })
    expect(await idx.get('many/renamed')).toMatchObject({ state: 'present', cid: old!.cid })
    expect(await idx.pathsOf(old!.cid)).toEqual(['many/renamed'])
  })

  it('a file replaced by another of the same size and mtime is caught by its inode', async () => {
    const old = await idx.get('same.txt')
    const tmp = join(tree, 'same.tmp')
    writeFileSync(tmp, 'BBBB')
    utimesSync(tmp, old!.mtimeMs / 1000, old!.mtimeMs / 1000)
    renameSync(tmp, join(tree, 'same.txt'))
    const s = await scanAndCheck()
    expect(s).toMatchObject({ changed: 1, added: 0, deleted: 0 })
    const now = await idx.get('same.txt')
    expect(now!.size).toBe(4)
    expect(now!.cid).not.toBe(old!.cid)
  })

  it('a file replaced by a directory', async () => {
    unlinkSync(join(tree, 'many/f9'))
    write('many/f9/inside.txt', 'now a directory\n')
    const s = await scanAndCheck()
    expect(s).toMatchObject({ added: 1, deleted: 1 })
    expect(await idx.get('many/f9')).toMatchObject({ kind: 'dir', state: 'present' })
    expect(await idx.get('many/f9/inside.txt')).toMatchObject({ kind: 'file', state: 'present' })
  })

  it('a directory replaced by a file', async () => {
    rmSync(join(tree, 'many/f9'), { recursive: true })
    write('many/f9', 'a file again\n')
    const s = await scanAndCheck()
    expect(s).toMatchObject({ added: 1, deleted: 1 })
    expect(await idx.get('many/f9')).toMatchObject({ kind: 'file', state: 'present' })
    expect(await idx.get('many/f9/inside.txt')).toMatchObject({ state: 'deleted' })
  })

  it('symlinks are indexed as symlinks: added, and changed', async () => {
    symlinkSync('dir/sub', join(tree, 'dirlink'))
    let s = await scanAndCheck()
    expect(s).toMatchObject({ added: 1 })
    expect(await idx.get('dirlink')).toMatchObject({ kind: 'symlink', target: 'dir/sub' })
    unlinkSync(join(tree, 'dirlink'))
    symlinkSync('nowhere/at/all', join(tree, 'dirlink'))
    s = await scanAndCheck()
    expect(s).toMatchObject({ changed: 1 })
    expect(await idx.get('dirlink')).toMatchObject({ kind: 'symlink', target: 'nowhere/at/all' })
  })

  it('a deleted path that comes back is present again, first seen kept', async () => {
    const old = await idx.get('many/f7')
    write('many/f7', 'file 7\n')
    const s = await scanAndCheck()
    expect(s).toMatchObject({ added: 1 })
    expect(await idx.get('many/f7')).toMatchObject({ state: 'present', firstSeen: old!.firstSeen })
  })

  it('keeps every scan', async () => {
    const all: ScanSummary[] = []
    for await (const s of idx.scans()) all.push(s)
    expect(all.map((s) => s.id)).toEqual(all.map((_, i) => i + 1))
    expect(all.at(-1)).toEqual(await idx.lastScan())
  })
})
