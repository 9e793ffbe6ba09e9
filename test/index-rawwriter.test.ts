import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, expect, it } from 'vitest'
import { openDatabase } from '../src/db.ts'
import { MirrorStore, RawWriter } from '../src/index/store.ts'

const work = mkdtempSync(join(tmpdir(), 'cidmirror-index-rw-'))
afterAll(() => rmSync(work, { recursive: true, force: true }))

async function exercise(db: Awaited<ReturnType<typeof openDatabase>>, prefix: string): Promise<string[]> {
  const w = new RawWriter(db)
  // Several batches, one in flight while the next fills, so that both native batches are reused.
  for (let round = 0; round < 5; round++) {
    for (let i = 0; i < 100; i++) w.put(`${prefix}k${round}-${String(i).padStart(3, '0')}`, `[${round},${i}]`)
    if (round > 0) w.del(`${prefix}k${round - 1}-000`)
    expect(w.length).toBe(round > 0 ? 101 : 100)
    await w.send()
    expect(w.length).toBe(0)
  }
  await w.flush()
  const out: string[] = []
  for await (const [k, v] of db.iterator<string, string>({
    gte: prefix,
    lt: `${prefix}\xff`,
    keyEncoding: 'utf8',
    valueEncoding: 'utf8',
  }))
    out.push(`${k}=${v}`)
  return out
}

it('writes puts and deletes in order over reused batches, natively and through batch()', async () => {
  const db = await openDatabase(join(work, 'db'))
  const native = await exercise(db, 'n!')
  expect(native).toHaveLength(496)
  expect(native).not.toContain('n!k0-000=[0,0]')
  expect(native).toContain('n!k4-000=[4,0]')
  expect(native).toContain('n!k2-099=[2,99]')
  // A `write` listener makes the writer take the public batch() path, which emits it.
  let events = 0
  const listener = (): void => {
    events++
  }
  db.on('write', listener)
  const viaBatch = await exercise(db, 'b!')
  db.off('write', listener)
  expect(events).toBe(5)
  expect(viaBatch.map((e) => e.slice(2))).toEqual(native.map((e) => e.slice(2)))
  await db.close()
})

it('runs natively on the database cidmirror opens (classic-level private API still there)', async () => {
  const db = await openDatabase(join(work, 'db3'))
  try {
    // The scan's writer, on a mirror's store, as runScan gets it.
    expect(new MirrorStore(db, 'm').rawWriter().native).toBe(true)
    db.on('write', () => {})
    expect(new RawWriter(db).native).toBe(false)
  } finally {
    await db.close()
  }
})

it('a send on a closed database fails instead of writing', async () => {
  const db = await openDatabase(join(work, 'db2'))
  const w = new RawWriter(db)
  w.put('x', '1')
  await db.close()
  await expect(w.send()).rejects.toThrow()
})
