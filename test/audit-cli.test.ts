/**
 * `cidmirror audit` offline: its text and NDJSON, exit codes, filters and progress. The copies are
 * written with CopyStore directly (the test is about the CLI's reading and formatting, not about how
 * copies are found; test/audit-daemon.test.ts records them with a real Kubo target). The database,
 * the index and the CLI process are real.
 */
import { execFile } from 'node:child_process'
import { mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { openDatabase } from '../src/db.ts'
import { type CopyRecord, CopyStore, openMirrorIndex } from '../src/index/index.ts'
import { tempDir } from './jobs-helpers.ts'

const MAIN = fileURLToPath(new URL('../src/cli/main.ts', import.meta.url))
const run = promisify(execFile)

async function cli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, [MAIN, ...args], {
      env: { ...process.env, CIDMIRROR_TOKEN: '', CIDMIRROR_DB: '', CIDMIRROR_CONFIG: '' },
    })
    return { code: 0, stdout, stderr }
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string }
    return { code: e.code, stdout: e.stdout, stderr: e.stderr }
  }
}

function ndjson(text: string): Record<string, unknown>[] {
  return text
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as Record<string, unknown>)
}

const CHECKED = Date.parse('2026-12-01T10:00:00Z')

let tmp: ReturnType<typeof tempDir>
let tree: string
let db: string
const cids: Record<string, string> = {}

beforeAll(async () => {
  tmp = tempDir('cidmirror-audit-cli-')
  tree = join(tmp.dir, 'deb')
  db = join(tmp.dir, 'db')
  mkdirSync(join(tree, 'pool'), { recursive: true })
  writeFileSync(join(tree, 'pool', 'a.deb'), 'hello')
  writeFileSync(join(tree, 'pool', 'b.deb'), 'goodbye')
  writeFileSync(join(tree, 'top.txt'), 'x')
  const indexed = await cli(['index', tree, '--db', db, '--name', 'deb', '--progress', 'none'])
  expect(indexed.code).toBe(0)
  const d = await openDatabase(db)
  try {
    const idx = openMirrorIndex(d, 'deb', tree)
    for (const p of ['pool/a.deb', 'pool/b.deb', 'top.txt']) cids[p] = (await idx.get(p))!.cid
    const copies = new CopyStore(d)
    const copy = (cid: string, holder: string, over: Partial<CopyRecord> = {}): CopyRecord => ({
      cid,
      holder,
      kind: 'ipfs-node',
      how: 'pinned',
      status: 'verified',
      scope: 'entity',
      local: false,
      checkedAt: CHECKED,
      since: CHECKED,
      ...over,
    })
    // a.deb: two verified holders off this disk and the local node (listed, never counted).
    await copies.put(copy(cids['pool/a.deb']!, 'kubo:PeerA', { target: 'node-a' }))
    await copies.put(copy(cids['pool/a.deb']!, 'kubo:PeerB', { checkedAt: CHECKED - 3_600_000 }))
    await copies.put(copy(cids['pool/a.deb']!, 'kubo:Local', { local: true }))
    // b.deb: one verified, one only announced (a provider record).
    await copies.put(copy(cids['pool/b.deb']!, 'kubo:PeerA'))
    await copies.put(
      copy(cids['pool/b.deb']!, 'peer:PeerC', {
        kind: 'ipfs-provider',
        how: 'provider-record',
        status: 'announced',
      }),
    )
    // top.txt: no copy at all.
  } finally {
    await d.close()
  }
}, 60_000)

afterAll(() => tmp.cleanup())

