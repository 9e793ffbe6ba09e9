import type { Command } from 'commander'
import { runRoles } from './daemon.ts'

export function register(program: Command): void {
  program
    .command('manager')
    .description(
      'run the manager alone: job statuses and the control API workers and `cidmirror jobs` talk to',
    )
    .option('-c, --config <file>', 'config file (TOML); default $CIDMIRROR_CONFIG')
    .option('--pidfile <file>', 'write the process id here while running')
    .action((opts: { config?: string; pidfile?: string }) => runRoles({ manager: true, worker: false }, opts))
}
