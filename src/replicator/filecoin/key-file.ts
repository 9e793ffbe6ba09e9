/**
 * The wallet key of `[filecoin]`, read from a file that only its owner may read: a key readable by
 * others is refused before anything starts, naming the file (never its content). The key itself goes
 * from here to the adapter's viem account and nowhere else: no log line, error, metric or audit has it.
 */
import { readFileSync, statSync } from 'node:fs'
import { FilecoinKeyFileError } from '../errors.ts'

/** A secp256k1 private key as 0x + 64 hex digits, read from `file` (a bare 64-hex line is taken too). */
export function readKeyFile(file: string, what: string): string {
  let mode: number
  try {
    mode = statSync(file).mode
  } catch (err) {
    throw new FilecoinKeyFileError(
      `${what}: cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? 'error'}`,
    )
  }
  if ((mode & 0o077) !== 0)
    throw new FilecoinKeyFileError(
      `${what}: ${file} is readable by others (mode ${(mode & 0o777).toString(8).padStart(3, '0')}); a wallet key must be private: chmod 600 ${file}`,
    )
  let text: string
  try {
    text = readFileSync(file, 'utf8').trim()
  } catch (err) {
    throw new FilecoinKeyFileError(
      `${what}: cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? 'error'}`,
    )
  }
  const hex = text.startsWith('0x') ? text.slice(2) : text
  if (!/^[0-9a-fA-F]{64}$/.test(hex))
    throw new FilecoinKeyFileError(
      `${what}: ${file} does not hold a private key (one line of 64 hex digits, with or without 0x)`,
    )
  return `0x${hex.toLowerCase()}`
}
