/**
 * Runs the first mirror of a config once, in a process of its own (`node run-provider.ts CONFIG LOG`):
 * a stand-in for a daemon that tests can kill with -9 in the middle of a run.
 */
import { loadConfig } from '../../src/sync/config/index.ts'
import { createProvider } from '../../src/sync/providers/index.ts'

const [configFile, logFile] = process.argv.slice(2) as [string, string]
const config = await loadConfig(configFile)
const mirror = config.mirrors[0]!
await createProvider(mirror, config).run({
  logFile,
  signal: new AbortController().signal,
  env: {},
  extraArgs: [],
})