describe('cidmirror audit (offline)', () => {
  it('prints a table per file, a summary per mirror and the totals; exit 1 when a file is below n', async () => {
    const r = await cli(['audit', '--db', db])
    expect(r.code).toBe(1)
    // Off a terminal there is no progress bar, and nothing else on stderr.
    expect(r.stderr).toBe('')
    const lines = r.stdout.split('\n')
    expect(lines[0]).toMatch(/^VERDICT +COPIES +STATE +LAST CHECK +PATH +CID$/)
    expect(r.stdout).toMatch(/^ok +2v 0a 1l +present +2026-12-01T09:00:00Z +deb\/pool\/a\.deb +bafk/m)
    expect(r.stdout).toMatch(/^ +kubo:Local +ipfs-node\/pinned +verified, local: not counted/m)
    expect(r.stdout).toMatch(/^ok +1v 1a +present .*deb\/pool\/b\.deb/m)
    expect(r.stdout).toMatch(/^ +peer:PeerC +ipfs-provider\/provider-record +announced/m)
    expect(r.stdout).toMatch(/^UNDER +0v 0a +present +- +deb\/top\.txt/m)
    expect(r.stdout).toContain('    short: 0 of 1 verified copies')
    expect(r.stdout).toContain('mirror deb: n = 1 (the default: the config sets no [replication] n)')
    expect(r.stdout).toContain('  files         3 (13B): 3 present, 0 evicted; 0 deleted')
    expect(r.stdout).toContain('  meet n        2; under 1 (1B under-replicated)')
    expect(r.stdout).toContain('  by verified   0: 1, 1: 1, 2: 1')
    expect(r.stdout).toContain('  oldest check  2026-12-01T09:00:00Z')
    expect(r.stdout).toContain('  queue         not tracked by a replicator')
    expect(r.stdout).toContain('total: 1 mirror, 3 files, 2 meet n, 1 under (1B)')
  }, 60_000)

  it('--json: NDJSON, a header, the files, the mirror, the totals; -n decides the verdict and the exit', async () => {
    const r = await cli(['audit', '--db', db, '--json', '-n', '2'])
    expect(r.code).toBe(1)
    const out = ndjson(r.stdout)
    expect(out.map((l) => l.type)).toEqual(['audit', 'file', 'file', 'file', 'mirror', 'totals'])
    expect(out[0]).toEqual({ type: 'audit', schema: 'cidmirror.audit/1', filter: {} })
    expect(out[1]).toMatchObject({
      mirror: 'deb',
      path: 'pool/a.deb',
      cid: cids['pool/a.deb'],
      size: 5,
      state: 'present',
      verified: 2,
      announced: 0,
      local: 1,
      verdict: 'ok',
      oldestCheck: '2026-12-01T09:00:00.000Z',
    })
    expect((out[1]!.copies as unknown[]).length).toBe(3)
    expect(out[2]).toMatchObject({
      path: 'pool/b.deb',
      verified: 1,
      announced: 1,
      verdict: 'under',
      shortfall: '1 of 2 verified copies',
    })
    expect(out[4]).toMatchObject({
      type: 'mirror',
      mirror: 'deb',
      n: 2,
      nFrom: 'flag',
      ok: 1,
      under: 2,
      bytesUnder: 8,
      byVerified: { '0': 1, '1': 1, '2': 1 },
      states: { present: 3, evicted: 0, deleted: 0 },
    })
    expect(out[5]).toEqual({
      type: 'totals',
      mirrors: 1,
      files: 3,
      ok: 1,
      under: 2,
      bytesUnder: 8,
      listed: 3,
      listedUnder: 2,
      verdict: 'under',
    })
    const zero = await cli(['audit', '--db', db, '-n', '0'])
    expect(zero.code).toBe(0)
    expect(zero.stdout).toContain('all listed files meet n')
  }, 60_000)

  it('filters by path (a directory or a file), by CID, and by --under', async () => {
    // One process at a time opens the database: one after the other.
    const dir = await cli(['audit', join(tree, 'pool'), '--db', db, '--json'])
    const file = await cli(['audit', join(tree, 'top.txt'), '--db', db, '--json'])
    const byCid = await cli(['audit', cids['pool/b.deb']!, '--db', db, '--json'])
    const under = await cli(['audit', '--db', db, '--json', '--under', '2'])
    const rel = await cli(['audit', 'pool/a.deb', '--mirror', 'deb', '--db', db, '--json'])
    const paths = (r: { stdout: string }) =>
      ndjson(r.stdout)
        .filter((l) => l.type === 'file')
        .map((l) => l.path)
    expect(paths(dir)).toEqual(['pool/a.deb', 'pool/b.deb'])
    // Exit is judged on the listed files: both under pool/ meet n = 1.
    expect(dir.code).toBe(0)
    expect(ndjson(dir.stdout)[0]).toMatchObject({ filter: { mirror: 'deb', path: 'pool' } })
    expect(paths(file)).toEqual(['top.txt'])
    expect(file.code).toBe(1)
    expect(paths(byCid)).toEqual(['pool/b.deb'])
    expect(byCid.code).toBe(0)
    expect(paths(under)).toEqual(['pool/b.deb', 'top.txt'])
    expect(paths(rel)).toEqual(['pool/a.deb'])
    // The mirror summary counts the whole mirror whatever the filter.
    for (const r of [dir, file, byCid, under])
      expect(ndjson(r.stdout).at(-2)).toMatchObject({ type: 'mirror', ok: 2, under: 1 })
  }, 60_000)

  it('draws a progress bar with --progress bar, on stderr only', async () => {
    const r = await cli(['audit', '--db', db, '--json', '--progress', 'bar'])
    expect(r.stderr).toContain('auditing deb [')
    expect(ndjson(r.stdout).map((l) => l.type)).toEqual(['audit', 'file', 'file', 'file', 'mirror', 'totals'])
  }, 60_000)

  it('exits 2 with one line for a mistake', async () => {
    const rs = []
    for (const args of [
      ['-n', 'two'],
      ['--under', '-1'],
      ['--mirror', 'nope'],
      ['--mirror', 'a/b'],
      [join(tmp.dir, 'elsewhere')],
      ['--verify'],
    ])
      rs.push(await cli(['audit', '--db', db, ...args]))
    for (const r of rs) {
      expect(r.code).toBe(2)
      expect(r.stdout).toBe('')
      expect(r.stderr.trim().split('\n')).toHaveLength(1)
      expect(r.stderr).toMatch(/^cidmirror: /)
    }
    expect(rs[0]!.stderr).toContain('-n: expected a whole number')
    expect(rs[2]!.stderr).toContain('nope')
    expect(rs[4]!.stderr).toContain('any indexed mirror')
    expect(rs[5]!.stderr).toContain('audit --verify needs the running daemon')
  }, 60_000)
})
