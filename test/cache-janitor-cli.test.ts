/**
 * `cidmirror janitor` from the command line over a real LevelDB and a real Kubo: B holds the mirror's
 * tree (its own `ipfs add -r`, pinned), the real replicator recorded that copy in the index; the
 * command's dry run says per file why it is or is not eligible (text and NDJSON), the real pass
 * evicts and the listing entry stays; `audit` shows the local state; user errors exit 2 in one line.
 */
import { randomBytes } from 'node:crypto'
import { existsSync, mkdirSync, utimesSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import pino from 'pino'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { openDatabase } from '../src/db.ts'
import { openMirrorIndex } from '../src/index/index.ts'
import { KuboNode } from '../src/ipfs/index.ts'
import { KuboTarget, Replicator } from '../src/replicator/index.ts'
import { runCli, STACK_LINE } from './helpers/cli.ts'
import { disposeAll, Kubo } from './helpers/kubo.ts'
import { tempDir, writeToml } from './jobs-helpers.ts'

const OLD = new Date('2020-01-01T00:00:00Z')
let tmp: ReturnType<typeof tempDir>
let kubos: Kubo[]
let config: string
let tree: string

function write(rel: string, data: string | Uint8Array, mtime?: Date): void {
  const p = join(tree, rel)
  mkdirSync(join(p, '..'), { recursive: true })
  writeFileSync(p, data)
  if (mtime) utimesSync(p, mtime, mtime)
}

beforeAll(async () => {
  tmp = tempDir('cidmirror-janitor-cli-')
  tree = join(tmp.dir, 'mirrors', 'deb')
  write('pool/old.deb', randomBytes(40_000), OLD)
  write('pool/new.deb', randomBytes(1000))
  write('dists/stable/InRelease', 'signed\n', OLD)
  config = writeToml({
    dir: tmp.dir,
    mirrors: `[[mirrors]]
name = "deb"
provider = "rsync"
upstream = "rsync://127.0.0.1:1/deb/"

[replication]
n = 1
fresh = "24h"

[cache]
evict_after = "2y"
copies_fresh = "24h"
`,
  })
  kubos = await Kubo.swarm(1)
  const b = kubos[0]!
  // B holds the tree itself (same CIDs: Kubo's unixfs-v1-2025 profile), pinned by its add.
  const root = (await b.ok(['add', '-r', '-Q', '--cid-version=1', tree])).trim()
  const db = await openDatabase(join(tmp.dir, 'db'))
  try {
    const idx = openMirrorIndex(db, 'deb', tree)
    const s = await idx.scan()
    expect(s.rootCid).toBe(root)
    const node = new KuboNode({ api: b.api })
    const r = new Replicator({
      db,
      counters: [new KuboTarget({ name: 'kubo-b', node })],
      policy: () => ({ n: 1 }),
      recheckMs: 3_600_000,
      log: pino({ level: 'silent' }),
    })
    await r.track({ scope: 'tree', cid: root, mirror: 'deb', scan: s.id })
    await r.runOnce()
    expect((await r.queue.get('tree:deb'))?.state).toBe('satisfied')
    await r.stop()
    await node.close()
  } finally {
    await db.close()
  }
}, 120_000)

afterAll(async () => {
  await disposeAll(kubos ?? [])
  tmp?.cleanup()
})

describe('cidmirror janitor', () => {
  it('--dry-run says per file why it is or is not eligible, and evicts nothing', async () => {
    const r = await runCli(['janitor', '-c', config, '--dry-run'])
    expect(r.stderr).toBe('')
    expect(r.code).toBe(0)
    const lines = r.stdout.split('\n')
    expect(lines).toContainEqual(
      expect.stringMatching(/^evict {4}deb\/pool\/old\.deb {2}39\.1KiB {2}1 verified copies$/),
    )
    expect(lines).toContainEqual(
      expect.stringMatching(/^keep {5}deb\/dists\/stable\/InRelease .* index file \(keep "InRelease"\)$/),
    )
    expect(lines).toContainEqual(
      expect.stringMatching(/^keep {5}deb\/pool\/new\.deb .* younger than 2y \(mtime \d+[smh] ago\)$/),
    )
    expect(lines).toContain('dry run: would free 39.1KiB (1 files)')
    expect(existsSync(join(tree, 'pool/old.deb'))).toBe(true)
  })

  it('--json gives one object per file, then the report', async () => {
    const r = await runCli(['janitor', '-c', config, '--dry-run', '--json', '--mirror', 'deb'])
    expect(r.code).toBe(0)
    const lines = r.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l))
    expect(lines.filter((l) => l.type === 'file')).toHaveLength(3)
    expect(lines.find((l) => l.path === 'pool/old.deb')).toMatchObject({
      type: 'file',
      mirror: 'deb',
      eligible: true,
      evicted: false,
      verified: 1,
      reasons: [],
      size: 40_000,
      mtime: OLD.toISOString(),
    })
    expect(lines.at(-1)).toMatchObject({
      type: 'report',
      dryRun: true,
      eligible: 1,
      bytesEligible: 40_000,
      evicted: 0,
    })
  })

  it('evicts: the file leaves the disk, its listing entry stays, audit shows it evicted', async () => {
    const stat = async () => {
      const s = await runCli(['stat', '-c', config, '--json', join(tree, 'pool/old.deb')])
      expect(s.stderr).toBe('')
      return JSON.parse(s.stdout)
    }
    const before = await stat()
    expect(before.state).toBe('present')
    const r = await runCli(['janitor', '-c', config])
    expect(r.code).toBe(0)
    expect(r.stdout).toMatch(/^evicted {2}deb\/pool\/old\.deb {2}39\.1KiB/m)
    expect(r.stdout).toContain('freed 39.1KiB (1 files)')
    expect(existsSync(join(tree, 'pool/old.deb'))).toBe(false)
    // The listing entry: same CID, size, mtime; only its state says where the bytes are.
    expect(await stat()).toEqual({ ...before, state: 'evicted' })
    const audit = await runCli(['audit', '-c', config, '--json', '--mirror', 'deb'])
    const file = audit.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l))
      .find((l) => l.path === 'pool/old.deb')
    expect(file).toMatchObject({ state: 'evicted', evictedAt: expect.any(String), verified: 1 })
  })

  it('user errors: one line, exit 2', async () => {
    mkdirSync(join(tmp.dir, 'none'))
    const none = writeToml({ dir: join(tmp.dir, 'none'), mirrors: '' })
    for (const [args, text] of [
      [['janitor', '-c', none], /no \[cache\] section/],
      [
        ['janitor', '-c', config, '--mirror', 'nope'],
        /--mirror nope: not a mirror the janitor looks after \(deb\)/,
      ],
    ] as const) {
      const r = await runCli([...args])
      expect(r.code).toBe(2)
      expect(r.stderr).toMatch(text)
      expect(r.stderr.trim().split('\n')).toHaveLength(1)
      expect(r.stderr).not.toMatch(STACK_LINE)
    }
  })
})
