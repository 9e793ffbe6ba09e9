/**
 * The replicator with one Filecoin target in a process of its own, for kill -9 tests:
 * `node filecoin-child.ts DB TREE RELAY`. THE CHAIN AND THE PROVIDERS ARE FAKES, kept by the parent
 * (foc-relay.ts); the SDK is the real one. Tracks every file of mirror `debian` as one CID item with
 * copies = 2, prints pino's lines and one JSON line per processed item, and `{"done":N}` once every
 * item is satisfied.
 */
import pino from 'pino'
import { openDatabase } from '../../src/db.ts'
import { openMirrorIndex } from '../../src/index/index.ts'
import { Replicator } from '../../src/replicator/index.ts'
import { focTarget } from './fake-foc.ts'
import { relayToParent } from './foc-relay.ts'

const [dbPath, tree, relay] = process.argv.slice(2) as [string, string, string]
relayToParent(relay)
const db = await openDatabase(dbPath)
const idx = openMirrorIndex(db, 'debian', tree)
const log = pino({ level: 'info' }, pino.destination({ fd: 1, sync: true }))
const target = await focTarget(db, { log })
const r = new Replicator({ db, counters: [target], policy: () => ({ n: 2 }), recheckMs: 3_600_000, log })
r.on('processed', (e) =>
  process.stdout.write(`${JSON.stringify({ processed: e.item.key, state: e.state, reason: e.reason })}\n`),
)
const files: { cid: string; size: number; mirror: string; path: string }[] = []
for await (const rec of idx.records())
  if (rec.kind === 'file') files.push({ cid: rec.cid, size: rec.size, mirror: 'debian', path: rec.path })
await target.plan(files)
for (const f of files) await r.track({ scope: 'entity', cid: f.cid, mirror: 'debian', bytes: f.size })
for (;;) {
  await r.runOnce()
  const all = await r.queue.all()
  if (all.every((e) => e.state === 'satisfied')) break
  const next = Math.min(...all.map((e) => e.nextAt))
  await new Promise((res) => setTimeout(res, Math.max(25, Math.min(1000, next - Date.now()))))
}
await r.stop()
await db.close()
process.stdout.write(`${JSON.stringify({ done: files.length })}\n`)
process.exit(0)
