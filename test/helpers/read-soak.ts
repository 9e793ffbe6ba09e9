/**
 * A soak of range reads on a 4-entry room, in a process of its own so that its RSS is its own:
 *
 *   node test/helpers/read-soak.ts <read-range|for-await> <warm-up reads> <reads>
 *
 * Prints one JSON line: the RSS (MiB) after the warm-up and the highest RSS seen during the reads.
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { openDatabase, readRange, sublevelOf } from '../../src/db.ts'

const [mode = 'read-range', warmArg = '20000', readsArg = '100000'] = process.argv.slice(2)
const warm = Number(warmArg)
const reads = Number(readsArg)
const dir = mkdtempSync(join(tmpdir(), 'cidmirror-read-soak-'))
const db = await openDatabase(dir)
const room = sublevelOf<{ name: string }>(db, 'jobs')
for (let i = 0; i < 4; i++)
  await room.put(`job${i}/w1`, { name: `job${i}`, status: 'success', upstream: 'x'.repeat(200) } as never)

const read =
  mode === 'for-await'
    ? async () => {
        const out: unknown[] = []
        for await (const v of room.values()) out.push(v)
        return out.length
      }
    : async () => (await readRange(room)).length

const mib = () => process.memoryUsage().rss / 2 ** 20
for (let i = 0; i < warm; i++) await read()
const after = mib()
let peak = after
for (let i = 1; i <= reads; i++) {
  if ((await read()) !== 4) throw new Error('a read did not see the 4 entries')
  if (i % 1000 === 0) peak = Math.max(peak, mib())
}
console.log(JSON.stringify({ mode, warm, reads, afterWarmUpMiB: after, peakMiB: peak }))
await db.close()
rmSync(dir, { recursive: true, force: true })
