import { ConfigError, type configValues as v } from '../sync/index.ts'

/** Refuses a key of `table` (the section or table `prefix`) that is not one of `keys`, naming it and the file. */
export function checkKnownKeys(
  table: Record<string, unknown>,
  keys: readonly string[],
  prefix: string,
  where: v.Where,
): void {
  for (const k of Object.keys(table))
    if (!keys.includes(k))
      throw new ConfigError(
        'CONFIG_UNKNOWN_KEY',
        where.file,
        `${prefix}.${k}`,
        `unknown key (known: ${keys.join(', ')})`,
      )
}
