/**
 * `npm run bench`: builds the trees once (cached under bench/out), then prints each cidmirror
 * figure beside its peer's from the same run, as a ratio. Warm page cache throughout.
 *
 *   BENCH_DIR=/path       where the trees live (default bench/out)
 *   BENCH_SCALE=0.1       shrink every tree (a quick look; the figures need 1)
 *   BENCH_ONLY=index,rescan,rss   run a subset
 */
import { spawnSync } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { treeBytes, warmCache } from './lib/fs.ts'
import { initKuboRepo } from './lib/kubo.ts'
import { printTable, type Row } from './lib/report.ts'
import { ensureBigTree, ensureMillionTree } from './lib/trees.ts'

const root = resolve(process.env.BENCH_DIR ?? join(import.meta.dirname, 'out'))
const scale = Number(process.env.BENCH_SCALE ?? '1')
const only = new Set((process.env.BENCH_ONLY ?? 'index,rescan,rss').split(','))
// The built CLI, as users run it (`npm run bench` builds first).
const cli = join(import.meta.dirname, '..', 'dist', 'cli', 'main.js')
const rssHook = join(import.meta.dirname, 'lib', 'report-rss.ts')
const rows: Row[] = []

function timed(cmd: string, args: string[], env: NodeJS.ProcessEnv = process.env): number {
  const start = process.hrtime.bigint()
  const r = spawnSync(cmd, args, { stdio: ['ignore', 'ignore', 'pipe'], env, maxBuffer: 1 << 26 })
  const seconds = Number(process.hrtime.bigint() - start) / 1e9
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} exited ${r.status}: ${r.stderr?.toString()}`)
  return seconds
}

/** Runs the cidmirror CLI, returning seconds and the peak RSS (MiB) the process reports at exit. */
function cidmirror(args: string[]): { seconds: number; rssMiB: number } {
  const start = process.hrtime.bigint()
  const r = spawnSync(process.execPath, ['--import', rssHook, cli, ...args], {
    stdio: ['ignore', 'ignore', 'pipe'],
    maxBuffer: 1 << 26,
  })
  const seconds = Number(process.hrtime.bigint() - start) / 1e9
  const stderr = r.stderr.toString()
  if (r.status !== 0) throw new Error(`cidmirror ${args.join(' ')} exited ${r.status}: ${stderr}`)
  const m = /peak-rss-kib=(\d+)/.exec(stderr)
  return { seconds, rssMiB: m ? Number(m[1]) / 1024 : Number.NaN }
}

const big = ensureBigTree(join(root, 'tree-2g'), scale)
const bytes = treeBytes(big)
warmCache(big)
const gb = bytes / 1e9
process.stderr.write(`bench: ${big} holds ${(bytes / 2 ** 30).toFixed(2)} GiB\n`)

if (only.has('index')) {
  const openssl = timed('sh', [
    '-c',
    `find "${big}" -type f -print0 | xargs -0 openssl dgst -sha256 >/dev/null`,
  ])
  const repo = initKuboRepo()
  const kubo = timed('ipfs', ['add', '-r', '-H', '-Q', '--only-hash', '--offline', big], {
    ...process.env,
    IPFS_PATH: repo,
  })
  rmSync(repo, { recursive: true, force: true })
  const db = mkdtempSync(join(tmpdir(), 'cidmirror-bench-db-'))
  const ours = cidmirror(['index', big, '--db', db])
  rmSync(db, { recursive: true, force: true })
  rows.push({
    figure: 'cold index throughput',
    ours: `${(gb / ours.seconds).toFixed(2)} GB/s (${ours.seconds.toFixed(2)} s)`,
    peer: `openssl dgst -sha256, 1 core: ${(gb / openssl).toFixed(2)} GB/s (${openssl.toFixed(2)} s)`,
    ratio: openssl / ours.seconds,
    goal: '>= 1.5',
  })
  rows.push({
    figure: 'cold index throughput',
    ours: `${(gb / ours.seconds).toFixed(2)} GB/s`,
    peer: `ipfs add -r --only-hash: ${(gb / kubo).toFixed(2)} GB/s (${kubo.toFixed(2)} s)`,
    ratio: kubo / ours.seconds,
    goal: '> 1',
  })
}

if (only.has('index')) {
  // The same figure on the large files alone (1 KiB to 256 MiB, no 200,000 small files): there
  // hashing, not one open/read/close per small file, sets the pace.
  const large = join(big, 'large')
  const largeGb = treeBytes(large) / 1e9
  const openssl = timed('sh', [
    '-c',
    `find "${large}" -type f -print0 | xargs -0 openssl dgst -sha256 >/dev/null`,
  ])
  const db = mkdtempSync(join(tmpdir(), 'cidmirror-bench-db-'))
  const ours = cidmirror(['index', large, '--db', db])
  rmSync(db, { recursive: true, force: true })
  rows.push({
    figure: 'cold index, large files only',
    ours: `${(largeGb / ours.seconds).toFixed(2)} GB/s (${ours.seconds.toFixed(2)} s)`,
    peer: `openssl dgst -sha256, 1 core: ${(largeGb / openssl).toFixed(2)} GB/s (${openssl.toFixed(2)} s)`,
    ratio: openssl / ours.seconds,
    goal: '>= 1.5',
  })
}

if (only.has('rescan')) {
  const db = mkdtempSync(join(tmpdir(), 'cidmirror-bench-db-'))
  cidmirror(['index', big, '--db', db])
  const ours = Math.min(...[0, 1, 2].map(() => cidmirror(['index', big, '--db', db]).seconds))
  const find = Math.min(
    ...[0, 1, 2].map(() => timed('sh', ['-c', `find "${big}" -printf '%s %T@\\n' >/dev/null`])),
  )
  rmSync(db, { recursive: true, force: true })
  rows.push({
    figure: 'unchanged rescan (best of 3)',
    ours: `${ours.toFixed(2)} s`,
    peer: `find -printf '%s %T@': ${find.toFixed(2)} s`,
    ratio: find / ours,
    goal: '>= 0.67 (<= 1.5x find)',
  })
}

if (only.has('rss')) {
  const million = ensureMillionTree(join(root, 'tree-1m'), scale)
  const db = mkdtempSync(join(tmpdir(), 'cidmirror-bench-db-'))
  const ours = cidmirror(['index', million.dir, '--db', db])
  rmSync(db, { recursive: true, force: true })
  rows.push({
    figure: `peak RSS indexing ${million.files.toLocaleString('en')} files`,
    ours: `${ours.rssMiB.toFixed(0)} MiB (${ours.seconds.toFixed(1)} s)`,
    peer: 'budget: 512 MiB',
    ratio: 512 / ours.rssMiB,
    goal: '> 1',
  })
}

printTable(rows)
