import { mkdirSync, mkdtempSync, rmSync, utimesSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, beforeEach, expect, it } from 'vitest'
import { type Database, openDatabase } from '../src/db.ts'
import { openIndexReader, openMirrorIndex, type PathRecord } from '../src/index/index.ts'

let work: string
let db: Database

beforeEach(async () => {
  work = mkdtempSync(join(tmpdir(), 'cidmirror-read-commit-'))
  db = await openDatabase(join(work, 'db'))
})
afterEach(async () => {
  await db.close()
  rmSync(work, { recursive: true, force: true })
})

it('a changed path never reads as absent while its scan commits', async () => {
  const root = join(work, 'tree')
  const FILES = 2000
  for (let d = 0; d < 10; d++) {
    mkdirSync(join(root, `d${d}`), { recursive: true })
    for (let f = 0; f < FILES / 10; f++) writeFileSync(join(root, `d${d}`, `f${f}`), `${d}/${f}`)
  }
  const idx = openMirrorIndex(db, 'm', root)
  let t = Date.now()
  const first = await idx.scan()
  console.log('first', Date.now() - t)
  t = Date.now()
  // Every file touched: each changed record goes through the journal, applied at commit.
  const later = new Date(Date.now() + 60_000)
  for (let d = 0; d < 10; d++)
    for (let f = 0; f < FILES / 10; f++) utimesSync(join(root, `d${d}`, `f${f}`), later, later)
  const reader = openIndexReader(db)
  const watched = ['d0/f0', `d4/f${FILES / 20}`, `d9/f${FILES / 10 - 1}`]
  const seen: (PathRecord | undefined)[] = []
  let done = false
  const second = idx.scan().finally(() => {
    done = true
  })
  while (!done) for (const p of watched) seen.push(await reader.record('m', p))
  const s = await second
  console.log(
    'reads',
    seen.length,
    'new before resolve',
    seen.filter((r) => r?.scan === s.id).length,
    'undef',
    seen.filter((r) => !r).length,
  )
  expect(s.touched).toBe(FILES)
  expect(seen.filter((r) => r === undefined)).toHaveLength(0)
  // Each read saw the old record or the new one, never a mix within one record.
  for (const r of seen) expect([first.id, s.id]).toContain(r!.scan)
  // Reads ran while the commit was applied: some saw the new index before the scan resolved.
  expect(seen.some((r) => r!.scan === s.id)).toBe(true)
})
