/**
 * Tree CIDs against a real Kubo (`ipfs add -r [-H]`, profile `unixfs-v1-2025`): nested and empty
 * directories, symlinks, non-ASCII names, dotfiles, and directories on both sides of the HAMT threshold.
 */
import { randomBytes } from 'node:crypto'
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import * as dagPB from '@ipld/dag-pb'
import { UnixFS } from 'ipfs-unixfs'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import {
  basicDirectorySize,
  cidOfDirectory,
  cidOfSymlink,
  cidOfTree,
  type DirEntryCid,
  type EntryKind,
  HashPool,
  treeBlocks,
} from '../src/cid/index.ts'
import { encodePB } from '../src/cid/pb.ts'
import { Kubo } from './helpers/kubo.ts'

let kubo: Kubo
let dir: string
let pool: HashPool

function write(rel: string, content: string | Buffer): void {
  const path = join(dir, rel)
  mkdirSync(join(path, '..'), { recursive: true })
  writeFileSync(path, content)
}

/** `count` entries of 10-byte names plus one whose name makes the basic block exactly `total` bytes. */
function thresholdDir(rel: string, total: number): void {
  mkdirSync(join(dir, rel), { recursive: true })
  // Each empty file: raw CID (36 bytes), Tsize 0; a 10-byte name makes a 54-byte link.
  const count = 4853
  for (let i = 0; i < count; i++) writeFileSync(join(dir, rel, `n${String(i).padStart(9, '0')}`), '')
  // 4 bytes of Data + 4853 * 54 = 262066; the last link takes the rest: 2 + 42 + nameLen bytes.
  const nameLen = total - 4 - count * 54 - 44
  writeFileSync(join(dir, rel, 'z'.repeat(nameLen)), '')
}

beforeAll(async () => {
  kubo = await Kubo.create()
  dir = mkdtempSync(join(tmpdir(), 'cidmirror-cid-tree-'))
  pool = new HashPool({ threads: 2 })
  // t: the general tree.
  write('t/a/b/c/deep.txt', 'deep\n')
  write('t/a/b/sibling', randomBytes(3000))
  write('t/a/big', randomBytes(2 * 1024 * 1024 + 5))
  write('t/a/empty-file', '')
  mkdirSync(join(dir, 't/empty-dir'))
  mkdirSync(join(dir, 't/a/empty-nested/inner'), { recursive: true })
  write('t/naïve café.txt', 'accents\n')
  write('t/日本語/ファイル', 'japanese\n')
  write('t/emoji-😀', 'astral plane: UTF-16 order differs from UTF-8 order\n')
  write('t/\uFFFD-replacement', 'U+FFFD sorts after the emoji in UTF-16, before it in UTF-8\n')
  write('t/Zed', 'upper case sorts first\n')
  write('t/zed', 'lower\n')
  write('t/with space', 'space\n')
  write('t/.dotfile', 'hidden\n')
  write('t/.dotdir/inside', 'hidden dir\n')
  write('t/a/.hidden-deep', 'hidden deep\n')
  symlinkSync('a/b/c/deep.txt', join(dir, 't/link-rel'))
  symlinkSync('/etc/hostname', join(dir, 't/link-abs'))
  symlinkSync('does/not/exist', join(dir, 't/link-dangling'))
  symlinkSync('a', join(dir, 't/link-to-dir'))
  symlinkSync('日本語', join(dir, 't/link-utf8'))
  symlinkSync('../.dotfile', join(dir, 't/a/.link-hidden'))
  // h: directories around the HAMT threshold, inside a parent (whose CID carries their Tsize).
  thresholdDir('h/at-threshold', 262_144)
  thresholdDir('h/one-over', 262_145)
  mkdirSync(join(dir, 'h/big-hamt'))
  for (let i = 0; i < 6000; i++) writeFileSync(join(dir, 'h/big-hamt', `entry-${i}.dat`), `${i}`)
}, 300_000)

afterAll(async () => {
  await pool?.destroy()
  await kubo?.dispose()
  if (dir) rmSync(dir, { recursive: true, force: true })
})

async function ours(path: string, hidden: boolean, usePool: boolean): Promise<Map<string, string>> {
  const seen = new Map<string, string>()
  const name = path.split('/').pop()!
  const root = await cidOfTree(path, {
    hidden,
    pool: usePool ? pool : undefined,
    onEntry: (rel: string, _kind: EntryKind, node) => {
      seen.set(rel === '' ? name : `${name}/${rel}`, node.cid.toString())
    },
  })
  expect(seen.get(name)).toBe(root.cid.toString())
  return seen
}

