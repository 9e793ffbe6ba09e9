/**
 * Promise 6 for the janitor: kill -9 in the middle of an eviction run (a real child process over a
 * real LevelDB, copies recorded by the real replicator from a real Kubo holding the tree); after the
 * restart index and tree agree: every evicted record's file is gone, every present one's is there,
 * the next scan deletes nothing and keeps the root CID. A pass that recorded an eviction and did not
 * unlink is finished by the next pass.
 */
import { type ChildProcess, spawn } from 'node:child_process'
import { existsSync, mkdirSync, unlinkSync, utimesSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import pino from 'pino'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { runJanitor } from '../src/cache/index.ts'
import { type Database, openDatabase } from '../src/db.ts'
import { CopyStore, type MirrorIndex, openMirrorIndex } from '../src/index/index.ts'
import { KuboNode } from '../src/ipfs/index.ts'
import { KuboTarget, Replicator } from '../src/replicator/index.ts'
import { killChild } from './helpers/cli.ts'
import { YEAR_OLD_POLICY } from './helpers/janitor-policy.ts'
import { disposeAll, Kubo } from './helpers/kubo.ts'
import { tempDir } from './jobs-helpers.ts'

const FILES = 6000
const OLD = new Date('2020-01-01T00:00:00Z')
const child = join(import.meta.dirname, 'helpers', 'janitor-child.ts')
let tmp: ReturnType<typeof tempDir>
let kubos: Kubo[]
let tree: string
let dbPath: string
let root: string

beforeAll(async () => {
  tmp = tempDir('cidmirror-janitor-kill-')
  tree = join(tmp.dir, 'm')
  for (let i = 0; i < FILES; i++) {
    const p = join(tree, `d${i % 50}`, `f${i}.bin`)
    mkdirSync(join(p, '..'), { recursive: true })
    writeFileSync(p, `file ${i}\n`)
    utimesSync(p, OLD, OLD)
  }
  kubos = await Kubo.swarm(1)
  root = (await kubos[0]!.ok(['add', '-r', '-Q', '--cid-version=1', tree])).trim()
  dbPath = join(tmp.dir, 'db')
  const db = await openDatabase(dbPath)
  try {
    const s = await openMirrorIndex(db, 'm', tree).scan()
    expect(s.rootCid).toBe(root)
    const node = new KuboNode({ api: kubos[0]!.api })
    const r = new Replicator({
      db,
      counters: [new KuboTarget({ name: 'kubo-b', node })],
      policy: () => ({ n: 1 }),
      recheckMs: 3_600_000,
      log: pino({ level: 'silent' }),
    })
    await r.track({ scope: 'tree', cid: root, mirror: 'm', scan: s.id })
    await r.runOnce()
    expect((await r.queue.get('tree:m'))?.state).toBe('satisfied')
    await r.stop()
    await node.close()
  } finally {
    await db.close()
  }
}, 180_000)

afterAll(async () => {
  await disposeAll(kubos ?? [])
  tmp?.cleanup()
})

/** Every file record agrees with the tree: evicted ones absent, present ones there. */
async function agree(idx: MirrorIndex): Promise<{ evicted: number; present: number }> {
  const out = { evicted: 0, present: 0 }
  for await (const r of idx.records()) {
    if (r.kind !== 'file') continue
    expect(existsSync(join(tree, r.path)), `${r.path} is ${r.state}`).toBe(r.state === 'present')
    out[r.state === 'present' ? 'present' : 'evicted']++
  }
  return out
}

describe('janitor killed with SIGKILL', () => {
  it('mid-run: after the restart index and tree agree, and the next pass finishes the rest', async () => {
    const p: ChildProcess = spawn(process.execPath, [child, dbPath, tree], {
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    let err = ''
    p.stderr!.on('data', (d: Buffer) => {
      err += d.toString()
    })
    // Killed as soon as the first group is evicted: the run has thousands of files to go.
    const firstGroup = new Promise<void>((resolve, reject) => {
      p.stdout!.on('data', (d: Buffer) => {
        if (d.toString().includes('"evicted"')) resolve()
      })
      p.once('exit', (code) =>
        reject(new Error(`the janitor child exited (${code}) before evicting: ${err}`)),
      )
    })
    await firstGroup
    await killChild(p)
    expect(p.signalCode).toBe('SIGKILL')

    const db: Database = await openDatabase(dbPath)
    try {
      const idx = openMirrorIndex(db, 'm', tree)
      // Mid-way indeed: some evicted, some not. A group recorded but not all unlinked is allowed here
      // (the record comes first); the next pass finishes it.
      let evictedRecords = 0
      for await (const r of idx.records()) if (r.state === 'evicted') evictedRecords++
      expect(evictedRecords).toBeGreaterThan(0)
      expect(evictedRecords).toBeLessThan(FILES)

      const report = await runJanitor({
        copies: new CopyStore(db),
        policy: YEAR_OLD_POLICY,
        mirrors: [{ index: idx, copies: { n: 1 } }],
      })
      expect(report.evicted + evictedRecords).toBe(FILES)
      expect(await agree(idx)).toEqual({ evicted: FILES, present: 0 })
      const s = await idx.scan()
      expect(s).toMatchObject({ deleted: 0, evicted: FILES, files: 0, rootCid: root })
    } finally {
      await db.close()
    }
  })

  it('an eviction recorded and not unlinked (killed in between) is finished by the next pass', async () => {
    const db = await openDatabase(join(tmp.dir, 'db2'))
    try {
      const t2 = join(tmp.dir, 'm2')
      mkdirSync(t2, { recursive: true })
      writeFileSync(join(t2, 'a.bin'), 'a')
      writeFileSync(join(t2, 'b.bin'), 'b')
      const idx = openMirrorIndex(db, 'm2', t2)
      await idx.scan()
      const a = (await idx.get('a.bin'))!
      // The record is written; the process "dies" before its unlink.
      const out = await idx.local.evict(
        [{ path: 'a.bin', cid: a.cid, size: a.size, mtimeMs: a.mtimeMs }],
        async () => {
          throw new Error('killed')
        },
      )
      expect(out[0]).toMatchObject({ evicted: false, reason: 'remove-failed' })
      expect((await idx.get('a.bin'))!.state).toBe('evicted')
      expect(existsSync(join(t2, 'a.bin'))).toBe(true)
      // A file fetched back meanwhile (another inode) is not the one to remove: b is that case.
      const b = (await idx.get('b.bin'))!
      await idx.local.evict([{ path: 'b.bin', cid: b.cid, size: b.size, mtimeMs: b.mtimeMs }], async (rec) =>
        unlinkSync(join(t2, rec.path)),
      )
      writeFileSync(join(t2, 'b.bin.tmp'), 'b')
      const { renameSync } = await import('node:fs')
      renameSync(join(t2, 'b.bin.tmp'), join(t2, 'b.bin'))
      const report = await runJanitor({
        copies: new CopyStore(db),
        policy: YEAR_OLD_POLICY,
        mirrors: [{ index: idx, copies: { n: 1 } }],
      })
      expect(report.mirrors[0]).toMatchObject({ finished: 1 })
      expect(existsSync(join(t2, 'a.bin'))).toBe(false)
      expect(existsSync(join(t2, 'b.bin'))).toBe(true)
    } finally {
      await db.close()
    }
  })
})
