/**
 * The IPFS node interface on a real Kubo daemon (filestore on, repo beside the mirror tree): files
 * referenced in place give the index's CIDs without growing the repo by their size; pins, blocks and
 * CARs; `filestore verify` statuses; and references that follow renames and deleted duplicates.
 */
import { randomBytes } from 'node:crypto'
import {
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { CarReader } from '@ipld/car/reader'
import { CarWriter } from '@ipld/car/writer'
import * as dagPb from '@ipld/dag-pb'
import { CID } from 'multiformats/cid'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { cidOfFile, treeBlocks } from '../src/cid/index.ts'
import {
  BlockNotFoundError,
  FilestoreLayoutError,
  followIndex,
  IpfsUnreachableError,
  KuboNode,
  ReferenceMismatchError,
} from '../src/ipfs/index.ts'
import { verifyBlock } from '../src/ipfs/verify-block.ts'
import { Kubo } from './helpers/kubo.ts'

const MiB = 1024 * 1024

let dir: string
let mirror: string
let kubo: Kubo
let node: KuboNode

beforeAll(async () => {
  // The repo and the mirror share one folder: Kubo references only files under the repo's parent.
  dir = mkdtempSync(join(tmpdir(), 'cidmirror-ipfs-kubo-'))
  mirror = join(dir, 'mirror')
  mkdirSync(mirror)
  kubo = await Kubo.create({ parent: dir, filestore: true })
  await kubo.start()
  node = new KuboNode({ api: kubo.api, local: true })
})

afterAll(async () => {
  await node?.close()
  await kubo?.dispose()
  rmSync(dir, { recursive: true, force: true })
})

function write(name: string, bytes: Buffer): string {
  const path = join(mirror, name)
  mkdirSync(join(path, '..'), { recursive: true })
  writeFileSync(path, bytes)
  return path
}

/** Bytes the repo takes on disk (every file under IPFS_PATH). */
function repoBytes(path = kubo.repo): number {
  let total = 0
  for (const e of readdirSync(path, { withFileTypes: true })) {
    const p = join(path, e.name)
    if (e.isDirectory()) total += repoBytes(p)
    else if (e.isFile()) total += statSync(p).size
  }
  return total
}

async function collect<T>(it: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = []
  for await (const x of it) out.push(x)
  return out
}

async function readCar(
  stream: AsyncIterable<Uint8Array>,
): Promise<{ roots: CID[]; blocks: { cid: CID; bytes: Uint8Array }[] }> {
  const reader = await CarReader.fromIterable(stream)
  const blocks: { cid: CID; bytes: Uint8Array }[] = []
  for await (const b of reader.blocks()) blocks.push(b)
  return { roots: await reader.getRoots(), blocks }
}

describe('referenceFile', () => {
  it('gives the index CID of a small and of a multi-chunk file', async () => {
    const small = write('small.txt', Buffer.from('hello, mirror\n'))
    const big = write('pool/big.bin', randomBytes(5 * MiB + 123))
    for (const path of [small, big]) {
      const expected = (await cidOfFile(path)).cid.toString()
      expect(await node.referenceFile(path, { expect: expected })).toBe(expected)
      expect(await node.has(expected)).toBe(true)
    }
  })

  it('referenceFiles: many files per request, one result each in order, failures per file', async () => {
    const paths = Array.from({ length: 300 }, (_, i) =>
      // Same basenames in different folders: the results map back by position, not by name.
      write(`many/${i % 3}/pkg-${i % 100}.deb`, randomBytes(i % 7 === 0 ? MiB + i : 100 + i)),
    )
    const missing = join(mirror, 'many', 'missing.deb')
    const changed = write('many/changed.deb', Buffer.from('old'))
    const files = [
      ...paths.slice(0, 150),
      missing,
      { path: changed, expect: (await cidOfFile(write('many/other', Buffer.from('other')))).cid.toString() },
      ...paths.slice(150),
    ]
    const results = await collect(node.referenceFiles(files))
    expect(results.map((r) => r.path)).toEqual(files.map((f) => (typeof f === 'string' ? f : f.path)))
    for (const [i, p] of paths.entries()) {
      const r = results[i < 150 ? i : i + 2]!
      expect(r).toEqual({ path: p, cid: (await cidOfFile(p)).cid.toString() })
    }
    expect(results[150]).toMatchObject({ error: { code: 'CIDMIRROR_ERR_PATH_NOT_FOUND' } })
    expect((results[151] as { error: Error }).error).toBeInstanceOf(ReferenceMismatchError)
  })

  it('referenceFiles: a file Kubo refuses fails alone, the rest of its batch is referenced', async () => {
    const outside = mkdtempSync(join(tmpdir(), 'cidmirror-ipfs-outside-'))
    try {
      const refused = join(outside, 'f')
      writeFileSync(refused, 'outside the folder the repo may reference')
      const a = write('batch/a', Buffer.from('a file'))
      const b = write('batch/b', randomBytes(2 * MiB))
      const results = await collect(node.referenceFiles([a, refused, b]))
      expect(results[0]).toEqual({ path: a, cid: (await cidOfFile(a)).cid.toString() })
      expect((results[1] as { error: Error }).error).toBeInstanceOf(FilestoreLayoutError)
      expect(results[2]).toEqual({ path: b, cid: (await cidOfFile(b)).cid.toString() })
    } finally {
      rmSync(outside, { recursive: true, force: true })
    }
  })

  it('references in place: the repo grows by far less than the file', async () => {
    const path = write('pool/large.bin', randomBytes(24 * MiB))
    const before = repoBytes()
    const cid = await node.referenceFile(path)
    const grown = repoBytes() - before
    // The measured figure is about 0.2 % of the data; a copy would be the whole 24 MiB.
    expect(grown).toBeLessThan(2 * MiB)
    expect((await kubo.cat(cid)).equals(readFileSync(path))).toBe(true)
  })

  it('throws ReferenceMismatchError when the node computes another CID than the index holds', async () => {
    const a = write('mismatch-a', Buffer.from('a'))
    const other = (await cidOfFile(write('mismatch-b', Buffer.from('b')))).cid.toString()
    await expect(node.referenceFile(a, { expect: other })).rejects.toBeInstanceOf(ReferenceMismatchError)
  })

  it('names the layout to change for a file outside the folder the repo may reference', async () => {
    const outside = mkdtempSync(join(tmpdir(), 'cidmirror-ipfs-outside-'))
    try {
      const path = join(outside, 'f')
      writeFileSync(path, 'outside')
      // The repo's parent is `dir`; a sibling temp folder does not start with it.
      const err = await node.referenceFile(path).catch((e: unknown) => e)
      expect(err).toBeInstanceOf(FilestoreLayoutError)
      expect((err as Error).message).toBe(
        `cannot reference ${path} in place: Kubo's filestore references only files under ${dir} (the parent of IPFS_PATH ${kubo.repo}) and mirror root ${path} lies outside it: move the repo to ${join(outside, '.ipfs')} (IPFS_PATH), or the mirrors under ${dir}`,
      )
      expect((err as Error).message.split('\n')).toHaveLength(1)
    } finally {
      rmSync(outside, { recursive: true, force: true })
    }
  })

  it('reports a missing file as a path error', async () => {
    await expect(node.referenceFile(join(mirror, 'no-such-file'))).rejects.toMatchObject({
      code: 'CIDMIRROR_ERR_PATH_NOT_FOUND',
    })
  })
})

describe('pins', () => {
  it('pin, pinned, pinUpdate and unpin', async () => {
    const a = await node.referenceFile(write('pins/a.bin', randomBytes(2 * MiB + 5)))
    const b = await node.referenceFile(write('pins/b.bin', randomBytes(1000)))
    expect(await node.pinned(a)).toBeUndefined()
    await node.pin(a, { name: 'cidmirror-test' })
    expect(await node.pinned(a)).toBe('recursive')
    // A leaf of a recursively pinned file is pinned indirectly.
    const fileRoot = await node.getBlock(a)
    const leaf = dagPb.decode(fileRoot).Links[0]!.Hash.toString()
    expect(await node.pinned(leaf)).toBe('indirect')

    await node.pinUpdate(a, b)
    expect(await node.pinned(a)).toBeUndefined()
    expect(await node.pinned(b)).toBe('recursive')
    await node.unpin(b)
    expect(await node.pinned(b)).toBeUndefined()
    // Idempotent: unpinning what is not pinned is no error.
    await node.unpin(b)

    await node.pin(a, { recursive: false })
    expect(await node.pinned(a)).toBe('direct')
    await node.unpin(a, { recursive: false })
    expect(await node.pinned(a)).toBeUndefined()
  })
})

describe('blocks and CARs', () => {
  it('getBlock returns verified bytes; has and offline getBlock for a block not held', async () => {
    const bytes = randomBytes(3000)
    const cid = await node.referenceFile(write('blocks/x', bytes))
    const got = await node.getBlock(cid, { offline: true })
    expect(Buffer.from(got).equals(bytes)).toBe(true)

    const absent = (await cidOfFile(write('../not-referenced', randomBytes(100)))).cid.toString()
    expect(await node.has(absent)).toBe(false)
    await expect(node.getBlock(absent, { offline: true })).rejects.toBeInstanceOf(BlockNotFoundError)
  })

  it('verifyBlock refuses bytes that do not hash to the CID', async () => {
    const cid = CID.parse(await node.referenceFile(write('blocks/y', Buffer.from('y'))))
    expect(() => verifyBlock(cid, Buffer.from('z'), 'test')).toThrow(/do not hash/)
  })

  it('putBlocks stores directory nodes without pinning; car streams each scope', async () => {
    const fileBytes = randomBytes(2 * MiB + 77)
    const filePath = write('tree/dir/file.bin', fileBytes)
    const fileCid = await node.referenceFile(filePath)
    // The directory node alone, as the replicator builds it from the index's records.
    const dir = await rootBlock(join(filePath, '..'))
    await node.putBlocks(carOf(dir.cid, [dir]))
    const dirCid = dir.cid.toString()
    expect(await node.has(dirCid)).toBe(true)
    expect(await node.pinned(dirCid)).toBeUndefined()

    const all = await readCar(node.car(dirCid, { offline: true }))
    expect(all.roots.map(String)).toEqual([dirCid])
    // The directory, the file's root and its three leaves, each hashing to its CID.
    expect(all.blocks).toHaveLength(1 + 1 + 3)
    for (const b of all.blocks) verifyBlock(b.cid, b.bytes, 'car')
    const leaves = all.blocks.filter((b) => b.cid.code === 0x55)
    expect(Buffer.concat(leaves.map((b) => b.bytes)).equals(fileBytes)).toBe(true)

    const entity = await readCar(node.car(dirCid, { scope: 'entity', offline: true }))
    expect(entity.blocks.map((b) => b.cid.toString())).toEqual([dirCid])
    const fileEntity = await readCar(node.car(fileCid, { scope: 'entity', offline: true }))
    expect(fileEntity.blocks).toHaveLength(4)
    const block = await readCar(node.car(fileCid, { scope: 'block', offline: true }))
    expect(block.blocks.map((b) => b.cid.toString())).toEqual([fileCid])
  })

  it('an entity CAR of a HAMT directory holds its shards and none of its entries', async () => {
    const hamtDir = join(mirror, 'hamt')
    mkdirSync(hamtDir)
    // 1100 links of about 290 bytes exceed the 256 KiB a basic directory may take.
    const long = 'a-package-name-long-enough-to-fill-a-directory-node-quickly-'.repeat(4)
    for (let i = 0; i < 1100; i++)
      writeFileSync(join(hamtDir, `${long}${String(i).padStart(5, '0')}.deb`), String(i))
    const blocks = await collect(treeBlocks(hamtDir))
    const root = blocks.at(-1)!.cid
    await node.putBlocks(carOf(root, blocks))
    const shards = blocks.filter((b) => b.cid.code === 0x70)
    expect(shards.length).toBeGreaterThan(1)
    const entity = await readCar(node.car(root.toString(), { scope: 'entity', offline: true }))
    expect(entity.blocks[0]!.cid.toString()).toBe(root.toString())
    expect(new Set(entity.blocks.map((b) => b.cid.toString()))).toEqual(
      new Set(shards.map((b) => b.cid.toString())),
    )
  })
})

/** The root block of the tree at `path` (for a folder: its directory node), built by src/cid. */
async function rootBlock(path: string): Promise<{ cid: CID; bytes: Uint8Array }> {
  const blocks = await collect(treeBlocks(path))
  return blocks.at(-1)!
}

async function* carOf(root: CID, blocks: { cid: CID; bytes: Uint8Array }[]): AsyncGenerator<Uint8Array> {
  const { writer, out } = CarWriter.create([root])
  const feed = (async () => {
    for (const b of blocks) await writer.put(b)
    await writer.close()
  })()
  yield* out
  await feed
}

describe('verifyReferences', () => {
  it('parses ok, no-file and changed (the command itself exits 0 for all)', async () => {
    const gone = write('verify/gone.bin', randomBytes(1500))
    const changed = write('verify/changed.bin', randomBytes(1500))
    const kept = write('verify/kept.bin', randomBytes(1500))
    const [goneCid, changedCid, keptCid] = [
      await node.referenceFile(gone),
      await node.referenceFile(changed),
      await node.referenceFile(kept),
    ]
    rmSync(gone)
    writeFileSync(changed, randomBytes(1500))
    const checks = await collect(node.verifyReferences({ cids: [goneCid, changedCid, keptCid] }))
    expect(checks.map((c) => [c.cid, c.status, c.path])).toEqual([
      [goneCid, 'no-file', gone],
      [changedCid, 'changed', changed],
      [keptCid, 'ok', kept],
    ])
    // The whole store is listed too, with the same statuses.
    const everything = await collect(node.verifyReferences())
    expect(everything.find((c) => c.cid === goneCid)?.status).toBe('no-file')
    expect(everything.find((c) => c.cid === keptCid)?.status).toBe('ok')
  })
})

describe('followIndex', () => {
  it('keeps every CID readable after a rename and a deleted duplicate, under a tree pin', async () => {
    const renamedBytes = randomBytes(3 * MiB + 10)
    const dupBytes = randomBytes(2 * MiB + 1)
    const from = write('follow/old-name.iso', renamedBytes)
    const first = write('follow/a/dup.deb', dupBytes)
    const second = write('follow/b/dup.deb', dupBytes)
    const small = write('follow/small-old', Buffer.from('small file\n'))
    const renamedCid = await node.referenceFile(from)
    const dupCid = await node.referenceFile(first)
    expect(await node.referenceFile(second)).toBe(dupCid)
    const smallCid = await node.referenceFile(small)
    // Pinned as a tree pin would hold them: the fix must not need the pin removed.
    await node.pin(renamedCid)

    const to = join(mirror, 'follow/new-name.iso')
    renameSync(from, to)
    rmSync(first) // the copy the filestore saw first
    const smallTo = join(mirror, 'follow/small-new')
    renameSync(small, smallTo)
    expect(await node.has(dupCid)).toBe(true) // the root node is in the blockstore proper...
    await expect(collect(node.car(dupCid, { offline: true }))).rejects.toThrow() // ...its leaves are not

    const result = await followIndex(node, [
      { cid: renamedCid, paths: [to] },
      // A path gone since the scan gives way to the CID's next one.
      { cid: dupCid, paths: [first, second] },
      { cid: smallCid, paths: [smallTo] },
    ])
    expect(result.failed).toEqual([])
    expect(result.referenced).toBe(3)
    expect(result.dropped).toBe(4 + 3 + 1)
    for (const [cid, bytes] of [
      [renamedCid, renamedBytes],
      [dupCid, dupBytes],
      [smallCid, Buffer.from('small file\n')],
    ] as const) {
      expect((await kubo.cat(cid)).equals(bytes)).toBe(true)
    }
    expect(await node.pinned(renamedCid)).toBe('recursive')
    const checks = await collect(node.verifyReferences())
    expect(checks.filter((c) => c.path === from || c.path === first || c.path === small)).toEqual([])

    // Nothing left to do: a second pass drops and references nothing.
    const again = await followIndex(node, [
      { cid: renamedCid, paths: [to] },
      { cid: dupCid, paths: [second] },
    ])
    expect(again).toEqual({ referenced: 0, dropped: 0, failed: [] })
  })

  it('drops the references of an evicted file and reports a CID no path still holds', async () => {
    const bytes = randomBytes(1 * MiB + 3)
    const path = write('follow/evicted.bin', bytes)
    const cid = await node.referenceFile(path)
    rmSync(path)
    const result = await followIndex(node, [{ cid, paths: [] }])
    expect(result).toEqual({ referenced: 0, dropped: 2, failed: [] })
    expect(await collect(node.verifyReferences({ cids: [cid] }))).toMatchObject([{ status: 'missing' }])

    // A path that now holds other bytes fails with the mismatch, not silently.
    const changed = write('follow/changed.bin', randomBytes(4000))
    const changedCid = await node.referenceFile(changed)
    writeFileSync(changed, randomBytes(4000))
    const r = await followIndex(node, [{ cid: changedCid, paths: [changed] }])
    expect(r.dropped).toBe(1)
    expect(r.failed).toHaveLength(1)
    expect(r.failed[0]!.error).toBeInstanceOf(ReferenceMismatchError)
  })
})

describe('errors', () => {
  it('an API nobody answers is IpfsUnreachableError, in one line', async () => {
    // A port that was free a moment ago: nobody listens there.
    const port = await new Promise<number>((resolve) => {
      const srv = createServer().listen(0, '127.0.0.1', () => {
        const p = (srv.address() as { port: number }).port
        srv.close(() => resolve(p))
      })
    })
    const dead = new KuboNode({ api: `/ip4/127.0.0.1/tcp/${port}` })
    try {
      const err = await dead.id().catch((e: unknown) => e)
      expect(err).toBeInstanceOf(IpfsUnreachableError)
      expect((err as Error).message).toBe(
        `cannot reach the IPFS node's API at http://127.0.0.1:${port}: ECONNREFUSED`,
      )
      await expect(dead.has('bafkqaaa')).rejects.toBeInstanceOf(IpfsUnreachableError)
    } finally {
      await dead.close()
    }
  })

  it('an invalid CID is named', async () => {
    await expect(node.pin('not-a-cid')).rejects.toMatchObject({ code: 'CIDMIRROR_ERR_IPFS_INVALID_CID' })
  })
})

describe('retain', () => {
  it("keeps a tree's present blocks through repo gc without a pin, evicted parts not needed", async () => {
    const keptBytes = randomBytes(MiB + 5)
    const kept = write('retain/tree/kept.bin', keptBytes)
    const evicted = write('retain/tree/evicted.bin', randomBytes(2 * MiB))
    const [keptCid, evictedCid] = [await node.referenceFile(kept), await node.referenceFile(evicted)]
    const dir = await rootBlock(join(kept, '..'))
    await node.putBlocks(carOf(dir.cid, [dir]))
    // The janitor evicts one file; its references go, so the tree is no longer whole here.
    rmSync(evicted)
    expect((await followIndex(node, [{ cid: evictedCid, paths: [] }])).dropped).toBe(2)

    await node.retain('debian/main', dir.cid.toString())
    await kubo.ok(['repo', 'gc'])
    expect(await node.has(dir.cid.toString())).toBe(true)
    expect((await kubo.cat(keptCid)).equals(keptBytes)).toBe(true)
    expect(await node.pinned(dir.cid.toString())).toBeUndefined()

    // A new root replaces the old entry; none removes it, and the next gc collects the tree.
    await node.retain('debian/main', dir.cid.toString())
    await node.retain('debian/main', undefined)
    await node.retain('debian/main', undefined)
    await kubo.ok(['repo', 'gc'])
    expect(await node.has(dir.cid.toString())).toBe(false)
    expect(await node.has(keptCid)).toBe(false)
  })
})
