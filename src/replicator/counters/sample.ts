/**
 * A sampler of a mirror's files for retrieval probes: a few file CIDs drawn uniformly from the
 * index's present and evicted records (reservoir sampling in one pass, so memory stays at `count`).
 * Probing files beside the root catches a holder that answers the root block but lost the tree.
 */
import type { MirrorIndex } from '../../index/index.ts'
import type { ReplicationItem } from '../target.ts'

export function indexSampler(
  indexOf: (mirror: string) => MirrorIndex | undefined,
  random: () => number = Math.random,
): (item: ReplicationItem, count: number) => Promise<string[]> {
  return async (item, count) => {
    const idx = item.mirror === undefined ? undefined : indexOf(item.mirror)
    if (!idx || count <= 0) return []
    const picked: string[] = []
    let seen = 0
    for await (const r of idx.records()) {
      if (r.kind !== 'file' || r.size === 0) continue
      seen++
      if (picked.length < count) picked.push(r.cid)
      else {
        const j = Math.floor(random() * seen)
        if (j < count) picked[j] = r.cid
      }
    }
    return [...new Set(picked)]
  }
}
