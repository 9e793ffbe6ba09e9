/**
 * The gateway as a process of its own for the benchmark: indexes nothing (the database is ready),
 * serves `mirror` at /bench/ on 127.0.0.1, and prints its port. Run by bench/lib/gateway.ts.
 *
 *   node gateway-serve.ts DB ROOT
 */
import { pino } from 'pino'
import { openDatabase } from '../../src/db.ts'
import { startGateway } from '../../src/gateway/index.ts'
import { onScanCommitted, openIndexReader } from '../../src/index/index.ts'

const [dbPath, root] = process.argv.slice(2) as [string, string]
const db = await openDatabase(dbPath)
const gw = await startGateway({
  host: '127.0.0.1',
  port: 0,
  mirrors: [{ name: 'bench', root }],
  reader: openIndexReader(db),
  onScanCommitted: (fn) => onScanCommitted(db, fn),
  log: pino({ level: 'warn' }),
})
process.stdout.write(`port=${gw.port}\n`)
process.on('SIGTERM', () => {
  void gw
    .close()
    .then(() => db.close())
    .then(() => process.exit(0))
})
