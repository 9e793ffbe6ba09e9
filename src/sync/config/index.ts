import { readConfigFiles } from './read.ts'
import { resolveConfig } from './resolve.ts'
import type { Config } from './types.ts'

export { checkManagerListener } from './listener.ts'
export { DEFAULTS } from './resolve.ts'
export type * from './types.ts'

/**
 * Reads a config file with its includes and returns the resolved config (defaults applied, units and
 * paths resolved, nested mirrors flattened). Throws ConfigError (`src/sync/errors.ts`) naming the file
 * and the key of the first problem.
 */
export async function loadConfig(file: string): Promise<Config> {
  return resolveConfig(await readConfigFiles(file))
}
