/**
 * The smallest reproduction of classic-level's iterator memory growth, for an upstream report (see
 * README.md beside this file). Only `classic-level` is used; nothing of cidmirror.
 *
 *   node bench/repro/level-iterator-leak.ts [for-await|all|nextv16|get] [reads]
 *
 * Reads a 4-entry sublevel `reads` times (default 200,000) and prints the RSS every eighth of the way.
 * `for-await` (abstract-level's async iterator) and `all` grow; `nextv16` (one iterator, `nextv(16)`,
 * `close()`) and `get` stay flat.
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { ClassicLevel } from 'classic-level'

const mode = process.argv[2] ?? 'for-await'
const reads = Number(process.argv[3] ?? 200_000)
const dir = mkdtempSync(join(tmpdir(), 'level-iterator-leak-'))
const db = new ClassicLevel<string, unknown>(dir, { valueEncoding: 'json' })
const sub = db.sublevel<string, unknown>('jobs', { valueEncoding: 'json' })
for (let i = 0; i < 4; i++)
  await sub.put(`job${i}`, { name: `job${i}`, status: 'success', upstream: 'x'.repeat(200) })

const mib = () => Math.round(process.memoryUsage().rss / 2 ** 20)
const seen = [mib()]
for (let i = 1; i <= reads; i++) {
  if (mode === 'for-await') {
    const out: unknown[] = []
    for await (const v of sub.values()) out.push(v)
  } else if (mode === 'all') {
    await sub.values().all()
  } else if (mode === 'nextv16') {
    const it = sub.values()
    try {
      await it.nextv(16)
    } finally {
      await it.close()
    }
  } else if (mode === 'get') {
    await sub.get('job1')
  } else {
    throw new Error(`unknown mode ${mode}: for-await, all, nextv16 or get`)
  }
  if (i % Math.ceil(reads / 8) === 0) seen.push(mib())
}
console.log(`${mode}: ${reads} reads of a 4-entry sublevel, RSS MiB: ${seen.join(' -> ')}`)
await db.close()
rmSync(dir, { recursive: true, force: true })
