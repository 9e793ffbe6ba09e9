#!/usr/bin/env node
import { readFileSync } from 'node:fs'
import { Command, CommanderError } from 'commander'
import { EXIT_BUG, EXIT_USER, errorInfo } from '../error-codes.ts'
import { isCidmirrorError } from '../errors.ts'
import { registerCommands } from './commands/index.ts'

const program = new Command('cidmirror')
  .description('Mirror sync jobs whose files are content-addressed: sync, CID index, replicate, serve.')
  .version(packageVersion())
  .showHelpAfterError()
  .exitOverride()

registerCommands(program)

try {
  await program.parseAsync(process.argv)
} catch (err) {
  if (err instanceof CommanderError) {
    // Commander has printed the mistake (or the help, with 0); a mistake is a user error.
    process.exitCode = err.exitCode === 0 ? 0 : EXIT_USER
  } else if (isCidmirrorError(err) && errorInfo(err.code)?.exit !== EXIT_BUG) {
    process.stderr.write(`cidmirror: ${err.message}\n`)
    process.exitCode = errorInfo(err.code)?.exit ?? EXIT_USER
  } else {
    process.stderr.write(`cidmirror: internal error: ${(err as Error)?.stack ?? String(err)}\n`)
    process.exitCode = EXIT_BUG
  }
}

function packageVersion(): string {
  // src/cli/main.ts and dist/cli/main.js both sit two folders below package.json.
  const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as {
    version: string
  }
  return pkg.version
}
