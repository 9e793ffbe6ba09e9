#!/usr/bin/env node
import { readFileSync } from 'node:fs'
import { Command, CommanderError } from 'commander'
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
    process.exitCode = err.exitCode
  } else if (isCidmirrorError(err)) {
    process.stderr.write(`cidmirror: ${err.message}\n`)
    process.exitCode = 1
  } else {
    process.stderr.write(`cidmirror: internal error: ${(err as Error)?.stack ?? String(err)}\n`)
    process.exitCode = 70
  }
}

function packageVersion(): string {
  // src/cli/main.ts and dist/cli/main.js both sit two folders below package.json.
  const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as {
    version: string
  }
  return pkg.version
}
