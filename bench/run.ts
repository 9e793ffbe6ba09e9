/**
 * `npm run bench`: builds the trees once (cached under bench/out), then prints each cidmirror
 * figure beside its peer's from the same run, as a ratio. Warm page cache throughout.
 *
 *   BENCH_DIR=/path       where the trees live (default bench/out)
 *   BENCH_SCALE=0.1       shrink every tree (a quick look; the figures need 1)
 *   BENCH_ONLY=index,rescan,rss,soak,audit   run a subset (soak: 100,000 GETs of a real daemon's /jobs,
 *                         its RSS before and after; BENCH_SOAK_READS to change the count; audit: the
 *                         copy audit of a 100,000-file mirror against a bare scan of its index;
 *                         replicate: tree pins on two Kubo daemons, not in the default set;
 *                         fetchback: an evicted 100 MiB file fetched back from a local Kubo against
 *                         `ipfs cat`, not in the default set; fetchback-holder: the same file from a
 *                         Kubo target's RPC API (plain bytes, then dag export), not in the default set; gateway: the gateway against nginx with
 *                         wrk, 1 KiB req/s, 1 GiB MB/s, RSS at 1,000 connections, not in the default set; janitor:
 *                         a dry-run janitor pass over a 1,000,000-file index against a bare scan of
 *                         it, not in the default set; digest: a cold index of a ~1 GiB tree of
 *                         large files with `whole_file_digest` off and on, not in the default set; past:
 *                         `/ipfs/<root>/<path>` of current and past roots and `/_deleted/` listings
 *                         against the mirror path, 20,000 files, not in the default set)
 *   BENCH_ROUNDS=3        cold-index rounds: each round runs the peers and cidmirror in turn, each
 *                         figure is its best round
 */
