/**
 * Issue 10's wrong-CID heisenbug: under a loaded V8 a HAMT's root came out with one link's Tsize taken
 * from another node (the child shard's own block was right). The builders now derive every node's
 * cumulative size from the Tsizes read back out of its own bytes, and refuse a block whose links do
 * not carry the sizes its inputs give (DagMisbuiltError, never a wrong CID). These tests hold the
 * reader against @ipld/dag-pb, the guard against a block that lies, and the builders, in fresh
 * processes under each V8 tier configuration, against Kubo's `ipfs add --only-hash`.
 */
import { execFile } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import * as dagPB from '@ipld/dag-pb'
import { UnixFS } from 'ipfs-unixfs'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { DagMisbuiltError, directoryNode, fromBase32, treeBlocks } from '../src/cid/index.ts'
import { dagPbBlock } from '../src/cid/nodes.ts'
import { encodePB, linkTsizes } from '../src/cid/pb.ts'
import { kuboRepo } from './helpers/index-kubo.ts'

const run = promisify(execFile)
let work: string
let tree: string
let want: Record<string, string>
let paths: string[]

beforeAll(() => {
  work = mkdtempSync(join(tmpdir(), 'cidmirror-dag-guard-'))
  tree = join(work, 'tree')
  // The directory of the failures: 2,200 long names, a HAMT of two levels (the root's link "00" was the
  // one that came out wrong). A second one of other names, and files of one and several File nodes' worth.
  for (let i = 0; i < 2200; i++) {
    mkdirSync(join(tree, 'wide'), { recursive: true })
    writeFileSync(join(tree, 'wide', `${'n'.repeat(100)}-${i}.txt`), `${i}\n`)
  }
  mkdirSync(join(tree, 'wide2'))
  for (let i = 0; i < 3000; i++) writeFileSync(join(tree, 'wide2', `pkg_${i}_1.0-${i % 7}_amd64.deb`), `${i}`)
  writeFileSync(join(tree, 'big.bin'), randomBytes(5 * 1024 * 1024 + 3))
  writeFileSync(join(tree, 'small.txt'), 'hello\n')
  paths = ['wide', 'wide2', 'big.bin', '.'].map((p) => join(tree, p))
  const kubo = kuboRepo(work)
  want = Object.fromEntries(paths.map((p) => [p, kubo.rootCid(p)]))
})

afterAll(() => {
  rmSync(work, { recursive: true, force: true })
})

describe('the dag-pb guard', () => {
  it('reads back the Tsizes @ipld/dag-pb decodes, from every block of a HAMT and a file', async () => {
    let blocks = 0
    for await (const b of treeBlocks(tree, { hidden: true })) {
      if (b.cid.code !== dagPB.code) continue
      const want = dagPB.decode(b.bytes).Links.map((l) => l.Tsize ?? -1)
      expect(linkTsizes(b.bytes)).toEqual(want)
      blocks++
    }
    expect(blocks).toBeGreaterThan(300) // the HAMTs' shards, the file node, the directories
  })

  it('refuses a block whose link Tsize is not the one its inputs give, before it reaches the sink', () => {
    const leaf = fromBase32('bafkreie2e4psvellbnxontwleqtpbmzan3yhiv4l4vozxskpn476hk4gvi')
    const data = new UnixFS({ type: 'directory' }).marshal()
    const links = [
      { hash: leaf, name: Buffer.from('a'), tsize: 2120 },
      { hash: leaf, name: Buffer.from('b'), tsize: 7 },
    ]
    const sunk: unknown[] = []
    const sink = (cid: unknown) => sunk.push(cid)
    // What the failing build did: the bytes carry 361 where the child's size was 2120.
    const lying = encodePB([{ ...links[0]!, tsize: 361 }, links[1]!], data)
    expect(() => dagPbBlock(lying, [2120, 7], sink)).toThrow(DagMisbuiltError)
    expect(() => dagPbBlock(lying, [2120, 7], sink)).toThrow(/link 0 of Tsize 361 where its inputs say 2120/)
    expect(() => dagPbBlock(encodePB(links, data), [2120], sink)).toThrow(DagMisbuiltError)
    expect(sunk).toEqual([])
    const good = encodePB(links, data)
    const node = dagPbBlock(good, [2120, 7], sink)
    expect(node.tsize).toBe(good.length + 2127)
    expect(sunk).toHaveLength(1)
  })

  it('a HAMT built from stored entries gives the same root with and without a sink', () => {
    const entries = Array.from({ length: 2200 }, (_, i) => ({
      name: `${'n'.repeat(100)}-${i}.txt`,
      cid: {
        bytes: fromBase32('bafkreie2e4psvellbnxontwleqtpbmzan3yhiv4l4vozxskpn476hk4gvi'),
        byteLength: 36,
      },
      tsize: 2 + (i % 3),
    }))
    const bare = directoryNode(entries)
    const sunk: Uint8Array[] = []
    const withSink = directoryNode(entries, (_c, b) => sunk.push(b))
    expect(withSink.cid.equals(bare.cid)).toBe(true)
    expect(withSink.tsize).toBe(bare.tsize)
    // The root's size is its block plus every block and entry under it, each counted once.
    const entriesSize = entries.reduce((s, e) => s + e.tsize, 0)
    expect(bare.tsize).toBe(sunk.reduce((s, b) => s + b.length, 0) + entriesSize)
  })
})

/** V8 tier configurations for the fresh processes: the default, each tier alone, and early tier-up. */
const TIERS: string[][] = [
  [],
  ['--max-opt=2'], // Maglev at most
  ['--no-maglev'], // Sparkplug then TurboFan
  ['--invocation-count-for-maglev=1', '--invocation-count-for-turbofan=20', '--always-osr'],
  ['--stress-maglev', '--no-concurrent-recompilation'],
]

describe("builds in fresh processes give Kubo's CIDs under every V8 tier", () => {
  it.each(TIERS.map((flags) => [flags.join(' ') || 'default tiering', flags]))('%s', async (_name, flags) => {
    const { stdout } = await run(
      process.execPath,
      [...(flags as string[]), join(import.meta.dirname, 'helpers', 'dag-rounds.ts'), '3', ...paths],
      { maxBuffer: 1 << 20 },
    )
    const got = JSON.parse(stdout) as Record<string, string[]>
    for (const p of paths) {
      expect(got[p], p).toHaveLength(6)
      for (const cid of got[p]!) expect(cid, p).toBe(want[p])
    }
  })
})
