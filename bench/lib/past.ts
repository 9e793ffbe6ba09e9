/**
 * What serving past trees costs (BENCH_ONLY=past): a mirror of small files in 100 directories, indexed
 * and block-mapped, then synced again with 1 % of its files deleted upstream. In one process, the
 * gateway (no fetch-back: every file asked is present) answers over 16 keep-alive connections:
 *
 * - a present file by its mirror path (the hot path: a cached map lookup), the peer;
 * - the same file as `/ipfs/<root>/<dir>/<name>` of the current root and of the previous one (the path
 *   walked through the block map's directory nodes, each hashed, the CID's holder looked up, its
 *   stat checked, then read from disk);
 * - `/_deleted/<mirror>/<dir>/` listings (the first after a commit makes one pass over the records).
 */
import { mkdirSync, mkdtempSync, rmSync, unlinkSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { pino } from 'pino'
import { openDatabase } from '../../src/db.ts'
import { startGateway } from '../../src/gateway/index.ts'
import {
  BlockReader,
  blockMapSince,
  mapBlocks,
  openIndexReader,
  openMirrorIndex,
} from '../../src/index/index.ts'
import { loadGet } from './http-load.ts'
import type { Row } from './report.ts'

const MIRROR = 'bench'

function name(d: number, f: number): string {
  return `d${String(d).padStart(3, '0')}/f${String(f).padStart(4, '0')}.bin`
}

export async function benchPast(scale: number, rounds: number): Promise<Row[]> {
  const dirs = 100
  const perDir = Math.max(10, Math.round(200 * scale))
  const work = mkdtempSync(join(tmpdir(), 'cidmirror-bench-past-'))
  const root = join(work, 'mirror')
  const db = await openDatabase(join(work, 'db'))
  try {
    for (let d = 0; d < dirs; d++) {
      mkdirSync(join(root, `d${String(d).padStart(3, '0')}`), { recursive: true })
      for (let f = 0; f < perDir; f++) writeFileSync(join(root, name(d, f)), `${d}:${f}:`.padEnd(1024, 'x'))
    }
    const idx = openMirrorIndex(db, MIRROR, root)
    const scanAndMap = async () => {
      const since = await blockMapSince(db, MIRROR)
      const s = await idx.scan()
      await mapBlocks(db, MIRROR, root, { since })
      return s.rootCid
    }
    const root1 = await scanAndMap()
    for (let d = 0; d < dirs; d++)
      for (let f = 0; f < perDir; f += 100) unlinkSync(join(root, name(d, f + 1 < perDir ? f + 1 : f)))
    const root2 = await scanAndMap()
    const files = dirs * perDir
    const gw = await startGateway({
      host: '127.0.0.1',
      port: 0,
      mirrors: [{ name: MIRROR, root }],
      reader: openIndexReader(db),
      log: pino({ level: 'silent' }),
      past: { blocks: new BlockReader(db) },
    })
    try {
      const target = name(50, perDir - 1)
      const requests = 5000
      const rate = async (path: string): Promise<number> => {
        let best = 0
        for (let r = 0; r < rounds; r++) {
          const res = await loadGet(`${gw.url}${path}`, requests, 16)
          if (res.failed > 0) throw new Error(`${path}: ${res.failed} answers were not 200`)
          best = Math.max(best, res.requests / res.seconds)
        }
        return best
      }
      const t0 = performance.now()
      const first = await loadGet(`${gw.url}/_deleted/${MIRROR}/d050/`, 1, 1)
      const coldMs = performance.now() - t0
      if (first.failed > 0) throw new Error('/_deleted/ listing failed')
      const hot = await rate(`/${MIRROR}/${target}`)
      const now = await rate(`/ipfs/${root2}/${target}`)
      const past = await rate(`/ipfs/${root1}/${target}`)
      const deleted = await rate(`/_deleted/${MIRROR}/d050/`)
      const rps = (n: number) => `${Math.round(n).toLocaleString('en')} req/s`
      const peer = `its mirror path (hot path): ${rps(hot)}`
      process.stderr.write(
        `bench: past trees over ${files.toLocaleString('en')} files: first /_deleted/ listing ${coldMs.toFixed(0)} ms\n`,
      )
      return [
        {
          figure: `/ipfs/<current root>/<path> of a 1 KiB file (${files.toLocaleString('en')} files)`,
          ours: rps(now),
          peer,
          ratio: now / hot,
          goal: 'report',
        },
        {
          figure: '/ipfs/<previous root>/<path> of the same file',
          ours: rps(past),
          peer,
          ratio: past / hot,
          goal: 'report',
        },
        {
          figure: `/_deleted/ listing of one directory (first after a commit: ${coldMs.toFixed(0)} ms)`,
          ours: rps(deleted),
          peer,
          ratio: deleted / hot,
          goal: 'report',
        },
      ]
    } finally {
      await gw.close()
    }
  } finally {
    await db.close()
    rmSync(work, { recursive: true, force: true })
  }
}
