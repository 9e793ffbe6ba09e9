/**
 * Path keys. A relative path is stored with its `/` separators replaced by `\x00`, the root as the empty
 * key. `\x00` sorts below every byte a file name can hold, so LevelDB's byte order on these keys is the
 * depth-first pre-order of a walk that lists each directory sorted by name: the walker and the stored
 * index can be merge-joined in one pass, with no per-path `get`.
 */

export const SEP = '\x00'

export function keyOf(relPath: string): string {
  return relPath.replaceAll('/', SEP)
}

export function pathOf(key: string): string {
  return key.replaceAll(SEP, '/')
}

/** True when `dir` is a proper ancestor of `key`. */
export function isAncestor(dir: string, key: string): boolean {
  if (dir === '') return key !== ''
  return key.length > dir.length && key.charCodeAt(dir.length) === 0 && key.startsWith(dir)
}

/**
 * UTF-8 byte order (LevelDB's, and Kubo's link order) on JavaScript strings. JavaScript's `<` compares
 * UTF-16 units, which agrees except between a surrogate pair and a unit in U+E000..U+FFFF, so only
 * strings that both hold a unit >= U+D800 take the slow path.
 *
 * Self-contained (no reference outside its body): the walker threads run it from its source text
 * (walker.ts), so they sort names exactly as the scanner compares keys.
 */
export function utf8Order() {
  const HIGH = /[\ud800-\uffff]/
  /** UTF-16 units above U+D7FF mapped so that code-unit order becomes code-point (UTF-8 byte) order. */
  const fix = (c: number): number => (c >= 0xe000 ? c - 0x800 : c + 0x2000)
  const compareSlow = (a: string, b: string): number => {
    const n = Math.min(a.length, b.length)
    for (let i = 0; i < n; i++) {
      let x = a.charCodeAt(i)
      let y = b.charCodeAt(i)
      if (x !== y) {
        if (x >= 0xd800 && y >= 0xd800) {
          x = fix(x)
          y = fix(y)
        }
        return x < y ? -1 : 1
      }
    }
    return a.length - b.length
  }
  /** Whether `<` may disagree with UTF-8 order on `s` (it holds a unit >= U+D800). */
  const hasHigh = (s: string): boolean => HIGH.test(s)
  const compare = (a: string, b: string): number => {
    if (a === b) return 0
    if (HIGH.test(a) && HIGH.test(b)) return compareSlow(a, b)
    return a < b ? -1 : 1
  }
  /** Sorts directory entry names in place. */
  const sortNames = (names: string[]): string[] => {
    for (const n of names) if (HIGH.test(n)) return names.sort(compare)
    return names.sort()
  }
  return { compare, hasHigh, sortNames }
}

/** Compares two keys (or names) by their UTF-8 bytes, LevelDB's order. */
export const compareKeys = utf8Order().compare

/** Mirror names become sublevel names, which LevelDB's sublevels restrict to bytes 0x23..0x7e. */
export function sublevelName(mirror: string): string {
  let out = ''
  for (const byte of new TextEncoder().encode(mirror)) {
    const ok =
      (byte >= 0x30 && byte <= 0x39) ||
      (byte >= 0x41 && byte <= 0x5a) ||
      (byte >= 0x61 && byte <= 0x7a) ||
      byte === 0x2d ||
      byte === 0x2e ||
      byte === 0x5f
    out += ok ? String.fromCharCode(byte) : `%${byte.toString(16).toUpperCase().padStart(2, '0')}`
  }
  return `m.${out}`
}
