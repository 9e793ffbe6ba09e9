import type { Command } from 'commander'
import { configPath } from './daemon.ts'

/**
 * `cidmirror gateway -c FILE`: the HTTP gateway alone, serving the config's mirrors (`[gateway]`, or
 * its defaults: every mirror at `/<name>/` on 127.0.0.1:8080). It reads the index from the database,
 * or, while a daemon holds it, from that daemon's read API. Runs until SIGINT/SIGTERM.
 */
export function register(program: Command): void {
  program
    .command('gateway')
    .description('serve the mirrors over HTTP (the gateway alone; `cidmirror daemon` runs it with [gateway])')
    .option('-c, --config <file>', 'config file (TOML); default $CIDMIRROR_CONFIG')
    .option('--listen <host:port>', 'listen here instead of [gateway] listen_addr and listen_port')
    .action(async (o: { config?: string; listen?: string }) => {
      const { loadConfig } = await import('../../sync/index.ts')
      const {
        createLogger,
        followBlockMap,
        readGatewayConfig,
        defaultGatewaySettings,
        readReplicationConfig,
        holderNodesOf,
        startGatewayService,
      } = await import('../../daemon/index.ts')
      const { openIndexSource } = await import('../index-source.ts')
      const { UsageError } = await import('../errors.ts')
      const file = configPath(o.config)
      const config = await loadConfig(file)
      const settings = readGatewayConfig(config) ?? defaultGatewaySettings(config)
      if (o.listen !== undefined) {
        const m = /^(.*):(\d{1,5})$/.exec(o.listen)
        if (!m || Number(m[2]) > 65535) throw new UsageError(`--listen ${o.listen}: expected HOST:PORT`)
        settings.listenAddr = m[1]!.replace(/^\[(.*)\]$/, '$1')
        settings.listenPort = Number(m[2])
      }
      const repl = readReplicationConfig(config)
      const localGateway = repl.ipfs?.gateway
      const holderNodes = holderNodesOf(() => repl.replication?.targets ?? [])
      const log = createLogger(config.debug ? { level: process.env.CIDMIRROR_LOG_LEVEL ?? 'debug' } : {})
      const source = await openIndexSource({ config: file })
      try {
        const gw = await startGatewayService({
          settings,
          log,
          ...(source.db ? { db: source.db } : { reader: source.reader }),
          ...(localGateway ? { localGateway } : {}),
          holders: holderNodes.holders,
        })
        process.stdout.write(
          `cidmirror gateway: serving ${settings.mirrors.length} mirror(s) at ${gw.url}/\n`,
        )
        // Holding the database, it maps the scans nothing mapped yet (the trustless routes read them).
        const stopMap = source.db ? followBlockMap(source.db, log) : undefined
        await new Promise<void>((resolve) => {
          process.once('SIGINT', () => resolve())
          process.once('SIGTERM', () => resolve())
        })
        await stopMap?.()
        await gw.close()
      } finally {
        await holderNodes.close()
        await source.close()
      }
    })
}
