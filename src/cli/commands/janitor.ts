/**
 * `cidmirror janitor -c FILE [--mirror NAME] [--dry-run] [--json]`: one janitor pass under the
 * config's `[cache]` policy: what it frees (or would), and per file why it is or is not eligible. Runs
 * on the database when no daemon holds it, else asks the daemon (`POST /cache/janitor`), whose pass it
 * is then. Exit 0, 2 on error.
 */
import type { Command } from 'commander'
import type { JanitorLine } from '../../api/index.ts'
import { UsageError } from '../errors.ts'
import { configPath } from './daemon.ts'

interface JanitorCliOptions {
  config?: string
  mirror?: string
  dryRun?: boolean
  json?: boolean
  token?: string
}

export function register(program: Command): void {
  program
    .command('janitor')
    .description(
      'evict old files that have n verified copies elsewhere ([cache]); --dry-run shows why each is kept',
    )
    .option('-c, --config <file>', 'config file (TOML); default $CIDMIRROR_CONFIG')
    .option('--mirror <name>', 'only this mirror')
    .option('--dry-run', 'judge and report only: nothing is evicted')
    .option('--json', 'NDJSON: one object per file ({"type":"file"}), then the report ({"type":"report"})')
    .option('--token <token>', "bearer token for the daemon (default: the config's, or $CIDMIRROR_TOKEN)")
    .action(async (o: JanitorCliOptions) => {
      const [{ loadConfig }, daemon, { openDatabase, DatabaseLockedError }, fmt] = await Promise.all([
        import('../../sync/index.ts'),
        import('../../daemon/index.ts'),
        import('../../db.ts'),
        import('../janitor-format.ts'),
      ])
      const config = await loadConfig(configPath(o.config))
      const repl = daemon.readReplicationConfig(config)
      const cache = daemon.readCacheConfig(config, repl.replication)
      if (!cache)
        throw new UsageError(`config ${config.file}: no [cache] section: the janitor evicts nothing`)
      if (o.mirror !== undefined && !cache.mirrors.includes(o.mirror))
        throw new UsageError(
          `--mirror ${o.mirror}: not a mirror the janitor looks after (${cache.mirrors.join(', ') || 'none'})`,
        )
      const print = (line: Exclude<JanitorLine, { type: 'error' }>): void => {
        if (o.json) process.stdout.write(`${JSON.stringify(line)}\n`)
        else if (line.type === 'file') process.stdout.write(`${fmt.fileLine(line)}\n`)
        else for (const l of fmt.reportLines(line)) process.stdout.write(`${l}\n`)
      }
      let db: import('../../db.ts').Database
      try {
        db = await openDatabase(config.database.path)
      } catch (err) {
        if (!(err instanceof DatabaseLockedError)) throw err
        // The daemon holds the database: the pass is its own.
        const { openIndexSource } = await import('../index-source.ts')
        const { JanitorClient } = await import('../../api/index.ts')
        const source = await openIndexSource({ config: config.file, ...(o.token ? { token: o.token } : {}) })
        try {
          if (!source.remote) throw err
          const client = new JanitorClient(source.remote.base, source.remote.token)
          for await (const line of client.run({
            ...(o.mirror !== undefined ? { mirror: o.mirror } : {}),
            dryRun: o.dryRun ?? false,
          }))
            print(line)
        } finally {
          await source.close()
        }
        return
      }
      const node = !o.dryRun && repl.ipfs?.api ? daemon.localNodeOf(repl.ipfs) : undefined
      const svc = new daemon.JanitorService({
        db,
        config: () => config,
        cache,
        node,
        log: daemon.createLogger({ level: 'silent' }),
      })
      try {
        const report = await svc.run({
          ...(o.mirror !== undefined ? { mirror: o.mirror } : {}),
          dryRun: o.dryRun ?? false,
          onFile: (d) => print({ type: 'file', ...d }),
        })
        print({ type: 'report', ...report })
      } finally {
        await svc.close()
        await node?.close()
        await db.close()
      }
    })
}
