/**
 * A `/_deleted/` path resolved through the index's records as the mirror's own paths resolve on disk:
 * a symlink still in the mirror (present or evicted, not deleted) met mid-path or at the end is
 * followed by its recorded target, against its parent directory, within the mirror. Deleted files
 * have no disk to resolve them on, so the index is the tree here; the symlinks are the current ones.
 */
import type { IndexReader } from '../../index/index.ts'

/** Symlinks followed on one path at most, as in the DAG walk (dag-path.ts): a loop ends here. */
const MAX_SYMLINKS = 32

export type IndexPath =
  | { ok: true; path: string }
  /** A symlink not followed: absolute, empty, above the mirror's root, or past MAX_SYMLINKS. */
  | { ok: false; reason: string }

/** The real path of `segments` in `mirror` ('' for its root), symlinks resolved. */
export async function resolveIndexPath(
  reader: IndexReader,
  mirror: string,
  segments: string[],
): Promise<IndexPath> {
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
    const rec = await reader.record(mirror, done.join('/'))
    if (rec?.kind !== 'symlink' || rec.state === 'deleted') continue
    const target = rec.target ?? ''
    if (target === '' || target.startsWith('/'))
      return {
        ok: false,
        reason: `${rec.path} -> ${target} is not followed: not a relative path inside the mirror`,
      }
    if (++hops > MAX_SYMLINKS)
      return { ok: false, reason: `more than ${MAX_SYMLINKS} symlinks on the way (a loop), not followed` }
    done.pop()
    queue.unshift(...target.split('/'))
  }
}
