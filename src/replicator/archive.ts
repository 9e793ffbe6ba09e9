/**
 * The archive half of replication (issue 13: files that leave the mirror stay in the archive): what
 * left a mirror's tree, from the index's past versions, as entity items of their own. Tree targets
 * keep each as a pin of its own before their tree pin moves on (replicator.ts `#archiveOn`), entity
 * targets keep them as they keep any file, and Filecoin never removes a piece.
 */
import type { MirrorIndex } from '../index/index.ts'
import type { ReplicationItem } from './target.ts'

/**
 * Items of the files that left `index`'s tree in the scans after `after` up to `upTo` and are not in
 * the current tree under another path (the tree pin holds those), one per CID. Symlinks and
 * directories are left out: their nodes are small, and every directory node stays in the block map.
 * `heldAt`: only those the tree of that scan held (what a tree pin on its root holds now).
 */
export async function archivedItems(
  index: MirrorIndex,
  after: number,
  upTo: number,
  opts: { heldAt?: number; now?: number } = {},
): Promise<ReplicationItem[]> {
  const now = opts.now ?? Date.now()
  const out: ReplicationItem[] = []
  const seen = new Set<string>()
  for await (const v of index.versions({ after, upTo })) {
    if (v.kind !== 'file' || seen.has(v.cid)) continue
    if (opts.heldAt !== undefined && v.firstScan > opts.heldAt) continue
    seen.add(v.cid)
    if ((await index.pathsOf(v.cid)).length > 0) continue
    out.push({
      key: `cid:${v.cid}`,
      scope: 'entity',
      cid: v.cid,
      mirror: index.mirror,
      bytes: v.size,
      archived: { since: now },
    })
  }
  return out
}
