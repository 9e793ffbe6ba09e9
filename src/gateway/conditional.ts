/**
 * Conditional and range requests (RFC 9110 §13, §14), as apt, curl and browsers send them:
 * If-None-Match first (then If-Modified-Since is ignored), If-Modified-Since answered 304 only on an
 * exact match of Last-Modified (nginx's `if_modified_since exact`, what apt sends back), one `Range`
 * (several ranges get the whole file, as RFC 9110 allows), and If-Range with a date (exact match) or
 * a strong ETag: a mismatch serves the whole file with 200.
 */
import type { IncomingHttpHeaders } from 'node:http'

export type Outcome =
  | { status: 200 }
  | { status: 304 }
  | { status: 206; start: number; end: number }
  | { status: 416 }

/** Whether `header` (an If-None-Match list) names `etag`, by weak comparison; `*` names anything. */
function noneMatch(header: string, etag: string): boolean {
  if (header.trim() === '*') return true
  const bare = etag.startsWith('W/') ? etag.slice(2) : etag
  for (const part of header.split(',')) {
    let t = part.trim()
    if (t.startsWith('W/')) t = t.slice(2)
    if (t === bare) return true
  }
  return false
}

/** A single `bytes=` range of a `size`-byte file; undefined: ignore the header; null: unsatisfiable. */
export function parseRange(header: string, size: number): { start: number; end: number } | null | undefined {
  const m = /^\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*$/i.exec(header)
  if (!m) return undefined // several ranges, another unit or malformed: the whole file (RFC 9110 §14.2)
  const [, a, b] = m
  if (a === '' && b === '') return undefined
  if (a === '') {
    const n = Number(b)
    if (n === 0) return null
    return { start: Math.max(0, size - n), end: size - 1 }
  }
  const start = Number(a)
  if (start >= size) return null
  const end = b === '' ? size - 1 : Math.min(Number(b), size - 1)
  if (end < start) return undefined
  return { start, end }
}

/** What to answer for a GET or HEAD of a representation with these validators. */
export function evaluate(
  h: IncomingHttpHeaders,
  v: { etag: string; lastModified: string; size: number },
): Outcome {
  const inm = h['if-none-match']
  if (inm !== undefined) {
    if (noneMatch(inm, v.etag)) return { status: 304 }
  } else {
    const ims = h['if-modified-since']
    if (ims !== undefined && ims === v.lastModified) return { status: 304 }
  }
  const range = h.range
  if (range === undefined) return { status: 200 }
  const ifRange = h['if-range'] as string | undefined
  if (ifRange !== undefined) {
    const t = ifRange.trim()
    // An entity tag starts with a quote (or W/, which never matches: If-Range needs a strong one).
    const matches =
      t.startsWith('"') || t.startsWith('W/') ? t === v.etag && !t.startsWith('W/') : t === v.lastModified
    if (!matches) return { status: 200 }
  }
  const r = parseRange(range, v.size)
  if (r === undefined) return { status: 200 }
  if (r === null) return { status: 416 }
  return { status: 206, ...r }
}
