import { CommandLineError } from './errors.ts'

/**
 * Splits a command line into words as a shell would (single and double quotes, backslash escapes), with
 * no expansion: how `exec_on_success` / `exec_on_failure` commands run, as in tunasync. Throws
 * CommandLineError for an unterminated quote.
 */
export function splitCommand(line: string): string[] {
  const words: string[] = []
  let cur = ''
  let inWord = false
  let quote: '"' | "'" | null = null
  for (let i = 0; i < line.length; i++) {
    const c = line[i] as string
    if (quote === "'") {
      if (c === "'") quote = null
      else cur += c
    } else if (quote === '"') {
      if (c === '"') quote = null
      else if (c === '\\' && i + 1 < line.length && '"\\$`'.includes(line[i + 1] as string)) cur += line[++i]
      else cur += c
    } else if (c === "'" || c === '"') {
      quote = c
      inWord = true
    } else if (c === '\\' && i + 1 < line.length) {
      cur += line[++i]
      inWord = true
    } else if (/\s/.test(c)) {
      if (inWord) words.push(cur)
      cur = ''
      inWord = false
    } else {
      cur += c
      inWord = true
    }
  }
  if (quote) throw new CommandLineError(`unterminated ${quote} quote`)
  if (inWord) words.push(cur)
  return words
}
