import { join } from 'node:path'
import {
  checkHttpUpstream,
  checkUpstream,
  type HttpCheckLimits,
  isHttpUpstream,
  isRsyncUrl,
  type UpstreamChecker,
  writeExcludeList,
} from '../cache/index.ts'
import type { Database } from '../db.ts'
import { openMirrorIndex } from '../index/index.ts'
import type { JobHook, MirrorConfig } from '../sync/index.ts'

/** Where the daemon keeps a mirror's exclude list: beside the database (`<path>-exclude/<mirror>.list`). */
export function excludeFileOf(databasePath: string, mirror: string): string {
  return join(`${databasePath}-exclude`, `${mirror}.list`)
}

/** The variable a command provider finds the exclude list's path in. */
export const EXCLUDE_ENV = 'CIDMIRROR_EXCLUDE_FROM'

/** Unchecked paths named in the log line (the count is always there). */
const NAMED_UNCHECKED = 5

/**
 * How the upstream of `mirror` is asked about its evicted paths: rsync providers, and command
 * providers whose upstream is an rsync URL, by `rsync --list-only --files-from`; command providers
 * with an http(s) upstream by a HEAD per path; any other upstream cannot be asked (undefined).
 */
function upstreamChecker(
  mirror: MirrorConfig,
  signal: AbortSignal,
  limits: HttpCheckLimits | undefined,
): UpstreamChecker | undefined {
  const rsyncProvider = mirror.provider === 'rsync' || mirror.provider === 'two-stage-rsync'
  if (rsyncProvider || isRsyncUrl(mirror.upstream)) {
    const env: Record<string, string> = { ...mirror.env }
    if (mirror.username) env.USER = mirror.username
    if (mirror.password) env.RSYNC_PASSWORD = mirror.password
    const args: string[] = []
    if (mirror.rsyncTimeoutMs > 0) args.push(`--timeout=${Math.ceil(mirror.rsyncTimeoutMs / 1000)}`)
    if (mirror.useIPv6) args.push('-6')
    else if (mirror.useIPv4) args.push('-4')
    // A command provider's `command` is its script, not an rsync binary.
    const rsync = rsyncProvider ? (mirror.command ?? 'rsync') : 'rsync'
    return (evicted) => checkUpstream(evicted, { upstream: mirror.upstream, rsync, env, args, signal })
  }
  if (isHttpUpstream(mirror.upstream))
    return (evicted) => checkHttpUpstream(evicted, { ...limits, base: mirror.upstream, signal })
  return undefined
}

/**
 * The pre-exec step that keeps a sync from fetching evicted files again (DESIGN promise 4): the
 * evicted paths of the mirror go to `file` as rsync exclude rules; rsync providers get
 * `--exclude-from=FILE`, every provider gets the path in `CIDMIRROR_EXCLUDE_FROM`. It first asks the
 * upstream about those paths (upstreamChecker): a deleted one is marked so that this sync's scan
 * records it deleted, a changed one is left out of the list and fetched. A mirror whose upstream
 * cannot be asked says so once (per hook: at start and after a reload). An http(s) upstream is asked
 * within `httpLimits` (`[cache] upstream_check_*`, readUpstreamCheck; default the check's own).
 * `src/sync` knows nothing of evictions: the hook lives here, in the daemon's wiring (jobs.ts's seam).
 */
export function createExcludeHook(
  db: Database,
  mirror: MirrorConfig,
  file: string,
  httpLimits?: HttpCheckLimits,
): JobHook {
  const rsync = mirror.provider === 'rsync' || mirror.provider === 'two-stage-rsync'
  let toldSkipped = false
  return {
    name: 'exclude-evicted',
    async preExec(ctx) {
      const index = openMirrorIndex(db, mirror.name, mirror.mirrorDir)
      const checker = upstreamChecker(mirror, ctx.signal, httpLimits)
      const r = await writeExcludeList(index, file, checker)
      if (rsync) ctx.extraArgs.push(`--exclude-from=${r.file}`)
      ctx.env[EXCLUDE_ENV] = r.file
      if (!checker && r.excluded > 0 && !toldSkipped) {
        toldSkipped = true
        ctx.log.info(
          { upstream: mirror.upstream },
          'upstream check of evicted files skipped: the upstream is not an rsync or http(s) URL, so evicted files stay excluded whether or not it deleted or changed them',
        )
      }
      const unchecked = r.check?.unchecked ?? []
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
                  ...(unchecked.length > 0
                    ? {
                        upstreamUnchecked: unchecked.length,
                        unchecked: unchecked.slice(0, NAMED_UNCHECKED).map((u) => `${u.path}: ${u.why}`),
                      }
                    : {}),
                }
              : {}),
          },
          'evicted files excluded from the sync',
        )
    },
  }
}
