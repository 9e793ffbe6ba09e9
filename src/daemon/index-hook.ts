import type { ScanSummary } from '../index/index.ts'
import type { JobHook } from '../sync/index.ts'

/**
 * Brings the index of `mirror` (tree at `root`) up to date and resolves with the committed scan's
 * summary. The daemon makes one over its database and its shared hashing pool.
 */
export type IndexMirror = (mirror: string, root: string, signal: AbortSignal) => Promise<ScanSummary>

/**
 * The index step of a sync: after a successful run, the incremental CID index of the mirror's tree.
 * Its summary goes into the job status as `details.index` (visible in `GET /workers/:id/jobs` and
 * `cidmirror jobs list`). A failed index fails the run ("error exec hook post-success: ..."), as any
 * hook does; the synced tree stays, and the next run indexes again. `src/sync` knows nothing of CIDs:
 * this hook lives here, in the daemon's wiring.
 */
export function createIndexHook(indexMirror: IndexMirror, mirror: string, root: string): JobHook {
  return {
    name: 'index',
    async postSuccess(ctx) {
      const started = Date.now()
      const summary = await indexMirror(mirror, root, ctx.signal)
      ctx.details.index = summary
      ctx.log.info({ index: summary, ms: Date.now() - started }, 'mirror indexed')
    },
  }
}
