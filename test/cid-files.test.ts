/**
 * File CIDs against a real Kubo (`unixfs-v1-2025`): every chunking boundary, in this thread, from
 * bytes, and through the worker pool (batched and split across workers).
 */
import { execFileSync } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import {
  closeSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  rmSync,
  symlinkSync,
  writeFileSync,
  writeSync,
} from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { cidOfBytes, cidOfFile, cidOfTree, HashPool } from '../src/cid/index.ts'
import { Kubo } from './helpers/kubo.ts'

const MiB = 1024 * 1024

let kubo: Kubo
let dir: string
let pool: HashPool
/** name -> [size, content or null for sparse zeros] */
const files = new Map<string, { size: number; bytes?: Buffer }>()

function sparseZeros(path: string, size: number): void {
  const fd = openSync(path, 'w')
  try {
    // Write the last byte: the rest is a hole, read back as zeros without touching the disk.
    if (size > 0) writeSync(fd, Buffer.alloc(1), 0, 1, size - 1)
  } finally {
    closeSync(fd)
  }
}

beforeAll(async () => {
  kubo = await Kubo.create()
  dir = mkdtempSync(join(tmpdir(), 'cidmirror-cid-files-'))
  mkdirSync(join(dir, 'f'))
  const add = (name: string, bytes: Buffer) => {
    writeFileSync(join(dir, 'f', name), bytes)
    files.set(name, { size: bytes.length, bytes })
  }
  add('empty', Buffer.alloc(0))
  add('one-byte', Buffer.from('x'))
  add('chunk-minus-1', randomBytes(MiB - 1))
  add('chunk', randomBytes(MiB))
  add('chunk-plus-1', randomBytes(MiB + 1))
  add('two-chunks', randomBytes(2 * MiB))
  add('random-5.3MiB', randomBytes(Math.floor(5.3 * MiB)))
  add('text', Buffer.from('héllo wörld\n'.repeat(1000)))
  // 40 MiB + 7: above the pool's split size, so its ranges go to both workers.
  add('split-40MiB', randomBytes(40 * MiB + 7))
  pool = new HashPool({ threads: 2 })
}, 300_000)

afterAll(async () => {
  await pool?.destroy()
  await kubo?.dispose()
  if (dir) rmSync(dir, { recursive: true, force: true })
})

describe('file CIDs equal Kubo', () => {
  it('for every chunking boundary, in thread, from bytes and through the pool', async () => {
    const kuboLines = await kubo.addedMap([join(dir, 'f')])
    for (const [name, { size, bytes }] of files) {
      const expected = kuboLines.get(`f/${name}`)
      expect(expected, name).toBeDefined()
      const path = join(dir, 'f', name)
      const inThread = await cidOfFile(path)
      expect(inThread.cid.toString(), name).toBe(expected)
      expect(inThread.size).toBe(size)
      const pooled = await pool.hashFile(path, size)
      expect(pooled.cid.toString(), `${name} (pool)`).toBe(expected)
      expect(pooled.tsize).toBe(inThread.tsize)
      expect((await cidOfBytes(bytes!)).cid.toString(), `${name} (bytes)`).toBe(expected)
    }
    // The directory's root carries every file's Tsize: equal roots mean equal Tsizes.
    const root = await cidOfTree(join(dir, 'f'), { hidden: false, pool })
    expect(root.cid.toString()).toBe(kuboLines.get('f'))
  })

  it('tsize of a raw leaf is its length, of a File node its block plus its children', async () => {
    const one = await cidOfBytes(Buffer.from('x'))
    expect(one.tsize).toBe(1)
    const two = await cidOfBytes(Buffer.alloc(MiB + 1))
    expect(two.tsize).toBeGreaterThan(MiB + 1)
    expect(two.tsize).toBeLessThan(MiB + 200)
  })

  it('for files of exactly 1024 chunks (one layer) and 1024 chunks + 1 byte (a second layer)', async () => {
    mkdirSync(join(dir, 'big'))
    const sizes: Record<string, number> = { 'layer1-1024MiB': 1024 * MiB, 'layer2-1024MiB+1': 1024 * MiB + 1 }
    for (const [name, size] of Object.entries(sizes)) sparseZeros(join(dir, 'big', name), size)
    const kuboLines = await kubo.addedMap([join(dir, 'big')])
    for (const [name, size] of Object.entries(sizes)) {
      const path = join(dir, 'big', name)
      const pooled = await pool.hashFile(path, size)
      expect(pooled.cid.toString(), name).toBe(kuboLines.get(`big/${name}`))
      expect(pooled.size).toBe(size)
    }
    // In thread once (the slow path), for the two-layer file.
    const inThread = await cidOfFile(join(dir, 'big', 'layer2-1024MiB+1'))
    expect(inThread.cid.toString()).toBe(kuboLines.get('big/layer2-1024MiB+1'))
    const root = await cidOfTree(join(dir, 'big'), { hidden: false, pool })
    expect(root.cid.toString()).toBe(kuboLines.get('big'))
    rmSync(join(dir, 'big'), { recursive: true })
  }, 180_000)
})

