/**
 * `node bench/reference.ts`: referencing a tree's files in place in a local Kubo (filestore, nocopy)
 * through the node interface, against `ipfs add -r --nocopy` of the same tree. Each variant gets a
 * fresh offline daemon (a second add of the same blocks is a no-op and would flatter it); rounds are
 * interleaved and each figure is its best round, as in bench/run.ts.
 *
 *   BENCH_FILES=10000  BENCH_FILE_SIZE=100000   the tree (default about 1 GB, the size)
 *   BENCH_ROUNDS=2
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { KuboNode } from '../src/ipfs/index.ts'
import { printTable } from './lib/report.ts'

const files = Number(process.env.BENCH_FILES ?? 10_000)
const size = Number(process.env.BENCH_FILE_SIZE ?? 100_000)
const rounds = Math.max(1, Number(process.env.BENCH_ROUNDS ?? 2))

// The repos and the tree share one folder: Kubo references only files under its repo's parent.
const root = mkdtempSync(join(tmpdir(), 'cidmirror-bench-reference-'))
const tree = join(root, 'tree')
const paths: string[] = []
for (let i = 0; i < files; i++) {
  const dir = join(tree, String(i % 100))
  mkdirSync(dir, { recursive: true })
  const p = join(dir, `f${i}.deb`)
  writeFileSync(p, randomBytes(size))
  paths.push(p)
}

const daemons: ChildProcess[] = []
let n = 0
async function daemon(): Promise<{ env: NodeJS.ProcessEnv; api: string; stop: () => void }> {
  const repo = join(root, `repo${n++}`)
  const env = { ...process.env, IPFS_PATH: repo, IPFS_TELEMETRY: 'off' }
  execFileSync('ipfs', ['init', '--profile', 'test,unixfs-v1-2025'], { env, stdio: 'ignore' })
  execFileSync('ipfs', ['config', '--json', 'Experimental.FilestoreEnabled', 'true'], { env })
  const child = spawn('ipfs', ['daemon', '--offline'], { env, stdio: ['ignore', 'pipe', 'pipe'] })
  daemons.push(child)
  await new Promise<void>((resolve, reject) => {
    let log = ''
    child.stdout!.on('data', (d) => {
      log += d
      if (log.includes('Daemon is ready')) resolve()
    })
    child.once('exit', (code) => reject(new Error(`ipfs daemon exited ${code}`)))
  })
  return { env, api: readFileSync(join(repo, 'api'), 'utf8').trim(), stop: () => child.kill() }
}

async function timed(fn: (d: Awaited<ReturnType<typeof daemon>>) => Promise<void>): Promise<number> {
  const d = await daemon()
  try {
    const start = performance.now()
    await fn(d)
    return (performance.now() - start) / 1000
  } finally {
    d.stop()
  }
}

const best = { kubo: Infinity, batched: Infinity, single: Infinity }
try {
  for (let r = 0; r < rounds; r++) {
    best.kubo = Math.min(
      best.kubo,
      await timed(async (d) => {
        execFileSync('ipfs', ['add', '-r', '-Q', '--nocopy', '--pin=false', tree], { env: d.env })
      }),
    )
    best.batched = Math.min(
      best.batched,
      await timed(async (d) => {
        const node = new KuboNode({ api: d.api, local: true })
        for await (const res of node.referenceFiles(paths)) if ('error' in res) throw res.error
        await node.close()
      }),
    )
    best.single = Math.min(
      best.single,
      await timed(async (d) => {
        const node = new KuboNode({ api: d.api, local: true })
        for (const p of paths) await node.referenceFile(p)
        await node.close()
      }),
    )
  }
} finally {
  for (const d of daemons) d.kill()
  rmSync(root, { recursive: true, force: true })
}

const mb = (files * size) / 1e6
const fig = (s: number) => `${(files / s).toFixed(0)} files/s, ${(mb / s).toFixed(0)} MB/s`
process.stderr.write(`bench: ${files} files of ${size} bytes, best of ${rounds}\n`)
printTable([
  {
    figure: 'referenceFiles (batched nocopy add)',
    ours: fig(best.batched),
    peer: `ipfs add -r --nocopy ${fig(best.kubo)}`,
    ratio: best.kubo / best.batched,
    goal: '-',
  },
  {
    figure: 'referenceFile, one file per request',
    ours: fig(best.single),
    peer: `ipfs add -r --nocopy ${fig(best.kubo)}`,
    ratio: best.kubo / best.single,
    goal: '-',
  },
])
