import { unlink, writeFile } from 'node:fs/promises'
import type { Command } from 'commander'
import { UsageError } from '../errors.ts'

/** `-c FILE`, or `$CIDMIRROR_CONFIG`. */
export function configPath(flag: string | undefined): string {
  const file = flag ?? process.env.CIDMIRROR_CONFIG
  if (!file) throw new UsageError('no config file: pass -c FILE or set CIDMIRROR_CONFIG')
  return file
}

/** Runs manager and/or worker from a config until SIGINT/SIGTERM; SIGHUP reloads. */
export async function runRoles(
  roles: { manager: boolean; worker: boolean },
  opts: { config?: string; pidfile?: string },
): Promise<void> {
  // Loaded here, not at the top: every command's start-up pays for what the registry imports.
  const { loadConfig } = await import('../../sync/index.ts')
  const { createLogger, runUntilSignal, startDaemon } = await import('../../daemon/index.ts')
  const config = await loadConfig(configPath(opts.config))
  // tunasync's `debug = true` logs at debug level; CIDMIRROR_LOG_LEVEL still wins.
  const log = createLogger(config.debug ? { level: process.env.CIDMIRROR_LOG_LEVEL ?? 'debug' } : {})
  const daemon = await startDaemon({ config, ...roles, log })
  if (opts.pidfile) await writeFile(opts.pidfile, `${process.pid}\n`)
  try {
    await runUntilSignal(daemon)
  } finally {
    if (opts.pidfile) await unlink(opts.pidfile).catch(() => {})
  }
}

export function register(program: Command): void {
  program
    .command('daemon')
    .description('run the manager and the worker of a config in one process (mirror jobs, status API, index)')
    .option('-c, --config <file>', 'config file (TOML); default $CIDMIRROR_CONFIG')
    .option('--pidfile <file>', 'write the process id here while running')
    .action((opts: { config?: string; pidfile?: string }) => runRoles({ manager: true, worker: true }, opts))
}
