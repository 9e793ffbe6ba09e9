/**
 * The gateway's memory under steady reads, in a process of its own (bench/lib/gateway-serve.ts) so its
 * RSS is its own: listings (the index's children, LevelDB range reads each time), misses of ever new
 * paths (a record lookup each, never cached), and hits of cached files. A bound on memory, not on time
 * (DEVELOPING.md: anything serving per-request reads gets one). It found the index reader making a
 * sublevel per `record()` call, each kept by LevelDB for good (9 KB a request).
 */
import { type ChildProcess, spawn } from 'node:child_process'
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Pool } from 'undici'
import { afterAll, expect, it } from 'vitest'
import { openDatabase } from '../src/db.ts'
import { openMirrorIndex } from '../src/index/index.ts'

const SERVE = join(import.meta.dirname, '..', 'bench', 'lib', 'gateway-serve.ts')
let dir: string
let child: ChildProcess | undefined

afterAll(async () => {
  if (child && child.exitCode === null) {
    const exited = new Promise((r) => child!.once('exit', r))
    child.kill('SIGKILL')
    await exited
  }
  rmSync(dir, { recursive: true, force: true })
})

const rssMiB = (pid: number): number =>
  Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1]) / 1024

it('keeps its memory bounded over 30,000 listings, misses and hits', async () => {
  dir = mkdtempSync(join(tmpdir(), 'cidmirror-gw-soak-'))
  const root = join(dir, 'bench')
  mkdirSync(join(root, 'pool', 'sub'), { recursive: true })
  for (let i = 0; i < 300; i++)
    writeFileSync(join(root, 'pool', `pkg-${i}_1.0+b${i}.deb`), `package ${i}\n`.repeat(i + 1))
  const db = await openDatabase(join(dir, 'db'))
  await openMirrorIndex(db, 'bench', root).scan()
  await db.close()
  // A heap limit: left to itself V8 grows its heap under a high allocation rate (listings) long before
  // it collects, so RSS alone would not tell a leak from a lazy GC. Under this limit a leak dies.
  const c = spawn(process.execPath, ['--max-old-space-size=192', SERVE, join(dir, 'db'), root], {
    stdio: ['ignore', 'pipe', 'inherit'],
  })
  child = c
  const port = await new Promise<number>((resolve, reject) => {
    let out = ''
    c.stdout!.on('data', (d: Buffer) => {
      out += d.toString()
      const m = /port=(\d+)/.exec(out)
      if (m) resolve(Number(m[1]))
    })
    c.once('exit', (code) => reject(new Error(`the gateway exited ${code}`)))
  })
  const pool = new Pool(`http://127.0.0.1:${port}`, { connections: 16 })
  let n = 0
  let failed = 0
  const one = async (): Promise<void> => {
    const i = n++
    const kind = i % 10
    const path =
      kind < 4
        ? '/bench/pool/'
        : kind < 7
          ? `/bench/pool/missing-${i}.deb`
          : `/bench/pool/pkg-${i % 300}_1.0%2bb${i % 300}.deb`
    const r = await pool.request({ method: 'GET', path })
    await r.body.dump()
    if (r.statusCode !== (kind >= 4 && kind < 7 ? 404 : 200)) failed++
  }
  const run = async (count: number, onThousand?: () => void): Promise<void> => {
    const end = n + count
    await Promise.all(
      Array.from({ length: 16 }, async () => {
        while (n < end) {
          await one()
          if (n % 1000 === 0) onThousand?.()
        }
      }),
    )
  }
  await run(5000)
  const start = rssMiB(c.pid!)
  let peak = start
  await run(30_000, () => {
    peak = Math.max(peak, rssMiB(c.pid!))
  })
  peak = Math.max(peak, rssMiB(c.pid!))
  await pool.close()
  expect(failed).toBe(0)
  // From its RSS after the warm-up the gateway grows a few MiB on an idle machine, up to ~75 MiB when
  // other work keeps both cores busy (V8 tiers up and collects later); a leak of ~8 KB a read would be
  // +240 MiB, and past the heap limit the process dies and the requests fail.
  expect(peak - start).toBeLessThan(128)
}, 600_000)
