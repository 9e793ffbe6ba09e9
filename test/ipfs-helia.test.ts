/**
 * The embedded Helia node against a real Kubo peer on loopback: the peer pins a mirror tree from it
 * over bitswap, while the Helia node's own store stays small and the process's memory grows by far
 * less than the tree; a file changed on disk after indexing is not served; CIDs equal the index's and
 * KuboNode's. Kubo runs without a private-network key: Helia cannot join one.
 */
import { randomBytes } from 'node:crypto'
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { readdir } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type Database, openDatabase } from '../src/db.ts'
import { mapBlocks, openMirrorIndex } from '../src/index/index.ts'
import { createHeliaNode, type HeliaNode, KuboNode } from '../src/ipfs/index.ts'
import { disposeAll, Kubo } from './helpers/kubo.ts'

const MiB = 1024 * 1024

let work: string
let tree: string
let small: string
let db: Database
let helia: HeliaNode
let kubo: Kubo | undefined
let peer: KuboNode
let root: string
let smallRoot: string
const missing: string[] = []
const missingWaiters: { cid: string; resolve: () => void }[] = []

function write(base: string, rel: string, data: string | Uint8Array): void {
  const p = join(base, rel)
  mkdirSync(join(p, '..'), { recursive: true })
  writeFileSync(p, data)
}

async function duBytes(dir: string): Promise<number> {
  let total = 0
  for (const e of await readdir(dir, { withFileTypes: true, recursive: true })) {
    if (e.isFile()) total += statSync(join(e.parentPath, e.name)).size
  }
  return total
}

/** Resolves when the Helia node has been asked for `cid` and could not serve it. */
function askedAndMissing(cid: string): Promise<void> {
  if (missing.includes(cid)) return Promise.resolve()
  return new Promise((resolve) => missingWaiters.push({ cid, resolve }))
}

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), 'cidmirror-helia-'))
  tree = join(work, 'tree')
  small = join(work, 'small')
  // 100 MiB: two multi-chunk files, some one-chunk files, nested folders.
  write(tree, 'big/a.bin', randomBytes(60 * MiB + 17))
  write(tree, 'big/b.bin', randomBytes(39 * MiB))
  for (let i = 0; i < 50; i++) write(tree, `docs/${i % 5}/f${i}.txt`, `file ${i}\n${'x'.repeat(i * 1000)}`)
  write(small, 'keep.txt', 'stays\n')
  write(small, 'change.txt', 'before\n')
  write(small, 'two.bin', randomBytes(2 * MiB + 3))
  db = await openDatabase(join(work, 'db'))
  root = (await openMirrorIndex(db, 'm', tree).scan()).rootCid
  smallRoot = (await openMirrorIndex(db, 's', small).scan()).rootCid
  expect((await mapBlocks(db, 'm', tree)).stale).toEqual([])
  expect((await mapBlocks(db, 's', small)).stale).toEqual([])
  helia = await createHeliaNode({
    db,
    dataDir: join(work, 'helia'),
    onMissing: (cid) => {
      missing.push(cid)
      for (const w of missingWaiters.filter((x) => x.cid === cid)) w.resolve()
    },
  })
  ;[kubo] = await Kubo.swarm(1, { swarmKey: false, parent: work, filestore: true })
  peer = new KuboNode({ api: kubo!.api })
}, 240_000)

afterAll(async () => {
  await helia?.close()
  await disposeAll(kubo ? [kubo] : [])
  await db?.close()
  rmSync(work, { recursive: true, force: true })
})

