/**
 * A request target's path, decoded once and checked before it touches the disk (DESIGN promise 7).
 * Each `/`-separated segment is percent-decoded on its own, so `%2f` can never make a separator and
 * `%2e%2e` is a `..` segment, refused; `+` stays `+` (apt asks for `libc%2b%2b` and `g++` alike, never
 * meaning a space). Refused with 400: bad percent-encoding, NUL (raw or `%00`), a `.` or `..` segment,
 * a segment holding `/` once decoded, a path or name past the limits. Nothing here reads the disk.
 */

/** Linux's NAME_MAX and PATH_MAX: longer cannot name a file, so it is refused before any lookup. */
export const MAX_NAME_BYTES = 255
export const MAX_PATH_BYTES = 4096

export type ParsedPath =
  | { ok: true; segments: string[]; slash: boolean; query: string }
  | { ok: false; reason: string }

/** Splits `target` (`req.url`) into decoded segments, whether it ended with `/`, and the raw query. */
export function parseTarget(target: string): ParsedPath {
  const q = target.indexOf('?')
  const raw = q < 0 ? target : target.slice(0, q)
  const query = q < 0 ? '' : target.slice(q + 1)
  if (raw.charCodeAt(0) !== 47 /* / */) return { ok: false, reason: 'the path must start with /' }
  if (raw.length > MAX_PATH_BYTES * 3) return { ok: false, reason: 'path too long' }
  const parts = raw.split('/')
  const segments: string[] = []
  let bytes = 0
  for (let i = 1; i < parts.length; i++) {
    const p = parts[i]!
    if (p === '') continue // `//` is one separator, as nginx's merge_slashes
    let s: string
    if (p.includes('%')) {
      try {
        s = decodeURIComponent(p)
      } catch {
        return { ok: false, reason: 'bad percent-encoding' }
      }
      if (s.includes('/')) return { ok: false, reason: 'an encoded / in a name' }
    } else s = p
    if (s === '.' || s === '..') return { ok: false, reason: 'a . or .. segment' }
    if (s.includes('\0')) return { ok: false, reason: 'a NUL byte' }
    const len = Buffer.byteLength(s)
    if (len > MAX_NAME_BYTES) return { ok: false, reason: 'a name longer than 255 bytes' }
    bytes += len + 1
    if (bytes > MAX_PATH_BYTES) return { ok: false, reason: 'path too long' }
    segments.push(s)
  }
  return { ok: true, segments, slash: raw.endsWith('/'), query }
}

/** `segments` as a URL path again (each segment percent-encoded as apt and browsers accept it). */
export function encodePath(segments: string[]): string {
  return segments.map(encodeSegment).join('/')
}

/** encodeURIComponent, but keeping what a path segment may hold as is (`+`, `~`, `:`, `@`, ...). */
export function encodeSegment(s: string): string {
  return encodeURIComponent(s).replace(/%(2B|3A|40|24|26|2C|3B|3D)/g, (m) => decodeURIComponent(m))
}
