import { randomBytes } from 'node:crypto'
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { CID } from 'multiformats/cid'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { treeBlocks } from '../src/cid/index.ts'
import { type Database, openDatabase } from '../src/db.ts'
import { BlockReader, mapBlocks } from '../src/index/blocks.ts'
import { openMirrorIndex } from '../src/index/index.ts'
import { kuboRepo } from './helpers/index-kubo.ts'

let work: string
let tree: string
let db: Database

function write(rel: string, data: string | Uint8Array): void {
  const p = join(tree, rel)
  mkdirSync(join(p, '..'), { recursive: true })
  writeFileSync(p, data)
}

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), 'cidmirror-blocks-'))
  tree = join(work, 'tree')
  write('small.txt', 'hello\n')
  write('big/three.bin', randomBytes(2 * 1024 * 1024 + 5))
  write('big/exact.bin', randomBytes(1024 * 1024))
  write('.hidden', 'dot\n')
  // Enough long names that the directory's block passes 256 KiB: a HAMT.
  for (let i = 0; i < 2200; i++) write(`wide/${'n'.repeat(100)}-${i}.txt`, `${i}\n`)
  symlinkSync('small.txt', join(tree, 'link'))
  db = await openDatabase(join(work, 'db'))
})

afterAll(async () => {
  await db?.close()
  rmSync(work, { recursive: true, force: true })
})

describe('block map', () => {
  it('serves every block of the tree, as the CAR export builds it, from the mirror files', async () => {
    const idx = openMirrorIndex(db, 'm', tree)
    const s = await idx.scan()
    expect(s.rootCid).toBe(kuboRepo(work).rootCid(tree))
    const map = await mapBlocks(db, 'm', tree)
    expect(map.stale).toEqual([])
    expect(map.filesMapped).toBe(1) // only the file of more than one chunk
    expect(map.leaves).toBe(3)
    const reader = new BlockReader(db)
    let blocks = 0
    let root: CID | undefined
    for await (const b of treeBlocks(tree, { hidden: true })) {
      const got = await reader.get(b.cid)
      expect(got, b.cid.toString()).toBeDefined()
      expect(Buffer.compare(Buffer.from(got!), Buffer.from(b.bytes))).toBe(0)
      blocks++
      root = b.cid
    }
    expect(root?.toString()).toBe(s.rootCid)
    expect(blocks).toBeGreaterThan(2200)
  })

  it('refuses a block whose file changed on disk since it was mapped', async () => {
    const reader = new BlockReader(db)
    const before: CID[] = []
    for await (const b of treeBlocks(join(tree, 'big', 'three.bin')))
      if (b.cid.code === 0x55) before.push(b.cid)
    expect(await reader.get(before[1]!)).toBeDefined()
    write('big/three.bin', randomBytes(2 * 1024 * 1024 + 5))
    for (const cid of before) expect(await reader.get(cid)).toBeUndefined()
    // A one-chunk file changed the same way.
    const small = CID.parse((await openMirrorIndex(db, 'm', tree).get('small.txt'))!.cid)
    expect(await reader.get(small)).toBeDefined()
    write('small.txt', 'changed\n')
    expect(await reader.get(small)).toBeUndefined()
  })

  it('after a rescan, maps only what the scan wrote and serves the new blocks', async () => {
    const idx = openMirrorIndex(db, 'm', tree)
    const s = await idx.scan()
    const map = await mapBlocks(db, 'm', tree, { since: s.id })
    expect(map.stale).toEqual([])
    expect(map.filesMapped).toBe(1)
    const reader = new BlockReader(db)
    for await (const b of treeBlocks(tree, { hidden: true })) expect(await reader.has(b.cid)).toBe(true)
  })
})
