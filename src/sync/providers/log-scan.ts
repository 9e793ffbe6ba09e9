import { closeSync, fstatSync, openSync, readSync, statSync } from 'node:fs'

/** Current length of the log, so a run scans only what it wrote itself. */
export function logOffset(logFile: string): number {
  try {
    return statSync(logFile).size
  } catch {
    return 0
  }
}

/** What was written to the log since `offset` (at most the last `limit` bytes). */
export function readLogSince(logFile: string, offset: number, limit = 64 * 1024 * 1024): string {
  let fd: number
  try {
    fd = openSync(logFile, 'r')
  } catch {
    return ''
  }
  try {
    const size = fstatSync(fd).size
    const start = Math.max(offset, size - limit)
    const buf = Buffer.alloc(Math.max(0, size - start))
    let read = 0
    while (read < buf.length) {
      const n = readSync(fd, buf, read, buf.length - read, start + read)
      if (n === 0) break
      read += n
    }
    return buf.subarray(0, read).toString('utf8')
  } finally {
    closeSync(fd)
  }
}

function globalOf(re: RegExp): RegExp {
  return new RegExp(re.source, re.flags.includes('g') ? re.flags : `${re.flags}g`)
}

/** Every match of `re` in `text`. */
export function allMatches(text: string, re: RegExp): RegExpExecArray[] {
  return [...text.matchAll(globalOf(re))]
}

/** Group 1 of the last match (tunasync's ExtractSizeFromLog), or undefined. */
export function lastGroup(text: string, re: RegExp): string | undefined {
  const matches = allMatches(text, re)
  const last = matches[matches.length - 1]
  return last?.[1]
}

/** rsync's own human figure from its last `Total file size: X bytes` line (`"5.24M"`, `"1,234"`). */
export const RSYNC_SIZE = /^Total file size: ([0-9.,]+[KMGTPE]?) bytes/m
