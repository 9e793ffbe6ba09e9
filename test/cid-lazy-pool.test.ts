import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { cidOfTree, HashPool } from '../src/cid/index.ts'

let work: string

beforeAll(() => {
  work = mkdtempSync(join(tmpdir(), 'cidmirror-lazy-pool-'))
  const small = join(work, 'small')
  mkdirSync(join(small, 'a'), { recursive: true })
  for (let i = 0; i < 1500; i++) writeFileSync(join(small, 'a', `f${i}`), `file ${i}\n`)
  writeFileSync(join(small, 'b.bin'), Buffer.alloc(3 * 1024 * 1024 + 5, 9))
  mkdirSync(join(work, 'tiny'))
  writeFileSync(join(work, 'tiny', 'x'), 'x')
})
afterAll(() => rmSync(work, { recursive: true, force: true }))

describe('cidOfTree with a pool factory', () => {
  it('starts the pool part-way through a big tree and gets the same CIDs as without one', async () => {
    const inThread = new Map<string, string>()
    const expected = await cidOfTree(join(work, 'small'), {
      hidden: true,
      onEntry: (rel, _k, n) => inThread.set(rel, n.cid.toString()),
    })
    let made = 0
    let pool: HashPool | undefined
    const pooled = new Map<string, string>()
    try {
      const root = await cidOfTree(join(work, 'small'), {
        hidden: true,
        pool: () => {
          made++
          pool ??= new HashPool()
          return pool
        },
        onEntry: (rel, _k, n) => pooled.set(rel, n.cid.toString()),
      })
      expect(root.cid.toString()).toBe(expected.cid.toString())
      expect(root.tsize).toBe(expected.tsize)
      expect(pooled).toEqual(inThread)
      expect(made).toBeGreaterThan(0)
    } finally {
      await pool?.destroy()
    }
  })

  it('never starts the pool for a small tree', async () => {
    let made = 0
    const root = await cidOfTree(join(work, 'tiny'), {
      hidden: false,
      pool: () => {
        made++
        return new HashPool()
      },
    })
    expect(root.cid.toString()).toMatch(/^bafy/)
    expect(made).toBe(0)
  })
})
