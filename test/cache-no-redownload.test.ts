/**
 * Promise 4 with a real rsync daemon as the upstream, real sync jobs wired as the daemon wires them
 * (the exclude hook at jobs.ts's pre-exec seam, the index step after success) and a real LevelDB:
 * the next sync does not transfer an evicted file (counted from rsync's `--stats` in the job's log),
 * an upstream change of an evicted file is downloaded, an upstream deletion is recorded as deleted;
 * through all of it the index's root CID is Kubo's CID of the upstream tree. A command provider finds
 * the list's path in its environment.
 */
import { randomBytes } from 'node:crypto'
import { existsSync, mkdirSync, readFileSync, rmSync, unlinkSync, utimesSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createExcludeHook, excludeFileOf } from '../src/daemon/exclude-hook.ts'
import { buildJobSpecs } from '../src/daemon/jobs.ts'
import type { Database } from '../src/db.ts'
import { type MirrorIndex, openMirrorIndex } from '../src/index/index.ts'
import { loadConfig } from '../src/sync/config/index.ts'
import type { Config } from '../src/sync/index.ts'
import { Job } from '../src/sync/job.ts'
import { Semaphore } from '../src/sync/semaphore.ts'
import { kuboRepo } from './helpers/index-kubo.ts'
import { type Rsyncd, startRsyncd } from './helpers/rsyncd.ts'
import { FAST_BACKOFF, openDb, quietLog, tempDir, writeToml } from './jobs-helpers.ts'

const OLD = new Date('2020-01-01T00:00:00Z')
let tmp: ReturnType<typeof tempDir>
let up: Rsyncd
let db: Database
let config: Config
let kubo: ReturnType<typeof kuboRepo>

function upstreamWrite(rel: string, data: string | Uint8Array, mtime?: Date): void {
  const p = join(up.root, rel)
  mkdirSync(join(p, '..'), { recursive: true })
  writeFileSync(p, data)
  if (mtime) utimesSync(p, mtime, mtime)
}

function jobOf(name: string): Job {
  const specs = buildJobSpecs(config, {
    indexMirror: (mirror, root, signal) => openMirrorIndex(db, mirror, root).scan({ signal }),
    preExec: (m) => [createExcludeHook(db, m, excludeFileOf(config.database.path, m.name))],
  })
  return new Job(specs.find((s) => s.name === name)!, {
    semaphore: new Semaphore(1),
    backoff: FAST_BACKOFF,
    log: quietLog(),
    onEvent: () => {},
  })
}

/** Runs one sync of `name`; its log (rsync's output with `--stats`). */
async function sync(name: string): Promise<string> {
  const job = jobOf(name)
  job.start()
  await job.idle()
  return readFileSync(join(tmp.dir, 'log', name, 'latest'), 'utf8')
}

function transferred(log: string): number {
  const m = /Number of regular files transferred: ([\d,]+)/.exec(log)
  if (!m) throw new Error(`no --stats in the log:\n${log}`)
  return Number(m[1]!.replaceAll(',', ''))
}

async function evict(idx: MirrorIndex, path: string): Promise<void> {
  const r = (await idx.get(path))!
  const out = await idx.local.evict([{ path, cid: r.cid, size: r.size, mtimeMs: r.mtimeMs }], async (rec) =>
    unlinkSync(join(idx.root, rec.path)),
  )
  expect(out[0]).toMatchObject({ evicted: true })
}

beforeAll(async () => {
  tmp = tempDir('cidmirror-noredl-')
  up = await startRsyncd()
  kubo = kuboRepo(tmp.dir)
  upstreamWrite('pool/old.deb', randomBytes(200_000), OLD)
  upstreamWrite('pool/old2.deb', randomBytes(50_000), OLD)
  upstreamWrite('pool/odd [x]*.deb', randomBytes(1000), OLD)
  upstreamWrite('pool/new.deb', randomBytes(1000))
  upstreamWrite('dists/Release', 'Suite: stable\n')
  const file = writeToml({
    dir: tmp.dir,
    mirrors: `[[mirrors]]
name = "deb"
provider = "rsync"
upstream = "${up.url}"

[[mirrors]]
name = "cmd"
provider = "command"
# Neither rsync nor http(s): no upstream check (test/cache-upstream-check.test.ts has those).
upstream = "${tmp.dir}/cmd-upstream"
command = ${JSON.stringify('cat "$CIDMIRROR_EXCLUDE_FROM" > ../cmd-saw.list; echo "$CIDMIRROR_EXCLUDE_FROM" > ../cmd-saw.path')}
`,
  })
  config = await loadConfig(file)
  db = await openDb(tmp.dir)
}, 60_000)

