import { statSync } from 'node:fs'

/**
 * Why `file` may not hold `what` (a wallet key, a token): others may read it; undefined when only its
 * owner may. Throws as `statSync` does, for the caller's own "cannot read" line.
 */
export function notPrivate(file: string, what: string): string | undefined {
  const mode = statSync(file).mode
  if ((mode & 0o077) === 0) return undefined
  return `${file} is readable by others (mode ${(mode & 0o777).toString(8).padStart(3, '0')}); ${what} must be private: chmod 600 ${file}`
}
