/**
 * The wallet key of `[filecoin]`, read from a file that only its owner may read: a key readable by
 * others is refused before anything starts, naming the file (never its content). The key itself goes
 * from here to the adapter's viem account and nowhere else: no log line, error, metric or audit has it.
 */
import { readFileSync } from 'node:fs'
import { notPrivate } from '../../util/private-file.ts'
import { FilecoinKeyFileError } from '../errors.ts'

/** A secp256k1 private key as 0x + 64 hex digits, read from `file` (a bare 64-hex line is taken too). */
export function readKeyFile(file: string, what: string): string {
  let problem: string | undefined
  try {
    problem = notPrivate(file, 'a wallet key')
  } catch (err) {
    throw new FilecoinKeyFileError(
      `${what}: cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? 'error'}`,
    )
  }
  if (problem) throw new FilecoinKeyFileError(`${what}: ${problem}`)
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
