import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, expect, it } from 'vitest'
import { openDatabase } from '../src/db.ts'
import { openMirrorIndex } from '../src/index/index.ts'
import { decodeRecord, encodeRecord } from '../src/index/records.ts'
import { encodeJournal, MirrorStore, scanKey } from '../src/index/store.ts'

const work = mkdtempSync(join(tmpdir(), 'cidmirror-index-rf-'))
afterAll(() => rmSync(work, { recursive: true, force: true }))

it('a commit killed half-way is finished when the index is next opened', async () => {
  const tree = join(work, 'tree')
  mkdirSync(tree)
  for (let i = 0; i < 10; i++) writeFileSync(join(tree, `f${i}`), `v1 ${i}\n`)
  const dbPath = join(work, 'db')
  let db = await openDatabase(dbPath)
  const first = await openMirrorIndex(db, 'rf', tree).scan()
  for (let i = 0; i < 10; i++) writeFileSync(join(tree, `f${i}`), `version two ${i}\n`)
  const second = await openMirrorIndex(db, 'rf', tree).scan()
  expect(second.changed).toBe(10)
  const committed = await openMirrorIndex(db, 'rf', tree).get('f3')

  // Rewind to the state a kill during commit leaves: marker written, journal partly applied.
  const store = new MirrorStore(db, 'rf')
  await store.ready()
  expect(first.id).toBe(1)
  const f3 = decodeRecord(await store.paths.get('f3'))
  // Stored as the scanner stores them (the sublevels' JSON encoding parses and re-serializes the text).
  await store.journal.put('f3', JSON.parse(encodeJournal(second.id, 'bafkreiold', f3)))
  await store.paths.put('f3', JSON.parse(encodeRecord({ ...f3, cid: 'bafkreiold', scan: 1 })))
  await store.meta.put('commit', { id: second.id, summary: second } as never)
  await store.meta.put('last', 1)
  await store.scans.del(scanKey(second.id))
  await db.close()

  db = await openDatabase(dbPath)
  try {
    const idx = openMirrorIndex(db, 'rf', tree)
    expect(await idx.get('f3')).toEqual(committed)
    expect(await idx.lastScan()).toEqual(second)
    expect(await idx.pathsOf(committed!.cid)).toEqual(['f3'])
    const again = await idx.scan()
    expect(again).toMatchObject({ unchanged: 10, filesHashed: 0, resumed: false })
  } finally {
    await db.close()
  }
})
