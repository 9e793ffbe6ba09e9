/**
 * The janitor in a process of its own, for kill -9 tests: `node janitor-child.ts DB TREE`. One pass
 * over mirror `m` with n = 1 (evict_after 1 year, copies fresh within a day); prints one JSON line per
 * evicted file as its group is done, then `{"done":N}`.
 */
import { runJanitor } from '../../src/cache/index.ts'
import { openDatabase } from '../../src/db.ts'
import { CopyStore, openMirrorIndex } from '../../src/index/index.ts'
import { YEAR_OLD_POLICY } from './janitor-policy.ts'

const [dbPath, tree] = process.argv.slice(2) as [string, string]
const db = await openDatabase(dbPath)
const report = await runJanitor({
  copies: new CopyStore(db),
  policy: YEAR_OLD_POLICY,
  mirrors: [{ index: openMirrorIndex(db, 'm', tree), copies: { n: 1 } }],
  onFile: (d) => {
    if (d.evicted) process.stdout.write(`${JSON.stringify({ evicted: d.path })}\n`)
  },
})
process.stdout.write(`${JSON.stringify({ done: report.evicted })}\n`)
await db.close()
