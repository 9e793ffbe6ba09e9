import { join } from 'node:path'
import { writeExcludeList } from '../cache/index.ts'
import type { Database } from '../db.ts'
import { openMirrorIndex } from '../index/index.ts'
import type { JobHook, MirrorConfig } from '../sync/index.ts'

/** Where the daemon keeps a mirror's exclude list: beside the database (`<path>-exclude/<mirror>.list`). */
export function excludeFileOf(databasePath: string, mirror: string): string {
  return join(`${databasePath}-exclude`, `${mirror}.list`)
}

/** The variable a command provider finds the exclude list's path in. */
export const EXCLUDE_ENV = 'CIDMIRROR_EXCLUDE_FROM'

/**
 * The pre-exec step that keeps a sync from fetching evicted files again (DESIGN promise 4): the
 * evicted paths of the mirror go to `file` as rsync exclude rules; rsync providers get
 * `--exclude-from=FILE`, every provider gets the path in `CIDMIRROR_EXCLUDE_FROM`. For rsync
 * upstreams it first asks the upstream about those paths (`rsync --list-only --files-from`): a
 * deleted one is marked so that this sync's scan records it deleted, a changed one is fetched. `src/sync`
 * knows nothing of evictions: the hook lives here, in the daemon's wiring (jobs.ts's seam).
 */
export function createExcludeHook(db: Database, mirror: MirrorConfig, file: string): JobHook {
  const rsync = mirror.provider === 'rsync' || mirror.provider === 'two-stage-rsync'
  return {
    name: 'exclude-evicted',
    async preExec(ctx) {
      const index = openMirrorIndex(db, mirror.name, mirror.mirrorDir)
      const env: Record<string, string> = { ...mirror.env }
      if (mirror.username) env.USER = mirror.username
      if (mirror.password) env.RSYNC_PASSWORD = mirror.password
      const args: string[] = []
      if (mirror.rsyncTimeoutMs > 0) args.push(`--timeout=${Math.ceil(mirror.rsyncTimeoutMs / 1000)}`)
      if (mirror.useIPv6) args.push('-6')
      else if (mirror.useIPv4) args.push('-4')
      const r = await writeExcludeList(
        index,
        file,
        rsync
          ? { upstream: mirror.upstream, rsync: mirror.command ?? 'rsync', env, args, signal: ctx.signal }
          : undefined,
      )
      if (rsync) ctx.extraArgs.push(`--exclude-from=${r.file}`)
      ctx.env[EXCLUDE_ENV] = r.file
      if (r.excluded > 0 || r.check)
        ctx.log.info(
          {
            excluded: r.excluded,
            file: r.file,
            ...(r.check
              ? {
                  upstreamSame: r.check.same,
                  upstreamDeleted: r.check.deleted.length,
                  upstreamChanged: r.check.changed.length,
                  ...(r.check.error ? { upstreamError: r.check.error } : {}),
                }
              : {}),
          },
          'evicted files excluded from the sync',
        )
    },
  }
}