afterAll(async () => {
  await db?.close()
  await up?.stop()
  tmp?.cleanup()
})

describe('no re-download of evicted files (promise 4)', () => {
  let idx: MirrorIndex

  it('the next sync from the rsync daemon transfers nothing evicted; the root CID stays the upstream tree’s', async () => {
    expect(transferred(await sync('deb'))).toBe(5)
    idx = openMirrorIndex(db, 'deb', join(tmp.dir, 'mirrors', 'deb'))
    const first = (await idx.lastScan())!
    expect(first.rootCid).toBe(kubo.rootCid(up.root))
    await evict(idx, 'pool/old.deb')
    await evict(idx, 'pool/old2.deb')
    await evict(idx, 'pool/odd [x]*.deb')
    // Something new upstream, so the sync has work: exactly that one file travels.
    upstreamWrite('pool/newer.deb', randomBytes(2000))
    const log = await sync('deb')
    expect(transferred(log)).toBe(1)
    expect(log).toContain('pool/newer.deb')
    expect(log).not.toContain('old.deb')
    for (const p of ['pool/old.deb', 'pool/old2.deb', 'pool/odd [x]*.deb'])
      expect(existsSync(join(idx.root, p))).toBe(false)
    const s = (await idx.lastScan())!
    expect(s).toMatchObject({ evicted: 3, deleted: 0, added: 1 })
    expect(s.rootCid).toBe(kubo.rootCid(up.root))
    const list = readFileSync(excludeFileOf(config.database.path, 'deb'), 'utf8')
    expect(list.split('\n').filter(Boolean).sort()).toEqual([
      '/pool/odd \\[x]\\*.deb',
      '/pool/old.deb',
      '/pool/old2.deb',
    ])
  })

  it('an evicted file changed upstream is downloaded as a change', async () => {
    const before = (await idx.get('pool/old2.deb'))!
    upstreamWrite('pool/old2.deb', randomBytes(50_001), new Date('2021-01-01T00:00:00Z'))
    const log = await sync('deb')
    expect(transferred(log)).toBe(1)
    expect(log).toContain('pool/old2.deb')
    const after = (await idx.get('pool/old2.deb'))!
    expect(after).toMatchObject({ state: 'present', size: 50_001 })
    expect(after.cid).not.toBe(before.cid)
    expect(existsSync(join(idx.root, 'pool/old2.deb'))).toBe(true)
    expect((await idx.lastScan())!).toMatchObject({ evicted: 2, changed: 1, deleted: 0 })
    expect((await idx.lastScan())!.rootCid).toBe(kubo.rootCid(up.root))
  })

  it('an evicted file deleted upstream is recorded deleted by the sync that learns it', async () => {
    rmSync(join(up.root, 'pool/old.deb'))
    const log = await sync('deb')
    expect(transferred(log)).toBe(0)
    expect(await idx.get('pool/old.deb')).toMatchObject({ state: 'deleted' })
    const s = (await idx.lastScan())!
    expect(s).toMatchObject({ evicted: 1, deleted: 1 })
    expect(s.rootCid).toBe(kubo.rootCid(up.root))
    // A further sync changes nothing, and its list no longer names the deleted file.
    expect(transferred(await sync('deb'))).toBe(0)
    expect((await idx.lastScan())!).toMatchObject({ evicted: 1, deleted: 0, rootCid: s.rootCid })
    expect(readFileSync(excludeFileOf(config.database.path, 'deb'), 'utf8')).toBe('/pool/odd \\[x]\\*.deb\n')
  })

  it("a command provider gets the list's path in CIDMIRROR_EXCLUDE_FROM", async () => {
    const root = join(tmp.dir, 'mirrors', 'cmd')
    mkdirSync(join(root, 'pool'), { recursive: true })
    writeFileSync(join(root, 'pool/kept.bin'), 'kept')
    writeFileSync(join(root, 'pool/gone.bin'), 'gone')
    const cmd = openMirrorIndex(db, 'cmd', root)
    await cmd.scan()
    await evict(cmd, 'pool/gone.bin')
    await sync('cmd')
    const path = readFileSync(join(tmp.dir, 'mirrors', 'cmd-saw.path'), 'utf8').trim()
    expect(path).toBe(excludeFileOf(config.database.path, 'cmd'))
    expect(readFileSync(join(tmp.dir, 'mirrors', 'cmd-saw.list'), 'utf8')).toBe('/pool/gone.bin\n')
  })
})
