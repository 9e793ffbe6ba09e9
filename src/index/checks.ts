/**
 * What the index accepts as a mirror name and as a path, wherever they come from (the CLI, the
 * daemon's read API): one set of rules, so a name or path refused over HTTP is refused offline too.
 */
import { InvalidIndexPathError, InvalidMirrorNameError } from './errors.ts'

/** Longest mirror name the index holds. */
export const MAX_MIRROR_NAME = 100
/** Longest relative path, in UTF-8 bytes (Linux's PATH_MAX). */
export const MAX_PATH_BYTES = 4096
/** Longest name of one path component, in UTF-8 bytes (Linux's NAME_MAX). */
export const MAX_NAME_BYTES = 255

/** A mirror name as the config allows it: a folder name, 1 to 100 characters, no `/` or NUL. */
export function checkMirrorName(mirror: string): string {
  if (
    typeof mirror !== 'string' ||
    mirror.length === 0 ||
    mirror.length > MAX_MIRROR_NAME ||
    mirror === '.' ||
    mirror === '..' ||
    mirror.includes('/') ||
    mirror.includes('\0')
  )
    throw new InvalidMirrorNameError(mirror)
  return mirror
}

/**
 * A path relative to a mirror root, normalized: `/`-separated, no leading or trailing `/`, `.` and
 * empty components dropped, '' for the root. Refused: a `..` component (the index holds none, and a
 * path must not climb out of its mirror), a NUL byte, more than 4096 bytes, a component of more than
 * 255 bytes.
 */
export function checkRelPath(path: string): string {
  if (typeof path !== 'string') throw new InvalidIndexPathError(String(path), 'not a string')
  if (Buffer.byteLength(path) > MAX_PATH_BYTES)
    throw new InvalidIndexPathError(path, `longer than ${MAX_PATH_BYTES} bytes`)
  if (path.includes('\0')) throw new InvalidIndexPathError(path, 'a NUL byte')
  const parts: string[] = []
  for (const part of path.split('/')) {
    if (part === '' || part === '.') continue
    if (part === '..') throw new InvalidIndexPathError(path, 'a ".." component')
    if (Buffer.byteLength(part) > MAX_NAME_BYTES)
      throw new InvalidIndexPathError(path, `a name longer than ${MAX_NAME_BYTES} bytes`)
    parts.push(part)
  }
  return parts.join('/')
}

/** One entry name of a directory: a path of one component (no `/`). */
export function checkEntryName(name: string): string {
  const rel = checkRelPath(name)
  if (rel === '' || rel.includes('/') || rel !== name)
    throw new InvalidIndexPathError(String(name), 'not a single entry name')
  return rel
}
