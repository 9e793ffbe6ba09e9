/**
 * BENCH_ONLY=fetchback: an evicted 100 MiB file fetched back through cidmirror's fetch-back from a
 * local Kubo (indexed and its blocks mapped as the daemon does, so its leaves are known: the gateway's
 * plain bytes, every leaf hashed against its CID, the cache file written and renamed into the tree),
 * against `ipfs cat` of the same CID from that Kubo, in interleaved rounds. The goal's figure is the
 * whole path a download takes: the file evicted in the index (`local.evict`), curl of its mirror path
 * through cidmirror's gateway, the fetch-back behind it, a client process on each side as `ipfs cat`
 * is one. The fetch-back read in-process (no HTTP to the client) is printed beside it. Time to first
 * byte and MB/s of each; each figure is its best round (the VM's speed drifts).
 *
 *   BENCH_FETCH_MIB=100   the file's size
 */
import { execFile, execFileSync, spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { mkdirSync, mkdtempSync, rmSync, unlinkSync, writeFileSync } from 'node:fs'
import { availableParallelism, loadavg, tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { pino } from 'pino'
import { type Database, openDatabase } from '../../src/db.ts'
import { createFetchBack, type EvictedFile, type Gateway, startGateway } from '../../src/gateway/index.ts'
import {
  BlockReader,
  type MirrorIndex,
  mapBlocks,
  openIndexReader,
  openMirrorIndex,
} from '../../src/index/index.ts'
import { Kubo } from '../../test/helpers/kubo.ts'
import type { Row } from './report.ts'

const say = (m: string) => process.stderr.write(`bench fetchback: ${m}\n`)

export interface Timing {
  ttfb: number
  total: number
}

/** `ipfs cat CID` through the running daemon: seconds to its first stdout byte and to its end. */
export function ipfsCat(kubo: Kubo, cid: string, size: number): Promise<Timing> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now()
    let ttfb = 0
    let got = 0
    const child = spawn(kubo.bin, ['cat', cid], { env: kubo.env, stdio: ['ignore', 'pipe', 'inherit'] })
    child.stdout.on('data', (d: Buffer) => {
      if (got === 0) ttfb = performance.now() - t0
      got += d.length
    })
    child.once('error', reject)
    child.once('close', (code) => {
      const total = performance.now() - t0
      if (code !== 0 || got !== size)
        reject(new Error(`ipfs cat exited ${code} after ${got} of ${size} bytes`))
      else resolve({ ttfb: ttfb / 1000, total: total / 1000 })
    })
  })
}

/**
 * curl of Kubo's gateway to /dev/null: its trustless CAR (`?format=car`) or its plain file bytes
 * (deserialized `/ipfs/{cid}`), the HTTP path's ceiling on this machine, with no verification, no
 * cache file (references, not the goal's peer).
 */
function curl(kubo: Kubo, cid: string, car: boolean): Timing {
  return curlTiming([
    ...(car ? ['-H', `accept: ${CAR}`] : []),
    `${kubo.gateway}/ipfs/${cid}${car ? '?dag-scope=entity' : ''}`,
  ])
}

const CURL_TIMING = [
  '-sS',
  '-o',
  '/dev/null',
  '-w',
  '%{time_starttransfer} %{time_total}',
  '--fail',
  '--max-time',
  '120',
]

function timingOf(out: string): Timing {
  const [ttfb, total] = out.trim().split(' ').map(Number)
  return { ttfb: ttfb!, total: total! }
}

async function curlTimingAsync(args: string[]): Promise<Timing> {
  const { stdout } = await promisify(execFile)('curl', [...CURL_TIMING, ...args], { encoding: 'utf8' })
  return timingOf(stdout)
}

function curlTiming(args: string[]): Timing {
  return timingOf(execFileSync('curl', [...CURL_TIMING, ...args], { encoding: 'utf8' }))
}

const CAR = 'application/vnd.ipld.car; version=1; order=dfs; dups=y'

