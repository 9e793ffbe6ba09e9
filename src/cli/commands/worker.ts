import type { Command } from 'commander'
import { runRoles } from './daemon.ts'

export function register(program: Command): void {
  program
    .command('worker')
    .description('run a worker alone: it syncs its mirrors and reports to the manager at [manager] api_base')
    .option('-c, --config <file>', 'config file (TOML); default $CIDMIRROR_CONFIG')
    .option('--pidfile <file>', 'write the process id here while running')
    .action((opts: { config?: string; pidfile?: string }) => runRoles({ manager: false, worker: true }, opts))
}
