/**
 * BENCH_ONLY=fetchback: an evicted 100 MiB file fetched back through cidmirror's fetch-back from a
 * local Kubo (indexed and its blocks mapped as the daemon does, so its leaves are known: the gateway's
 * plain bytes, every leaf hashed against its CID, the cache file written and renamed into the tree),
 * against `ipfs cat` of the same CID from that Kubo, in interleaved rounds. Time to first byte and
 * MB/s of each; each figure is its best round (the VM's speed drifts).
 *
 *   BENCH_FETCH_MIB=100   the file's size
 */
import { execFileSync, spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { mkdirSync, mkdtempSync, rmSync, unlinkSync, writeFileSync } from 'node:fs'
import { availableParallelism, loadavg, tmpdir } from 'node:os'
import { join } from 'node:path'
import { type Database, openDatabase } from '../../src/db.ts'
import { createFetchBack, type EvictedFile } from '../../src/gateway/index.ts'
import { BlockReader, mapBlocks, openMirrorIndex } from '../../src/index/index.ts'
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
  const out = execFileSync(
    'curl',
    [
      '-sS',
      '-o',
      '/dev/null',
      '-w',
      '%{time_starttransfer} %{time_total}',
      ...(car ? ['-H', `accept: ${CAR}`] : []),
      `${kubo.gateway}/ipfs/${cid}${car ? '?dag-scope=entity' : ''}`,
    ],
    { encoding: 'utf8' },
  )
  const [ttfb, total] = out.trim().split(' ').map(Number)
  return { ttfb: ttfb!, total: total! }
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

export async function benchFetchBack(rounds: number): Promise<Row[]> {
  const mib = Number(process.env.BENCH_FETCH_MIB ?? '100')
  const size = mib * 1024 * 1024
  const dir = mkdtempSync(join(tmpdir(), 'cidmirror-bench-fetchback-'))
  const kubo = await Kubo.create({ parent: dir })
  const dbs: Database[] = []
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
    // A warm-up of each, then interleaved rounds.
    await ipfsCat(kubo, cid, size)
    await ours(kubo, root, file, db)
    const best = {
      cat: { ttfb: Infinity, total: Infinity },
      ours: { ttfb: Infinity, total: Infinity },
      curlCar: { ttfb: Infinity, total: Infinity },
      curlPlain: { ttfb: Infinity, total: Infinity },
    }
    for (let r = 0; r < Math.max(rounds, 5); r++) {
      const c = await ipfsCat(kubo, cid, size)
      const o = await ours(kubo, root, file, db)
      for (const [k, car] of [
        ['curlCar', true],
        ['curlPlain', false],
      ] as const) {
        const u = curl(kubo, cid, car)
        best[k].ttfb = Math.min(best[k].ttfb, u.ttfb)
        best[k].total = Math.min(best[k].total, u.total)
      }
      say(
        `round ${r + 1}: ipfs cat ttfb ${(c.ttfb * 1000).toFixed(1)} ms total ${c.total.toFixed(3)} s; fetch-back ttfb ${(o.ttfb * 1000).toFixed(1)} ms total ${o.total.toFixed(3)} s`,
      )
      best.cat.ttfb = Math.min(best.cat.ttfb, c.ttfb)
      best.cat.total = Math.min(best.cat.total, c.total)
      best.ours.ttfb = Math.min(best.ours.ttfb, o.ttfb)
      best.ours.total = Math.min(best.ours.total, o.total)
    }
    const mbps = (t: number) => size / 1e6 / t
    say(
      `references (unverified, not cached): curl of Kubo's trustless CAR ${mbps(best.curlCar.total).toFixed(0)} MB/s (${best.curlCar.total.toFixed(3)} s), ttfb ${(best.curlCar.ttfb * 1000).toFixed(1)} ms; curl of its plain bytes ${mbps(best.curlPlain.total).toFixed(0)} MB/s (${best.curlPlain.total.toFixed(3)} s), ttfb ${(best.curlPlain.ttfb * 1000).toFixed(1)} ms; load average ${loadavg()[0]!.toFixed(1)} on ${availableParallelism()} cores`,
    )
    return [
      {
        figure: `fetch-back of an evicted ${mib} MiB file from a local Kubo: MB/s`,
        ours: `${mbps(best.ours.total).toFixed(0)} MB/s (${best.ours.total.toFixed(3)} s)`,
        peer: `\`ipfs cat\` ${mbps(best.cat.total).toFixed(0)} MB/s (${best.cat.total.toFixed(3)} s)`,
        ratio: best.cat.total / best.ours.total,
        goal: '>= 0.9x',
      },
      {
        figure: 'fetch-back: time to first byte',
        ours: `${(best.ours.ttfb * 1000).toFixed(1)} ms`,
        peer: `\`ipfs cat\` ${(best.cat.ttfb * 1000).toFixed(1)} ms`,
        ratio: best.cat.ttfb / best.ours.ttfb,
        goal: '>= 0.83x (TTFB <= 1.2x)',
      },
    ]
  } finally {
    await kubo.dispose()
    for (const db of dbs) await db.close()
    rmSync(dir, { recursive: true, force: true })
  }
}