/** One fetch-back of the evicted file (a fresh FetchBack, the file off the disk again first). */
async function ours(kubo: Kubo, root: string, file: EvictedFile, db: Database): Promise<Timing> {
  try {
    unlinkSync(join(root, file.path))
  } catch {}
  let cached!: () => void
  const done = new Promise<void>((r) => {
    cached = r
  })
  const fb = createFetchBack({
    rootOf: () => root,
    localGateway: kubo.gateway,
    // The index's block map, as the daemon wires it: the file's leaves are known.
    nodes: new BlockReader(db),
    recorderOf: () => ({
      markRefetched: async () => {
        cached()
        return undefined
      },
    }),
  })
  const t0 = performance.now()
  const res = await fb.open(file, undefined, AbortSignal.timeout(120_000))
  let ttfb = 0
  let got = 0
  for await (const c of res.body) {
    if (got === 0) ttfb = performance.now() - t0
    got += c.length
  }
  const total = performance.now() - t0
  if (got !== file.size) throw new Error(`fetch-back gave ${got} of ${file.size} bytes`)
  // fsync and rename come after the client's last byte; let them finish before the next round.
  await done
  return { ttfb: ttfb / 1000, total: total / 1000 }
}

/**
 * The gateway in this process with the fetch-back as the daemon wires it (the block map's nodes, the
 * index told when the file is back), serving the mirror at /bench/.
 */
async function gatewayOf(kubo: Kubo, root: string, db: Database, idx: MirrorIndex): Promise<Gateway> {
  const fetchBack = createFetchBack({
    rootOf: () => root,
    localGateway: kubo.gateway,
    nodes: new BlockReader(db),
    recorderOf: () => idx.local,
  })
  return startGateway({
    host: '127.0.0.1',
    port: 0,
    mirrors: [{ name: 'bench', root }],
    reader: openIndexReader(db),
    fetchBack,
    log: pino({ level: 'warn' }),
  })
}

/** One download of the file through the gateway by curl, after the janitor's way of evicting it. */
async function viaGateway(gw: Gateway, idx: MirrorIndex, file: EvictedFile): Promise<Timing> {
  const r = await idx.get(file.path)
  if (r?.state !== 'present') throw new Error(`${file.path} is ${r?.state}, not present, before its eviction`)
  const [out] = await idx.local.evict(
    [{ path: file.path, cid: r.cid, size: r.size, mtimeMs: r.mtimeMs }],
    async () => unlinkSync(join(idx.root, file.path)),
  )
  if (!out?.evicted) throw new Error(`the eviction of ${file.path} was refused`)
  // curl in its own process, run asynchronously: this process serves it.
  const t = await curlTimingAsync([`http://127.0.0.1:${gw.port}/bench/${file.path}`])
  // The cache file is renamed in and the index told after the last byte: wait for it (a deadline, no sleep-and-hope).
  const deadline = Date.now() + 60_000
  while ((await idx.get(file.path))?.state !== 'present') {
    if (Date.now() > deadline) throw new Error(`${file.path} was not recorded present again within 60 s`)
    await new Promise((res) => setTimeout(res, 10))
  }
  return t
}

