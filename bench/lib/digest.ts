/**
 * What `whole_file_digest` costs: a cold index of a tree of large files with the option off and on,
 * in one process, a fresh LevelDB each run, one shared hash pool (the daemon's way). On, each file of
 * more than one chunk is hashed in order by one worker, its chunks fed to a second SHA-256 as well,
 * instead of its chunk ranges being spread over every worker.
 */
import { randomFillSync } from 'node:crypto'
import {
  closeSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  renameSync,
  rmSync,
  writeSync,
} from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { HashPool } from '../../src/cid/index.ts'
import { openDatabase } from '../../src/db.ts'
import { openMirrorIndex } from '../../src/index/index.ts'
import { treeBytes, warmCache } from './fs.ts'

const MiB = 1024 * 1024
/** About 1 GiB at scale 1: a few ISO-sized files and many package-sized ones, all above one chunk. */
const SHAPE: [count: number, mib: number][] = [
  [2, 256],
  [4, 64],
  [8, 16],
  [32, 3],
]

/** The tree, made once (cached beside the others under bench/out). */
export function ensureDigestTree(dir: string, scale: number): string {
  const done = join(dir, '.complete')
  if (existsSync(done)) return dir
  rmSync(dir, { recursive: true, force: true })
  const tmp = `${dir}.tmp`
  rmSync(tmp, { recursive: true, force: true })
  mkdirSync(tmp, { recursive: true })
  const buf = Buffer.allocUnsafe(MiB)
  for (const [count, mib] of SHAPE) {
    const size = Math.max(MiB + 1, Math.round(mib * MiB * scale))
    for (let i = 0; i < count; i++) {
      const fd = openSync(join(tmp, `f-${mib}m-${i}.bin`), 'w')
      for (let left = size; left > 0; left -= MiB) writeSync(fd, randomFillSync(buf), 0, Math.min(MiB, left))
      closeSync(fd)
    }
  }
  closeSync(openSync(join(tmp, '.complete'), 'w'))
  renameSync(tmp, dir)
  return dir
}

export interface DigestFigures {
  bytes: number
  offSeconds: number
  onSeconds: number
}

/** Best of `rounds` cold indexes with the option off and on, taken in turn. */
export async function benchDigest(tree: string, rounds: number): Promise<DigestFigures> {
  warmCache(tree)
  const pool = new HashPool()
  const best = { off: Number.POSITIVE_INFINITY, on: Number.POSITIVE_INFINITY }
  try {
    // Round 0 warms the pool's threads and the code paths of both modes; it is not counted.
    for (let r = 0; r <= rounds; r++) {
      for (const on of [false, true]) {
        const dbDir = mkdtempSync(join(tmpdir(), 'cidmirror-bench-digest-'))
        const db = await openDatabase(dbDir)
        try {
          const start = process.hrtime.bigint()
          const s = await openMirrorIndex(db, 'bench', tree).scan({ pool, wholeFileDigest: on })
          const seconds = Number(process.hrtime.bigint() - start) / 1e9
          if (s.filesHashed === 0) throw new Error('bench: the digest scan hashed nothing')
          const key = on ? 'on' : 'off'
          if (r > 0) best[key] = Math.min(best[key], seconds)
        } finally {
          await db.close()
          rmSync(dbDir, { recursive: true, force: true })
        }
      }
    }
  } finally {
    await pool.destroy()
  }
  return { bytes: treeBytes(tree), offSeconds: best.off, onSeconds: best.on }
}
