import type { Command } from 'commander'
import { UsageError } from '../errors.ts'
import { configPath } from './daemon.ts'

/**
 * `cidmirror replicate -c FILE`: the replicator alone, on the daemon's database (refused while a daemon
 * holds it). It publishes every indexed mirror's last scan to the local node, tracks its tree, and
 * runs until SIGINT/SIGTERM; `--once` processes what is due and exits 0 when every item is satisfied,
 * 1 when some is not, 2 on error.
 */
export function register(program: Command): void {
  program
    .command('replicate')
    .description('run the replicator alone: keep every mirror in n verified copies (`[replication]`)')
    .option('-c, --config <file>', 'config file (TOML); default $CIDMIRROR_CONFIG')
    .option('--once', 'process what is due, then exit: 0 when every item is satisfied, 1 when not')
    .option('--all', 'check every item now, not only those due')
    .action(async (o: { config?: string; once?: boolean; all?: boolean }) => {
      const { loadConfig } = await import('../../sync/index.ts')
      const { createLogger, readReplicationConfig, startReplication } = await import('../../daemon/index.ts')
      const { openDatabase } = await import('../../db.ts')
      const file = configPath(o.config)
      const config = await loadConfig(file)
      const repl = readReplicationConfig(config)
      if (!repl.replication)
        throw new UsageError(`config ${config.file}: no [replication] section: nothing to replicate`)
      const log = createLogger(config.debug ? { level: process.env.CIDMIRROR_LOG_LEVEL ?? 'debug' } : {})
      const db = await openDatabase(config.database.path)
      const svc = await startReplication({
        db,
        log,
        ipfs: repl.ipfs,
        replication: repl.replication,
        filecoin: repl.filecoin,
        mirrorRoots: config.mirrors.map((m) => m.mirrorDir),
        follow: false,
      })
      const progress = progressLine(svc.replicator)
      try {
        await svc.catchUp()
        if (o.all) await svc.replicator.checkNow()
        if (o.once) {
          await svc.replicator.runOnce()
          const entries = await svc.replicator.queue.all()
          const short = entries.filter((e) => e.state !== 'satisfied')
          for (const e of short) process.stderr.write(`${e.item.key}: ${e.state}: ${e.reason ?? ''}\n`)
          process.exitCode = short.length === 0 ? 0 : 1
        } else {
          svc.replicator.start()
          await new Promise<void>((resolve) => {
            process.once('SIGINT', () => resolve())
            process.once('SIGTERM', () => resolve())
          })
        }
      } finally {
        progress.stop()
        await svc.close()
        await db.close()
      }
    })
}

/** On a terminal, one line rewritten as items are processed: how many, and how many are satisfied. */
function progressLine(r: import('../../replicator/index.ts').Replicator): { stop(): void } {
  if (!process.stderr.isTTY) return { stop() {} }
  let done = 0
  let ok = 0
  const on = (e: { state: string }): void => {
    done++
    if (e.state === 'satisfied') ok++
    process.stderr.write(`\r\x1b[Kreplicate: ${done} processed, ${ok} satisfied`)
  }
  r.on('processed', on)
  return {
    stop() {
      r.off('processed', on)
      if (done > 0) process.stderr.write('\n')
    },
  }
}
