/**
 * CAR export against a real Kubo: the CAR imports (`ipfs dag import`), its root is the CID
 * `ipfs add -r` gives, and `ipfs cat` returns the original bytes.
 */
import { randomBytes } from 'node:crypto'
import {
  createWriteStream,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { PassThrough } from 'node:stream'
import { CarReader } from '@ipld/car'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { exportCar, HashPool } from '../src/cid/index.ts'
import { Kubo } from './helpers/kubo.ts'

let kubo: Kubo
let dir: string
const files = new Map<string, Buffer>()

function write(rel: string, bytes: Buffer): void {
  mkdirSync(join(dir, rel, '..'), { recursive: true })
  writeFileSync(join(dir, rel), bytes)
  files.set(rel, bytes)
}

async function car(path: string, name: string, opts: { hidden?: boolean; pool?: HashPool } = {}) {
  const out = join(dir, name)
  const root = await exportCar(path, createWriteStream(out), opts)
  return { root: root.toString(), out }
}

beforeAll(async () => {
  kubo = await Kubo.create()
  dir = mkdtempSync(join(tmpdir(), 'cidmirror-cid-car-'))
  write('t/multi-chunk', randomBytes(3 * 1024 * 1024 + 123))
  write('t/small', Buffer.from('small file\n'))
  write('t/empty', Buffer.alloc(0))
  write('t/zeros', Buffer.alloc(2 * 1024 * 1024)) // two identical leaves: written once
  write('t/sub/deeper/é', Buffer.from('non-ascii name\n'))
  write('t/.hidden', Buffer.from('dotfile\n'))
  mkdirSync(join(dir, 't/empty-dir'))
  symlinkSync('sub/deeper', join(dir, 't/link'))
  // A sharded directory: past 256 KiB of links.
  for (let i = 0; i < 5000; i++) write(`t/hamt/file-number-${i}`, Buffer.from(`${i}\n`))
}, 120_000)

afterAll(async () => {
  await kubo?.dispose()
  if (dir) rmSync(dir, { recursive: true, force: true })
})

describe('exportCar', () => {
  it('writes a CAR of a tree that Kubo imports, with the root Kubo computes and the same bytes', async () => {
    const pool = new HashPool({ threads: 2 })
    try {
      for (const hidden of [false, true]) {
        const { root, out } = await car(join(dir, 't'), `t-${hidden}.car`, { hidden, pool })
        expect(root).toBe(await kubo.rootCid(join(dir, 't'), { hidden }))
        const reader = await CarReader.fromBytes(readFileSync(out))
        expect((await reader.getRoots()).map(String)).toEqual([root])
        const imported = await kubo.ok(['dag', 'import', '--stats', out])
        expect(imported).toContain(root)
        for (const [rel, bytes] of files) {
          const inner = rel.slice('t/'.length)
          if (!hidden && inner.startsWith('.')) continue
          if (rel.startsWith('t/hamt/') && !rel.endsWith('-4999') && !rel.endsWith('-7')) continue
          const got = await kubo.cat(`/ipfs/${root}/${inner}`)
          expect(got.equals(bytes), rel).toBe(true)
        }
        const hiddenCat = await kubo.run(['cat', '--offline', `/ipfs/${root}/.hidden`])
        expect(hiddenCat.code === 0).toBe(hidden)
      }
    } finally {
      await pool.destroy()
    }
  })

  it('writes a CAR of a single multi-chunk file whose bytes come back exactly', async () => {
    const { root, out } = await car(join(dir, 't/multi-chunk'), 'file.car')
    expect(root).toBe(await kubo.rootCid(join(dir, 't/multi-chunk')))
    await kubo.ok(['dag', 'import', out])
    const back = join(dir, 'back')
    await kubo.ok(['get', '--offline', '-o', back, root])
    expect(readFileSync(back).equals(files.get('t/multi-chunk')!)).toBe(true)
  })

  it('fails with our error for a missing path', async () => {
    const sink = new PassThrough()
    await expect(exportCar(join(dir, 'nope'), sink)).rejects.toMatchObject({
      code: 'CIDMIRROR_ERR_PATH_NOT_FOUND',
    })
    expect(sink.destroyed).toBe(true)
  })
})
