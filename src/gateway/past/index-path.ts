/**
 * A `/_deleted/` path resolved through the index's records as the mirror's own paths resolve on disk:
 * a symlink met mid-path or at the end is followed by its recorded target, against its parent
 * directory, within the mirror. Deleted files have no disk to resolve them on, so the index is the
 * tree here: today's symlinks (`resolveIndexPath`: present or evicted, not deleted), or those of a
 * past scan's tree (`resolveIndexPathAt`: the versions the index kept, as that scan had them).
 */
import type { IndexReader } from '../../index/index.ts'
import type { PastVersions } from './routes.ts'

/** Symlinks followed on one path at most, as in the DAG walk (dag-path.ts): a loop ends here. */
const MAX_SYMLINKS = 32

export type IndexPath =
  | { ok: true; path: string }
  /** A symlink not followed: absolute, empty, above the mirror's root, or past MAX_SYMLINKS. */
  | { ok: false; reason: string }

/** What a path is in the tree walked: a symlink (with its target) is followed, anything else is not. */
type Lookup = (path: string) => Promise<{ kind: string; target?: string } | undefined>

/** The real path of `segments` in `mirror` ('' for its root), today's symlinks resolved. */
export function resolveIndexPath(
  reader: IndexReader,
  mirror: string,
  segments: string[],
): Promise<IndexPath> {
  return resolveThrough(async (path) => {
    const rec = await reader.record(mirror, path)
    return rec?.state === 'deleted' ? undefined : rec
  }, segments)
}

/** The real path of `segments` in the tree of committed scan `scan`, its symlinks as they were then. */
export function resolveIndexPathAt(
  versions: PastVersions,
  mirror: string,
  segments: string[],
  scan: number,
): Promise<IndexPath> {
  return resolveThrough((path) => versions.entryAt(mirror, path, scan), segments)
}

async function resolveThrough(lookup: Lookup, segments: string[]): Promise<IndexPath> {
  const done: string[] = []
  const queue = [...segments]
  let hops = 0
  for (;;) {
    const seg = queue.shift()
    if (seg === undefined) return { ok: true, path: done.join('/') }
    // '..' and '.' come only from targets: a request's segments never hold them (request-path.ts).
    if (seg === '' || seg === '.') continue
    if (seg === '..') {
      if (done.length === 0) return { ok: false, reason: 'a symlink leads above the mirror, not followed' }
      done.pop()
      continue
    }
    done.push(seg)
    const path = done.join('/')
    const rec = await lookup(path)
    if (rec?.kind !== 'symlink') continue
    const target = rec.target ?? ''
    if (target === '' || target.startsWith('/'))
      return {
        ok: false,
        reason: `${path} -> ${target} is not followed: not a relative path inside the mirror`,
      }
    if (++hops > MAX_SYMLINKS)
      return { ok: false, reason: `more than ${MAX_SYMLINKS} symlinks on the way (a loop), not followed` }
    done.pop()
    queue.unshift(...target.split('/'))
  }
}