describe('HashPool', () => {
  it('hashes thousands of small files in batches, each equal to the in-thread CID', async () => {
    const d = join(dir, 'many')
    mkdirSync(d)
    const n = 3000
    for (let i = 0; i < n; i++) writeFileSync(join(d, `f${i}`), `file ${i}\n`.repeat(i % 200))
    const results = await Promise.all(
      Array.from({ length: n }, (_, i) => pool.hashFile(join(d, `f${i}`), `file ${i}\n`.length * (i % 200))),
    )
    for (let i = 0; i < n; i += 97) {
      expect(results[i]!.cid.toString()).toBe((await cidOfFile(join(d, `f${i}`))).cid.toString())
    }
    const root = await cidOfTree(d, { hidden: false, pool })
    expect(root.cid.toString()).toBe(await kubo.rootCid(d))
    rmSync(d, { recursive: true })
  })

  it('fails one file of a batch with our error, not its neighbours', async () => {
    const ok = join(dir, 'f', 'text')
    const [a, b, c] = await Promise.allSettled([
      pool.hashFile(ok, 1),
      pool.hashFile(join(dir, 'no-such-file'), 1),
      pool.hashFile(ok, 1),
    ])
    expect(a.status).toBe('fulfilled')
    expect(c.status).toBe('fulfilled')
    expect(b.status).toBe('rejected')
    expect((b as PromiseRejectedResult).reason.code).toBe('CIDMIRROR_ERR_PATH_NOT_FOUND')
    await expect(pool.hashFile('/proc/self/mem', 0)).rejects.toMatchObject({
      code: 'CIDMIRROR_ERR_UNREADABLE',
    })
    await expect(pool.hashFile(dir, 0)).rejects.toMatchObject({ code: 'CIDMIRROR_ERR_UNREADABLE' })
  })

  it('hashes a file given without a size with the stat of what it opened; refuses a symlink or FIFO there', async () => {
    type Got = { err: unknown; cid?: string; size?: number; stat?: number[] }
    const listed = (path: string): Promise<Got> =>
      new Promise((resolve) => {
        pool.submitRaw(path, undefined, (err, cid, _bytes, size, _tsize, mtimeMs, ctimeMs, ino) =>
          resolve({ err, cid, size, stat: [mtimeMs!, ctimeMs!, ino!] }),
        )
      })
    for (const name of ['text', 'chunk-plus-1', 'split-40MiB']) {
      const path = join(dir, 'f', name)
      const st = lstatSync(path)
      const got = await listed(path)
      expect(got.err).toBeNull()
      expect(got.cid).toBe((await cidOfFile(path)).cid.toString())
      expect(got.size).toBe(st.size)
      expect(got.stat).toEqual([st.mtimeMs, st.ctimeMs, st.ino])
    }
    // Several at once: a worker defers what follows its first 8 MiB, and the deferred files are spread
    // over the workers again; every CID still comes back to its own file.
    const names = ['random-5.3MiB', 'two-chunks', 'chunk', 'chunk-plus-1', 'split-40MiB', 'text', 'empty']
    const all = await Promise.all(names.map((n) => listed(join(dir, 'f', n))))
    for (const [i, n] of names.entries()) {
      expect(all[i]!.err).toBeNull()
      expect(all[i]!.cid).toBe((await cidOfFile(join(dir, 'f', n))).cid.toString())
    }
    // Listed as a file, then replaced: a symlink is not followed, a FIFO not waited on.
    const link = join(dir, 'became-link')
    symlinkSync(join(dir, 'f', 'text'), link)
    expect((await listed(link)).err).toMatchObject({ code: 'CIDMIRROR_ERR_FILE_CHANGED' })
    const fifo = join(dir, 'became-fifo')
    execFileSync('mkfifo', [fifo]) // coreutils
    expect((await listed(fifo)).err).toMatchObject({ code: 'CIDMIRROR_ERR_FILE_CHANGED' })
    // A size given still hashes as before, with no stat taken.
    const given = await new Promise<Got>((resolve) =>
      pool.submitRaw(join(dir, 'f', 'text'), files.get('text')!.size, (err, cid, _b, size, _t, mtimeMs) =>
        resolve({ err, cid, size, stat: [mtimeMs!] }),
      ),
    )
    expect(given.err).toBeNull()
    expect(given.stat![0]).toBeNaN()
  })

  it('reports a split file that changed size while hashing', async () => {
    const path = join(dir, 'shrunk')
    writeFileSync(path, randomBytes(MiB))
    // Claim it is 40 MiB: the ranges past its end come back short.
    await expect(pool.hashFile(path, 40 * MiB)).rejects.toMatchObject({ code: 'CIDMIRROR_ERR_FILE_CHANGED' })
  })

  it('rejects pending work on destroy and refuses new work', async () => {
    const p = new HashPool({ threads: 1 })
    const pending = expect(p.hashFile(join(dir, 'f', 'random-5.3MiB'), 5 * MiB)).rejects.toMatchObject({
      code: 'CIDMIRROR_ERR_HASH_POOL',
    })
    await p.destroy()
    await pending
    await expect(p.hashFile(join(dir, 'f', 'text'), 1)).rejects.toMatchObject({
      code: 'CIDMIRROR_ERR_HASH_POOL',
    })
  })
})