export async function benchFetchBack(rounds: number): Promise<Row[]> {
  const mib = Number(process.env.BENCH_FETCH_MIB ?? '100')
  const size = mib * 1024 * 1024
  const dir = mkdtempSync(join(tmpdir(), 'cidmirror-bench-fetchback-'))
  const kubo = await Kubo.create({ parent: dir })
  const dbs: Database[] = []
  const closers: (() => Promise<void>)[] = []
  try {
    await kubo.start()
    const root = join(dir, 'mirror')
    mkdirSync(join(root, 'iso'), { recursive: true })
    const path = 'iso/big.iso'
    writeFileSync(join(root, path), randomBytes(size))
    const cid = (await kubo.ok(['add', '-Q', '--cid-version=1', join(root, path)])).trim()
    // Indexed and its blocks mapped, as the daemon does after each scan; then evicted (unlinked).
    const db = await openDatabase(join(dir, 'db'))
    dbs.push(db)
    const idx = openMirrorIndex(db, 'bench', root)
    await idx.scan()
    if ((await idx.get(path))?.cid !== cid) throw new Error('the index and Kubo disagree on the CID')
    await mapBlocks(db, 'bench', root)
    const file: EvictedFile = { mirror: 'bench', path, cid, size, mtimeMs: Date.now() }
    const gw = await gatewayOf(kubo, root, db, idx)
    closers.push(() => gw.close())
    // A warm-up of each, then interleaved rounds.
    await ipfsCat(kubo, cid, size)
    await ours(kubo, root, file, db)
    await viaGateway(gw, idx, file)
    const best = {
      cat: { ttfb: Infinity, total: Infinity },
      ours: { ttfb: Infinity, total: Infinity },
      gateway: { ttfb: Infinity, total: Infinity },
      curlCar: { ttfb: Infinity, total: Infinity },
      curlPlain: { ttfb: Infinity, total: Infinity },
    }
    for (let r = 0; r < Math.max(rounds, 5); r++) {
      const c = await ipfsCat(kubo, cid, size)
      const o = await ours(kubo, root, file, db)
      const g = await viaGateway(gw, idx, file)
      for (const [k, car] of [
        ['curlCar', true],
        ['curlPlain', false],
      ] as const) {
        const u = curl(kubo, cid, car)
        best[k].ttfb = Math.min(best[k].ttfb, u.ttfb)
        best[k].total = Math.min(best[k].total, u.total)
      }
      say(
        `round ${r + 1}: ipfs cat ttfb ${(c.ttfb * 1000).toFixed(1)} ms total ${c.total.toFixed(3)} s; fetch-back ttfb ${(o.ttfb * 1000).toFixed(1)} ms total ${o.total.toFixed(3)} s; curl through the gateway ttfb ${(g.ttfb * 1000).toFixed(1)} ms total ${g.total.toFixed(3)} s`,
      )
      best.cat.ttfb = Math.min(best.cat.ttfb, c.ttfb)
      best.cat.total = Math.min(best.cat.total, c.total)
      best.ours.ttfb = Math.min(best.ours.ttfb, o.ttfb)
      best.ours.total = Math.min(best.ours.total, o.total)
      best.gateway.ttfb = Math.min(best.gateway.ttfb, g.ttfb)
      best.gateway.total = Math.min(best.gateway.total, g.total)
    }
    const mbps = (t: number) => size / 1e6 / t
    say(
      `references (unverified, not cached): curl of Kubo's trustless CAR ${mbps(best.curlCar.total).toFixed(0)} MB/s (${best.curlCar.total.toFixed(3)} s), ttfb ${(best.curlCar.ttfb * 1000).toFixed(1)} ms; curl of its plain bytes ${mbps(best.curlPlain.total).toFixed(0)} MB/s (${best.curlPlain.total.toFixed(3)} s), ttfb ${(best.curlPlain.ttfb * 1000).toFixed(1)} ms; load average ${loadavg()[0]!.toFixed(1)} on ${availableParallelism()} cores`,
    )
    return [
      {
        figure: `curl of an evicted ${mib} MiB file through the gateway (fetched back from a local Kubo): MB/s`,
        ours: `${mbps(best.gateway.total).toFixed(0)} MB/s (${best.gateway.total.toFixed(3)} s)`,
        peer: `\`ipfs cat\` ${mbps(best.cat.total).toFixed(0)} MB/s (${best.cat.total.toFixed(3)} s)`,
        ratio: best.cat.total / best.gateway.total,
        goal: '>= 0.9x',
      },
      {
        figure: 'curl through the gateway: time to first byte',
        ours: `${(best.gateway.ttfb * 1000).toFixed(1)} ms`,
        peer: `\`ipfs cat\` ${(best.cat.ttfb * 1000).toFixed(1)} ms`,
        ratio: best.cat.ttfb / best.gateway.ttfb,
        goal: '>= 0.83x (TTFB <= 1.2x)',
      },
      {
        figure: `the fetch-back alone, read in-process: MB/s`,
        ours: `${mbps(best.ours.total).toFixed(0)} MB/s (${best.ours.total.toFixed(3)} s)`,
        peer: `\`ipfs cat\` ${mbps(best.cat.total).toFixed(0)} MB/s (${best.cat.total.toFixed(3)} s)`,
        ratio: best.cat.total / best.ours.total,
        goal: '',
      },
      {
        figure: 'the fetch-back alone: time to first byte',
        ours: `${(best.ours.ttfb * 1000).toFixed(1)} ms`,
        peer: `\`ipfs cat\` ${(best.cat.ttfb * 1000).toFixed(1)} ms`,
        ratio: best.cat.ttfb / best.ours.ttfb,
        goal: '',
      },
    ]
  } finally {
    for (const close of closers) await close()
    await kubo.dispose()
    for (const db of dbs) await db.close()
    rmSync(dir, { recursive: true, force: true })
  }
}
