/**
 * The replicator in a process of its own, for kill -9 tests:
 * `node replicate-child.ts DB TREE API_A API_B API_C`. Tracks every file of mirror `m` as one CID
 * item, stores each on two Kubo targets (per-file pins), prints one JSON line per processed item
 * (`{"processed":KEY,"state":STATE}`) and pino's `stored` lines, and exits 0 once every item is
 * satisfied.
 */
import pino from 'pino'
import { openDatabase } from '../../src/db.ts'
import { openMirrorIndex } from '../../src/index/index.ts'
import { KuboNode } from '../../src/ipfs/index.ts'
import { KuboTarget, Replicator } from '../../src/replicator/index.ts'

const [dbPath, tree, apiA, apiB, apiC] = process.argv.slice(2) as [string, string, string, string, string]
const db = await openDatabase(dbPath)
const idx = openMirrorIndex(db, 'm', tree)
const a = new KuboNode({ api: apiA, local: true })
const source = async () => (await a.id()).addresses
const targets = [apiB, apiC].map(
  (api, i) =>
    new KuboTarget({ name: `kubo-${'bc'[i]}`, node: new KuboNode({ api }), scope: 'entity', source }),
)
const r = new Replicator({
  db,
  counters: targets,
  policy: () => ({ n: 2 }),
  recheckMs: 3_600_000,
  concurrency: 4,
  log: pino({ level: 'info' }, pino.destination({ fd: 1, sync: true })),
})
r.on('processed', (e) =>
  process.stdout.write(`${JSON.stringify({ processed: e.item.key, state: e.state })}\n`),
)
const cids = new Set<string>()
for await (const rec of idx.records()) if (rec.kind === 'file') cids.add(rec.cid)
for (const cid of cids) await r.track({ scope: 'entity', cid })
for (;;) {
  await r.runOnce()
  const all = await r.queue.all()
  if (all.every((e) => e.state === 'satisfied')) break
  await new Promise((res) => setTimeout(res, 25))
}
await r.stop()
await db.close()
process.stdout.write(`${JSON.stringify({ done: cids.size })}\n`)