describe('embedded Helia node', () => {
  it('listens on loopback only', async () => {
    const { peerId, addresses } = await helia.id()
    expect(addresses.length).toBeGreaterThan(0)
    for (const a of addresses) expect(a).toMatch(new RegExp(`^/ip4/127\\.0\\.0\\.1/tcp/\\d+/p2p/${peerId}$`))
  })

  it('gives the index CIDs, as KuboNode does for the same files', async () => {
    for (const rel of ['big/a.bin', 'docs/3/f13.txt']) {
      const rec = await openMirrorIndex(db, 'm', tree).get(rel)
      const abs = join(tree, rel)
      expect(await helia.referenceFile(abs)).toBe(rec!.cid)
      expect(await helia.referenceFile(abs, { expect: rec!.cid })).toBe(rec!.cid)
      expect(await peer.referenceFile(abs)).toBe(rec!.cid)
    }
    await expect(helia.referenceFile(join(tree, 'big/b.bin'), { expect: root })).rejects.toThrow(/index holds/)
  })

  it('a Kubo peer pins the 100 MiB tree from it over bitswap; its store and memory stay small', async () => {
    const before = process.memoryUsage().rss
    let peak = before
    const sampler = setInterval(() => {
      peak = Math.max(peak, process.memoryUsage().rss)
    }, 50)
    try {
      const addr = (await helia.id()).addresses[0]!
      await peer.connect(addr)
      await peer.pin(root)
    } finally {
      clearInterval(sampler)
    }
    peak = Math.max(peak, process.memoryUsage().rss)
    expect(await peer.pinned(root)).toBe('recursive')
    const got = join(work, 'got')
    await kubo!.ok(['get', '--offline', '-o', got, root])
    expect(readFileSync(join(got, 'big/a.bin')).equals(readFileSync(join(tree, 'big/a.bin')))).toBe(true)
    expect(readFileSync(join(got, 'docs/4/f49.txt'), 'utf8')).toBe(readFileSync(join(tree, 'docs/4/f49.txt'), 'utf8'))
    expect(await kubo!.ok(['add', '-r', '-Q', '--only-hash', '--cid-version=1', got]).then((s) => s.trim())).toBe(root)
    const treeBytes = await duBytes(tree)
    const storeBytes = await duBytes(join(work, 'helia'))
    const grew = peak - before
    console.log(`helia store ${storeBytes} B for a ${treeBytes} B tree; RSS ${before >> 20} -> peak ${peak >> 20} MiB`)
    expect(storeBytes).toBeLessThan(treeBytes / 20)
    expect(grew).toBeLessThan(treeBytes / 2)
  }, 300_000)

  it('does not serve a block whose file changed on disk after indexing', async () => {
    const rec = await openMirrorIndex(db, 's', small).get('change.txt')
    const keep = await openMirrorIndex(db, 's', small).get('keep.txt')
    expect(await helia.has(rec!.cid)).toBe(true)
    write(small, 'change.txt', 'after!\n')
    expect(await helia.has(rec!.cid)).toBe(false)
    await expect(helia.getBlock(rec!.cid, { offline: true })).rejects.toThrow(/not held/)
    await peer.connect((await helia.id()).addresses[0]!)
    // The unchanged file next to it still comes across.
    expect(Buffer.from(await peer.getBlock(keep!.cid)).toString()).toBe('stays\n')
    const stop = new AbortController()
    const asked = askedAndMissing(rec!.cid).then(() => stop.abort())
    const fetch = peer.getBlock(rec!.cid, { signal: stop.signal })
    await asked
    await expect(fetch).rejects.toThrow()
    expect(smallRoot).toMatch(/^bafy/)
  }, 120_000)

  it('keeps blocks given to it that are not the mirror, and pins by record', async () => {
    const { CID } = await import('multiformats/cid')
    void CID
    await helia.retain('m', root)
    await helia.pin(root)
    expect(await helia.pinned(root)).toBe('recursive')
    await helia.unpin(root)
    expect(await helia.pinned(root)).toBeUndefined()
    const carBytes: Uint8Array[] = []
    for await (const c of helia.car(smallRoot, { scope: 'block' })) carBytes.push(c)
    expect(Buffer.concat(carBytes).length).toBeGreaterThan(0)
  })
})
