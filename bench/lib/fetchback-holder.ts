/**
 * BENCH_ONLY=fetchback-holder: an evicted 100 MiB file fetched back through cidmirror's fetch-back
 * from the Kubo target that holds it, over that node's RPC API (no local node, no gateway: the holder
 * lookup the daemon builds from `[[replication.targets]]`), both ways the holder is read: plain bytes
 * (`cat` with offset and length, every leaf hashed against its CID: the file's leaves known from the
 * block map) and its `dag export` (every block checked: leaves not known). Each against `ipfs cat` of
 * the same CID from that Kubo, in interleaved rounds; each figure is its best round.
 *
 *   BENCH_FETCH_MIB=100   the file's size
 */
import { randomBytes } from 'node:crypto'
import { mkdirSync, mkdtempSync, rmSync, unlinkSync, writeFileSync } from 'node:fs'
import { availableParallelism, loadavg, tmpdir } from 'node:os'
import { join } from 'node:path'
import { holderNodesOf, type TargetSettings } from '../../src/daemon/index.ts'
import { type Database, openDatabase } from '../../src/db.ts'
import { createFetchBack, type EvictedFile, type HolderNodes } from '../../src/gateway/index.ts'
import { BlockReader, CopyStore, mapBlocks, openMirrorIndex } from '../../src/index/index.ts'
import { Kubo } from '../../test/helpers/kubo.ts'
import { ipfsCat, type Timing } from './fetchback.ts'
import type { Row } from './report.ts'

const say = (m: string) => process.stderr.write(`bench fetchback-holder: ${m}\n`)

/** One fetch-back of the evicted file from the holder (a fresh FetchBack, the file off the disk first). */
async function fromHolder(
  root: string,
  file: EvictedFile,
  db: Database,
  holders: HolderNodes,
  leaves: boolean,
): Promise<Timing & { source: string }> {
  try {
    unlinkSync(join(root, file.path))
  } catch {}
  let cached!: () => void
  const done = new Promise<void>((r) => {
    cached = r
  })
  const fb = createFetchBack({
    rootOf: () => root,
    copies: new CopyStore(db),
    holders,
    ...(leaves ? { nodes: new BlockReader(db) } : {}),
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
  await done
  return { ttfb: ttfb / 1000, total: total / 1000, source: res.source }
}

export async function benchFetchBackHolder(rounds: number): Promise<Row[]> {
  const mib = Number(process.env.BENCH_FETCH_MIB ?? '100')
  const size = mib * 1024 * 1024
  const dir = mkdtempSync(join(tmpdir(), 'cidmirror-bench-fetchback-holder-'))
  const kubo = await Kubo.create({ parent: dir })
  const dbs: Database[] = []
  let set: ReturnType<typeof holderNodesOf> | undefined
  try {
    await kubo.start()
    const root = join(dir, 'mirror')
    mkdirSync(join(root, 'iso'), { recursive: true })
    const path = 'iso/big.iso'
    writeFileSync(join(root, path), randomBytes(size))
    const cid = (await kubo.ok(['add', '-Q', '--cid-version=1', join(root, path)])).trim()
    const db = await openDatabase(join(dir, 'db'))
    dbs.push(db)
    const idx = openMirrorIndex(db, 'bench', root)
    await idx.scan()
    if ((await idx.get(path))?.cid !== cid) throw new Error('the index and Kubo disagree on the CID')
    await mapBlocks(db, 'bench', root)
    const peer = (await kubo.peer()).id
    const now = Date.now()
    // The copy a `kubo` target without `gateway` records: no retrieval URL, only its target's name.
    await new CopyStore(db).put({
      cid,
      holder: `ipfs:${peer}`,
      kind: 'ipfs-node',
      how: 'pinned',
      status: 'verified',
      scope: 'entity',
      local: false,
      checkedAt: now,
      since: now,
      target: 'holder',
    })
    const target: TargetSettings = {
      name: 'holder',
      type: 'kubo',
      api: kubo.api,
      scope: 'entity',
      local: false,
      concurrency: undefined,
      gateway: undefined,
      token: undefined,
      replicationMin: undefined,
      replicationMax: undefined,
      ipfsApi: [],
    }
    set = holderNodesOf(() => [target])
    const file: EvictedFile = { mirror: 'bench', path, cid, size, mtimeMs: Date.now() }
    await ipfsCat(kubo, cid, size)
    const warm = await fromHolder(root, file, db, set.holders, true)
    if (warm.source !== `holder:ipfs:${peer}`) throw new Error(`fetched from ${warm.source}, not the holder`)
    const best = {
      cat: { ttfb: Infinity, total: Infinity },
      plain: { ttfb: Infinity, total: Infinity },
      car: { ttfb: Infinity, total: Infinity },
    }
    for (let r = 0; r < Math.max(rounds, 5); r++) {
      const c = await ipfsCat(kubo, cid, size)
      const p = await fromHolder(root, file, db, set.holders, true)
      const x = await fromHolder(root, file, db, set.holders, false)
      say(
        `round ${r + 1}: ipfs cat ${c.total.toFixed(3)} s; holder plain bytes ${p.total.toFixed(3)} s (ttfb ${(p.ttfb * 1000).toFixed(1)} ms); holder dag export ${x.total.toFixed(3)} s (ttfb ${(x.ttfb * 1000).toFixed(1)} ms)`,
      )
      for (const [k, t] of [
        ['cat', c],
        ['plain', p],
        ['car', x],
      ] as const) {
        best[k].ttfb = Math.min(best[k].ttfb, t.ttfb)
        best[k].total = Math.min(best[k].total, t.total)
      }
    }
    say(`load average ${loadavg()[0]!.toFixed(1)} on ${availableParallelism()} cores`)
    const mbps = (t: number) => size / 1e6 / t
    const cat = `\`ipfs cat\` ${mbps(best.cat.total).toFixed(0)} MB/s (${best.cat.total.toFixed(3)} s)`
    return [
      {
        figure: `fetch-back of an evicted ${mib} MiB file from a holder's RPC, plain bytes (cat): MB/s`,
        ours: `${mbps(best.plain.total).toFixed(0)} MB/s (${best.plain.total.toFixed(3)} s, ttfb ${(best.plain.ttfb * 1000).toFixed(1)} ms)`,
        peer: cat,
        ratio: best.cat.total / best.plain.total,
        goal: 'report',
      },
      {
        figure: `fetch-back of an evicted ${mib} MiB file from a holder's RPC, dag export: MB/s`,
        ours: `${mbps(best.car.total).toFixed(0)} MB/s (${best.car.total.toFixed(3)} s, ttfb ${(best.car.ttfb * 1000).toFixed(1)} ms)`,
        peer: cat,
        ratio: best.cat.total / best.car.total,
        goal: 'report',
      },
    ]
  } finally {
    await set?.close()
    await kubo.dispose()
    for (const db of dbs) await db.close()
    rmSync(dir, { recursive: true, force: true })
  }
}
