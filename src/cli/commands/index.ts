import type { Command } from 'commander'

/** Each command lives in its own file and adds itself to the program. */
export function registerCommands(_program: Command): void {}
