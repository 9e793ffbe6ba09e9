import type { HashPool } from '../cid/index.ts'
import type { Database } from '../db.ts'
import { openMirrorIndex } from '../index/index.ts'
import type { JobHook } from '../sync/index.ts'

/** What the index room's face gives per mirror (`openMirrorIndex(db, mirror, root)` in src/index). */
export interface MirrorIndexer {
  scan(opts?: { signal?: AbortSignal; pool?: HashPool }): Promise<object>
}
export type OpenMirrorIndex = (db: Database, mirror: string, root: string) => MirrorIndexer

/**
 * The index step of a sync: after a successful run, the incremental CID index of the mirror's tree.
 * Its summary goes into the job status as `details.index` (visible in `GET /workers/:id/jobs` and
 * `cidmirror jobs list`). A failed index fails the run ("error exec hook post-success: ..."), as any
 * hook does; the synced tree stays, and the next run indexes again. `src/sync` knows nothing of CIDs:
 * this hook lives here, in the daemon's wiring.
 */
export function createIndexHook(open: OpenMirrorIndex, db: Database, mirror: string, root: string): JobHook {
  return {
    name: 'index',
    async postSuccess(ctx) {
      const started = Date.now()
      const summary = await open(db, mirror, root).scan({ signal: ctx.signal })
      ctx.details.index = summary
      ctx.log.info({ index: summary, ms: Date.now() - started }, 'mirror indexed')
    },
  }
}

/** The index room's face, typed as this hook needs it. */
export const defaultIndexer: OpenMirrorIndex = openMirrorIndex