describe('tree CIDs equal `ipfs add -r`', () => {
  for (const hidden of [false, true]) {
    it(`for every entry of a mixed tree ${hidden ? 'with -H' : 'without -H'}, with and without a pool`, async () => {
      const expected = await kubo.addedMap([join(dir, 't')], { hidden })
      expect(expected.has('t/.dotfile')).toBe(hidden)
      expect(expected.has('t/link-rel')).toBe(true)
      for (const usePool of [true, false]) {
        const got = await ours(join(dir, 't'), hidden, usePool)
        // Kubo prints every file, symlink and directory: the same set with the same CIDs.
        expect(Object.fromEntries(got)).toEqual(Object.fromEntries(expected))
      }
    })
  }

  it('for a single file, a symlink and an empty directory given as the root', async () => {
    for (const rel of ['t/a/big', 't/link-rel', 't/empty-dir', 't/.dotdir']) {
      const path = join(dir, rel)
      expect((await cidOfTree(path, { hidden: false })).cid.toString(), rel).toBe(await kubo.rootCid(path))
    }
    expect((await cidOfSymlink('a/b/c/deep.txt')).cid.toString()).toBe(
      await kubo.rootCid(join(dir, 't/link-rel')),
    )
  })

  it('shards a directory one byte over 256 KiB, not one exactly at it (boxo: size > threshold)', async () => {
    const expected = await kubo.addedMap([join(dir, 'h')])
    const got = await ours(join(dir, 'h'), false, true)
    for (const d of ['h/at-threshold', 'h/one-over', 'h/big-hamt', 'h']) {
      expect(got.get(d), d).toBe(expected.get(d))
    }
    // Check the shapes themselves, not only the equality.
    const shapes = new Map<string, string>()
    const blocks = treeBlocks(join(dir, 'h'))
    for (;;) {
      const r = await blocks.next()
      if (r.done) break
      if (r.value.cid.code !== dagPB.code) continue
      const node = dagPB.decode(r.value.bytes)
      const fs = UnixFS.unmarshal(node.Data!)
      const key = r.value.cid.toString()
      shapes.set(key, fs.type)
      if (key === got.get('h/at-threshold')) expect(r.value.bytes.length).toBe(262_144)
    }
    expect(shapes.get(got.get('h/at-threshold')!)).toBe('directory')
    expect(shapes.get(got.get('h/one-over')!)).toBe('hamt-sharded-directory')
    expect(shapes.get(got.get('h/big-hamt')!)).toBe('hamt-sharded-directory')
    expect(shapes.get(got.get('h')!)).toBe('directory')
  })

  it('cidOfDirectory sorts by UTF-8 bytes and measures the block as boxo does', async () => {
    const leaf = (await cidOfSymlink('x')).cid
    const entries: DirEntryCid[] = ['b', 'a', 'emoji-😀', '\uFFFD', 'A'].map((name) => ({
      name,
      cid: leaf,
      tsize: 5,
    }))
    const node = await cidOfDirectory(entries)
    const reversed = await cidOfDirectory([...entries].reverse())
    expect(reversed.cid.equals(node.cid)).toBe(true)
    expect(node.tsize).toBe(basicDirectorySize(entries) + 5 * entries.length)
  })
})

describe('the lean dag-pb encoder', () => {
  it('writes the bytes @ipld/dag-pb writes', async () => {
    const leaf = (await cidOfSymlink('x')).cid
    const names = ['', 'a', 'x'.repeat(300), 'é']
    const links = names.map((name, i) => ({ hash: leaf.bytes, name: Buffer.from(name), tsize: i * 100_000 }))
    const data = new UnixFS({ type: 'directory' }).marshal()
    const ref = dagPB.encode({
      Data: data,
      Links: names.map((Name, i) => ({ Hash: leaf, Name, Tsize: i * 100_000 })),
    })
    expect(Buffer.from(encodePB(links, data)).equals(Buffer.from(ref))).toBe(true)
  })
})

describe('errors', () => {
  it('names a missing path and an unsupported entry', async () => {
    await expect(cidOfTree(join(dir, 'nope'), { hidden: false })).rejects.toMatchObject({
      code: 'CIDMIRROR_ERR_PATH_NOT_FOUND',
    })
    await expect(cidOfTree('/dev/null', { hidden: false })).rejects.toMatchObject({
      code: 'CIDMIRROR_ERR_UNSUPPORTED_ENTRY',
    })
    await expect(cidOfTree('/proc/self/mem', { hidden: false, pool })).rejects.toMatchObject({
      code: 'CIDMIRROR_ERR_UNREADABLE',
    })
  })
})
