import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { type Database, openDatabase } from '../src/db.ts'
import {
  onScanCommitted,
  openMirrorIndex,
  ScanInProgressError,
  type ScanSummary,
} from '../src/index/index.ts'

let work: string
let db: Database

beforeEach(async () => {
  work = mkdtempSync(join(tmpdir(), 'cidmirror-index-open-'))
  db = await openDatabase(join(work, 'db'))
})
afterEach(async () => {
  await db.close()
  rmSync(work, { recursive: true, force: true })
})

function tree(name: string, files: Record<string, string>): string {
  const root = join(work, name)
  mkdirSync(root, { recursive: true })
  for (const [f, text] of Object.entries(files)) writeFileSync(join(root, f), text)
  return root
}

describe('openMirrorIndex: one mirror, one state per process', () => {
  it('scans of one mirror never overlap, even when its root changes between two opens', async () => {
    const a = tree('a', { 'x.txt': 'x' })
    const b = tree('b', { 'y.txt': 'y' })
    const first = openMirrorIndex(db, 'm', a).scan()
    // The root moved (a config reload): the second open must not get a lock of its own.
    await expect(openMirrorIndex(db, 'm', b).scan()).rejects.toBeInstanceOf(ScanInProgressError)
    await first
    // Once the first has committed, the new root scans.
    const second = await openMirrorIndex(db, 'm', b).scan()
    expect(second).toMatchObject({ root: b, added: 1, deleted: 1 })
  })

  it('a commit made through one open is seen through an open made before it', async () => {
    const a = tree('a', { 'x.txt': 'x' })
    const b = tree('b', { 'y.txt': 'y' })
    const early = openMirrorIndex(db, 'm', a)
    const one = await early.scan()
    const two = await openMirrorIndex(db, 'm', b).scan()
    expect(two.id).toBeGreaterThan(one.id)
    expect((await early.lastScan())?.id).toBe(two.id)
    expect(await early.get('y.txt')).toMatchObject({ state: 'present', scan: two.id })
    expect(await early.get('x.txt')).toMatchObject({ state: 'deleted' })
  })

  it('tells subscribers of each commit, after readers can see it; a throwing one fails nothing', async () => {
    const a = tree('a', { 'x.txt': 'x' })
    const seen: { summary: ScanSummary; last: number | undefined }[] = []
    const errors: unknown[] = []
    const idx = openMirrorIndex(db, 'm', a)
    const off = onScanCommitted(db, (summary) => {
      // Readers already see this scan: the listener may read the index it announces.
      idx.lastScan().then((s) => seen.push({ summary, last: s?.id }))
    })
    const offBad = onScanCommitted(
      db,
      () => {
        throw new Error('listener bug')
      },
      { onError: (err) => errors.push(err) },
    )
    const s1 = await idx.scan()
    writeFileSync(join(a, 'z.txt'), 'z')
    const s2 = await idx.scan()
    off()
    offBad()
    await idx.scan()
    await new Promise((r) => setImmediate(r))
    expect(seen.map((e) => e.summary.id)).toEqual([s1.id, s2.id])
    expect(seen.map((e) => e.last)).toEqual([s1.id, s2.id])
    expect(seen[1]?.summary).toEqual(s2)
    expect(errors.map((e) => (e as Error).message)).toEqual(['listener bug', 'listener bug'])
  })
})
