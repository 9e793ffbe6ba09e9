import { isCidmirrorError } from '../errors.ts'
import type { IpfsNode } from './index.ts'

/** A file CID a scan touched, and where it lies now. */
export interface PathsOfCid {
  /** A file's CID that was added, changed, renamed, deleted or evicted by the last scan or eviction. */
  cid: string
  /**
   * Absolute paths of the files on disk that hold this CID now, as the index says (empty when every
   * copy was deleted or evicted).
   */
  paths: string[]
}

export interface FollowResult {
  /** Files referenced (again) from their current path. */
  referenced: number
  /** Stale references removed (blocks whose file was gone or changed). */
  dropped: number
  /** CIDs that could not be made readable from any of their paths, with the last reason. */
  failed: { cid: string; path?: string; error: Error }[]
}

/**
 * Make the local node's in-place references follow the index after a scan (renames, deletions,
 * evictions, changes). Kubo's filestore keeps the first path it saw for a block: after `a` is renamed
 * to `b`, or when the copy it saw of a duplicated file is deleted, the CID stops reading although the
 * bytes are on disk. For each touched CID: drop the references that no longer read, and when the CID
 * is not whole any more, reference it from a current path (checking the node computes the same CID).
 *
 * Known limit: two different files that share an identical 1 MiB chunk share one reference for it;
 * when that reference is dropped for one file, the other file is repaired only when it is touched too
 * (a full `verifyReferences` pass shows no such case, since the dropped block is simply absent).
 */
export async function followIndex(
  node: IpfsNode,
  changes: Iterable<PathsOfCid>,
  opts: { signal?: AbortSignal; concurrency?: number } = {},
): Promise<FollowResult> {
  const result: FollowResult = { referenced: 0, dropped: 0, failed: [] }
  // One CID once, with every path it was named with.
  const byCid = new Map<string, Set<string>>()
  for (const c of changes) {
    const paths = byCid.get(c.cid) ?? new Set<string>()
    byCid.set(c.cid, paths)
    for (const p of c.paths) paths.add(p)
  }
  // Drop what no longer reads, a few CIDs at a time (each reads its blocks back through the node).
  const queue = [...byCid]
  const incomplete: { cid: string; paths: string[] }[] = []
  const worker = async () => {
    for (let next = queue.shift(); next; next = queue.shift()) {
      opts.signal?.throwIfAborted()
      const [cid, paths] = next
      try {
        const { dropped, complete } = await node.dropReference(cid, { signal: opts.signal })
        result.dropped += dropped
        if (!complete && paths.size > 0) incomplete.push({ cid, paths: [...paths] })
      } catch (err) {
        if (!isCidmirrorError(err)) throw err
        result.failed.push({ cid, error: err })
      }
    }
  }
  await Promise.all(Array.from({ length: Math.max(1, opts.concurrency ?? 2) }, worker))

  // Reference the rest from a current path, many per request; a path that is gone or holds other
  // bytes by now gives way to the CID's next path.
  let round = incomplete.map((c) => ({ ...c, tried: 0 }))
  const last = new Map<string, { path: string; error: Error }>()
  while (round.length > 0) {
    const files = round.map((c) => ({ path: c.paths[c.tried]!, expect: c.cid }))
    const next: typeof round = []
    let i = 0
    for await (const r of node.referenceFiles(files, { signal: opts.signal })) {
      const c = round[i++]!
      if ('cid' in r) {
        result.referenced++
        continue
      }
      last.set(c.cid, { path: r.path, error: r.error })
      if (c.tried + 1 < c.paths.length) next.push({ ...c, tried: c.tried + 1 })
      else result.failed.push({ cid: c.cid, ...last.get(c.cid)! })
    }
    round = next
  }
  return result
}
