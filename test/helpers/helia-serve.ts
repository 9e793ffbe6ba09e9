/**
 * A process that indexes one tree and serves it from an embedded Helia node, so a test can measure
 * the serving process's own memory (the test runner's heap would blur it). Run with `--expose-gc`:
 *   node --expose-gc test/helpers/helia-serve.ts TREE WORKDIR
 * Prints `ready <multiaddr> <root> <rss>` once serving (rss after a full GC), then samples its RSS;
 * a line `peak` on stdin answers `peak <rss> <array buffers> <heap used>`: the highest RSS seen, and
 * what stays allocated after a full GC (blocks kept in memory would show there); end of stdin stops it.
 */
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import { openDatabase } from '../../src/db.ts'
import { mapBlocks, openMirrorIndex } from '../../src/index/index.ts'
import { createHeliaNode } from '../../src/ipfs/index.ts'

const [tree, work] = process.argv.slice(2) as [string, string]
const gc = (globalThis as { gc?: () => void }).gc
if (!gc) throw new Error('run with --expose-gc')
const db = await openDatabase(join(work, 'db'))
const { rootCid } = await openMirrorIndex(db, 'm', tree).scan()
const map = await mapBlocks(db, 'm', tree)
if (map.stale.length > 0) throw new Error(`stale after mapping: ${map.stale.join(' ')}`)
const node = await createHeliaNode({ db, dataDir: join(work, 'helia') })
gc()
let peak = process.memoryUsage().rss
const baseline = peak
let atPeak = process.memoryUsage()
const sampler = setInterval(() => {
  const m = process.memoryUsage()
  if (m.rss > peak) atPeak = m
  peak = Math.max(peak, m.rss)
}, 20)
const { addresses } = await node.id()
process.stdout.write(`ready ${addresses[0]} ${rootCid} ${baseline} ${process.memoryUsage().heapUsed}\n`)
for await (const line of createInterface({ input: process.stdin })) {
  if (line === 'peak') {
    const top = Math.max(peak, process.memoryUsage().rss)
    process.stderr.write(`serving: at peak ${JSON.stringify(atPeak)}\n`)
    gc()
    const after = process.memoryUsage()
    process.stderr.write(`serving: after gc ${JSON.stringify(after)}\n`)
    process.stdout.write(`peak ${top} ${after.arrayBuffers} ${after.heapUsed}\n`)
  }
}
clearInterval(sampler)
await node.close()
await db.close()