import { spawnSync } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { availableParallelism, tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { benchAudit } from './lib/audit.ts'
import { benchDigest, ensureDigestTree } from './lib/digest.ts'
import { benchFetchBack } from './lib/fetchback.ts'
import { benchFetchBackHolder } from './lib/fetchback-holder.ts'
import { treeBytes, warmCache } from './lib/fs.ts'
import { benchGateway } from './lib/gateway.ts'
import { benchJanitor } from './lib/janitor.ts'
import { initKuboRepo } from './lib/kubo.ts'
import { benchPast } from './lib/past.ts'
import { benchReplicate } from './lib/replicate.ts'
import { printTable, type Row } from './lib/report.ts'
import { soakJobs } from './lib/soak.ts'
import { ensureBigTree, ensureMillionTree } from './lib/trees.ts'

const root = resolve(process.env.BENCH_DIR ?? join(import.meta.dirname, 'out'))
const scale = Number(process.env.BENCH_SCALE ?? '1')
const only = new Set((process.env.BENCH_ONLY ?? 'index,rescan,rss,soak,audit').split(','))
// The built CLI, as users run it (`npm run bench` builds first).
const cli = join(import.meta.dirname, '..', 'dist', 'cli', 'main.js')
const rssHook = join(import.meta.dirname, 'lib', 'report-rss.ts')
const floorScript = join(import.meta.dirname, 'lib', 'floor.ts')
const rounds = Math.max(1, Number(process.env.BENCH_ROUNDS ?? '3'))
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

// The 2 GiB tree only for the figures that read it (BENCH_ONLY=soak needs none).
const needsBig = only.has('index') || only.has('rescan')
const big = needsBig ? ensureBigTree(join(root, 'tree-2g'), scale) : ''
const bytes = needsBig ? treeBytes(big) : 0
if (needsBig) {
  warmCache(big)
  process.stderr.write(`bench: ${big} holds ${(bytes / 2 ** 30).toFixed(2)} GiB\n`)
}
const gb = bytes / 1e9

/** Best of `rounds` runs of each of `fns`, taken in turn (this machine's speed drifts: each gets its best moment). */
function bestOf(fns: Array<() => number>): number[] {
  const best = fns.map(() => Number.POSITIVE_INFINITY)
  for (let r = 0; r < rounds; r++) {
    for (const [i, f] of fns.entries()) best[i] = Math.min(best[i]!, f())
  }
  return best
}

const opensslOver = (dir: string) => () =>
  timed('sh', ['-c', `find "${dir}" -type f -print0 | xargs -0 openssl dgst -sha256 >/dev/null`])
const floorOver =
  (dir: string, ...flags: string[]) =>
  () => {
    const r = spawnSync(process.execPath, [floorScript, dir, ...flags], { encoding: 'utf8' })
    if (r.status !== 0) throw new Error(`floor.ts exited ${r.status}: ${r.stderr}`)
    return Number(r.stdout.trim())
  }
const coldIndex = (dir: string) => () => {
  const db = mkdtempSync(join(tmpdir(), 'cidmirror-bench-db-'))
  try {
    return cidmirror(['index', dir, '--db', db]).seconds
  } finally {
    rmSync(db, { recursive: true, force: true })
  }
}

/**
 * The cold-index rows for `dir` (`gbytes` in it): against openssl, and against the floors of floor.ts
 * (reading and hashing only; the same plus the index's two LevelDB entries per file).
 */
function coldRows(label: string, dir: string, gbytes: number): number {
  const [openssl, floor, floorIndex, ours] = bestOf([
    opensslOver(dir),
    floorOver(dir),
    floorOver(dir, '--index'),
    coldIndex(dir),
  ]) as [number, number, number, number]
  const rate = (s: number) => `${(gbytes / s).toFixed(2)} GB/s (${s.toFixed(2)} s)`
  rows.push({
    figure: `${label}, best of ${rounds}`,
    ours: rate(ours),
    peer: `openssl dgst -sha256, 1 core: ${rate(openssl)}`,
    ratio: openssl / ours,
    goal: '>= 1.5',
  })
  rows.push({
    figure: `${label}: the floor`,
    ours: rate(ours),
    peer: `read + sha256 only, ${availableParallelism()} threads: ${rate(floor)}`,
    ratio: floor / ours,
    goal: `<= 1 (floor is ${(openssl / floor).toFixed(2)}x openssl)`,
  })
  rows.push({
    figure: `${label}: floor + index writes`,
    ours: rate(ours),
    peer: `the same + 2 LevelDB entries per file: ${rate(floorIndex)}`,
    ratio: floorIndex / ours,
    goal: `<= 1 (it is ${(openssl / floorIndex).toFixed(2)}x openssl)`,
  })
  return ours
}

if (only.has('index')) {
  const ours = coldRows('cold index', big, gb)
  const repo = initKuboRepo()
  const kubo = timed('ipfs', ['add', '-r', '-H', '-Q', '--only-hash', '--offline', big], {
    ...process.env,
    IPFS_PATH: repo,
  })
  rmSync(repo, { recursive: true, force: true })
  rows.push({
    figure: 'cold index',
    ours: `${(gb / ours).toFixed(2)} GB/s`,
    peer: `ipfs add -r --only-hash: ${(gb / kubo).toFixed(2)} GB/s (${kubo.toFixed(2)} s)`,
    ratio: kubo / ours,
    goal: '> 1',
  })
  // The large files alone (1 KiB to 256 MiB, no 200,000 small files): there hashing, not one
  // open/read/close per small file, sets the pace.
  const large = join(big, 'large')
  coldRows('cold index, large files only', large, treeBytes(large) / 1e9)
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

if (only.has('soak')) {
  const reads = Number(process.env.BENCH_SOAK_READS ?? '100000')
  const r = await soakJobs({ main: cli, warm: 10_000, reads })
  if (r.failed > 0) throw new Error(`soak: ${r.failed} of the GETs of /jobs did not answer 200`)
  const mib = (x: number) => `${x.toFixed(0)} MiB`
  process.stderr.write(
    `bench: soak: daemon RSS ${mib(r.startMiB)} after its ${r.jobs} jobs ran, ${mib(r.warmMiB)} after 10,000 warm-up reads, ` +
      `${mib(r.endMiB)} after ${reads.toLocaleString('en')} more (peak ${mib(r.peakMiB)}), ${(reads / r.seconds).toFixed(0)} reads/s over ${r.connections} connections\n`,
  )
  rows.push({
    figure: `RSS growth over ${reads.toLocaleString('en')} GETs of /jobs`,
    ours: `${mib(r.warmMiB)} -> ${mib(r.endMiB)} (peak ${mib(r.peakMiB)})`,
    peer: 'budget: +64 MiB',
    ratio: 64 / Math.max(1, r.peakMiB - r.warmMiB),
    goal: '> 1',
  })
}

if (only.has('replicate')) rows.push(...(await benchReplicate(scale)))

if (only.has('fetchback')) rows.push(...(await benchFetchBack(rounds)))

if (only.has('fetchback-holder')) rows.push(...(await benchFetchBackHolder(rounds)))

if (only.has('gateway')) rows.push(...(await benchGateway(rounds)))

if (only.has('past')) rows.push(...(await benchPast(scale, rounds)))

if (only.has('audit')) {
  const tree = ensureMillionTree(join(root, 'tree-100k'), 0.1 * scale)
  const a = await benchAudit({ cli, tree: tree.dir, db: join(root, `audit-db-${scale}`), rounds })
  const rate = (s: number) => `${Math.round(a.files / s).toLocaleString('en')} files/s`
  process.stderr.write(
    `bench: audit of ${a.files.toLocaleString('en')} files: ${a.auditSeconds.toFixed(2)} s in process, ` +
      `${a.cliSeconds.toFixed(2)} s for \`cidmirror audit --json\`; bare scan ${a.scanSeconds.toFixed(2)} s\n`,
  )
  rows.push({
    figure: `audit of ${a.files.toLocaleString('en')} files (records + copies)`,
    ours: `${rate(a.auditSeconds)} (${a.auditSeconds.toFixed(2)} s; CLI --json ${a.cliSeconds.toFixed(2)} s)`,
    peer: `bare index scan: ${rate(a.scanSeconds)} (${a.scanSeconds.toFixed(2)} s)`,
    ratio: a.scanSeconds / a.auditSeconds,
    goal: 'report',
  })
}

if (only.has('janitor')) {
  const tree = ensureMillionTree(join(root, 'tree-1m'), scale)
  const j = await benchJanitor({ cli, tree: tree.dir, db: join(root, `janitor-db-${scale}`), rounds })
  const rate = (s: number) => `${Math.round(j.files / s).toLocaleString('en')} files/s`
  process.stderr.write(
    `bench: janitor pass over ${j.files.toLocaleString('en')} files (dry run, every file judged against its tree copies): ` +
      `${j.janitorSeconds.toFixed(2)} s; bare scan ${j.scanSeconds.toFixed(2)} s\n`,
  )
  rows.push({
    figure: `janitor pass over ${j.files.toLocaleString('en')} files (dry run, tree copies)`,
    ours: `${rate(j.janitorSeconds)} (${j.janitorSeconds.toFixed(2)} s)`,
    peer: `bare index scan: ${rate(j.scanSeconds)} (${j.scanSeconds.toFixed(2)} s)`,
    ratio: j.scanSeconds / j.janitorSeconds,
    goal: 'report',
  })
}

if (only.has('digest')) {
  const tree = ensureDigestTree(join(root, `digest-${scale}`), scale)
  const d = await benchDigest(tree, rounds)
  const gbD = d.bytes / 1e9
  rows.push({
    figure: `cold index, ${(d.bytes / 2 ** 30).toFixed(2)} GiB of large files, whole_file_digest on`,
    ours: `${(gbD / d.onSeconds).toFixed(2)} GB/s (${d.onSeconds.toFixed(2)} s)`,
    peer: `option off: ${(gbD / d.offSeconds).toFixed(2)} GB/s (${d.offSeconds.toFixed(2)} s)`,
    ratio: d.offSeconds / d.onSeconds,
    goal: 'the cost, measured',
  })
}

printTable(rows)
