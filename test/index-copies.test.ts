import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type Database, openDatabase } from '../src/db.ts'
import { type CopyRecord, CopyStore, countCopies } from '../src/index/copies.ts'

let work: string
let db: Database

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), 'cidmirror-copies-'))
  db = await openDatabase(join(work, 'db'))
})
afterAll(async () => {
  await db?.close()
  rmSync(work, { recursive: true, force: true })
})

const NOW = Date.parse('2026-12-01T00:00:00Z')
const HOUR = 3_600_000

function copy(over: Partial<CopyRecord>): CopyRecord {
  return {
    cid: 'bafkfile',
    holder: 'kubo:A',
    kind: 'ipfs-node',
    how: 'pinned',
    status: 'verified',
    scope: 'entity',
    local: false,
    checkedAt: NOW - HOUR,
    since: NOW - 10 * HOUR,
    ...over,
  }
}

describe('countCopies (promise 1: n verified copies off this disk)', () => {
  it('counts each holder once, by its best record', () => {
    const c = countCopies([copy({}), copy({ scope: 'tree', cid: 'bafyroot' }), copy({ holder: 'kubo:B' })], {
      now: NOW,
    })
    expect(c.verified).toBe(2)
    expect(c.byKind['ipfs-node']).toBe(2)
  })
  it('never counts a holder on this disk', () => {
    const c = countCopies([copy({ local: true }), copy({ holder: 'kubo:B' })], { now: NOW })
    expect(c).toMatchObject({ verified: 1, local: 1 })
  })
  it('an announced copy is not verified', () => {
    const c = countCopies([copy({ status: 'announced', kind: 'ipfs-provider', how: 'provider-record' })], {
      now: NOW,
    })
    expect(c).toMatchObject({ verified: 0, announced: 1 })
  })
  it('a verified copy checked before the freshness window does not count', () => {
    const c = countCopies([copy({ checkedAt: NOW - 30 * HOUR }), copy({ holder: 'kubo:B' })], {
      now: NOW,
      freshMs: 24 * HOUR,
    })
    expect(c).toMatchObject({ verified: 1, announced: 1 })
    expect(c.oldestCheck).toBe(NOW - HOUR)
  })
  it('lost and pending copies do not count', () => {
    const c = countCopies([copy({ status: 'lost' }), copy({ holder: 'kubo:B', status: 'pending' })], {
      now: NOW,
    })
    expect(c).toMatchObject({ verified: 0, announced: 0 })
  })
})

describe('CopyStore', () => {
  it('keeps entity copies per CID and tree copies per mirror', async () => {
    const s = new CopyStore(db)
    await s.put(copy({ cid: 'bafkone', holder: 'kubo:A' }))
    await s.put(copy({ cid: 'bafkone', holder: 'kubo:B' }))
    await s.put(copy({ cid: 'bafkonex', holder: 'kubo:C' }))
    expect((await s.of('bafkone')).map((c) => c.holder)).toEqual(['kubo:A', 'kubo:B'])
    await s.put(copy({ cid: 'bafyroot5', holder: 'kubo:T', scope: 'tree', mirror: 'debian', scan: 5 }))
    await s.put(copy({ cid: 'bafyroot5', holder: 'kubo:T2', scope: 'tree', mirror: 'debianx', scan: 5 }))
    expect((await s.trees('debian')).map((c) => c.holder)).toEqual(['kubo:T'])
    await expect(s.put(copy({ scope: 'tree' }))).rejects.toThrow(/mirror and scan/)
  })

  it('a tree copy of scan k covers a path whose record was written at or before k, not after', async () => {
    const s = new CopyStore(db)
    const covered = await s.ofPath('debian', 'bafkone', 5)
    expect(covered.map((c) => c.holder).sort()).toEqual(['kubo:A', 'kubo:B', 'kubo:T'])
    const newer = await s.ofPath('debian', 'bafkone', 6)
    expect(newer.map((c) => c.holder).sort()).toEqual(['kubo:A', 'kubo:B'])
  })

  it('removes a copy', async () => {
    const s = new CopyStore(db)
    await s.remove({ cid: 'bafkone', holder: 'kubo:A', scope: 'entity' })
    await s.remove({ cid: 'bafyroot5', holder: 'kubo:T', scope: 'tree', mirror: 'debian' })
    expect((await s.of('bafkone')).map((c) => c.holder)).toEqual(['kubo:B'])
    expect(await s.trees('debian')).toEqual([])
  })
})
