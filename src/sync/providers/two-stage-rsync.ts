import type { MirrorConfig, Stage1Profile } from '../config/types.ts'
import { BaseProvider, type Run } from './base.ts'
import { lastGroup, RSYNC_SIZE } from './log-scan.ts'
import { describeRsyncExit, RSYNC_DEFAULTS, rsyncBinary, rsyncCommonArgs, rsyncEnv } from './rsync.ts'

/**
 * Stage-1 excludes (tunasync's, after Debian's ftpsync): stage 1 fetches the packages and leaves the
 * indexes that point at them alone; stage 2 is the full sync that brings the new indexes and deletes.
 */
export const STAGE1_PROFILES: Readonly<Record<Stage1Profile, readonly string[]>> = {
  debian: [
    '--include=*.diff/',
    '--include=by-hash/',
    '--exclude=*.diff/Index',
    '--exclude=Contents*',
    '--exclude=Packages*',
    '--exclude=Sources*',
    '--exclude=Release*',
    '--exclude=InRelease',
    '--exclude=i18n/*',
    '--exclude=dep11/*',
    '--exclude=installer-*/current',
    '--exclude=ls-lR*',
  ],
  'debian-oldstyle': [
    '--exclude=Packages*',
    '--exclude=Sources*',
    '--exclude=Release*',
    '--exclude=InRelease',
    '--exclude=i18n/*',
    '--exclude=ls-lR*',
    '--exclude=dep11/*',
  ],
}

/**
 * Stage 1: rsync's defaults without deletes or delayed updates, and no rsync_options (an option like
 * --delete-excluded would drop the indexes).
 */
const STAGE2_ONLY = new Set(['--delete', '--delete-after', '--delay-updates'])
const STAGE1_BASE = RSYNC_DEFAULTS.filter((flag) => !STAGE2_ONLY.has(flag))

export function stageArgs(mirror: MirrorConfig, stage: 1 | 2, extraArgs: readonly string[]): string[] {
  const options =
    stage === 1
      ? [...STAGE1_BASE, ...STAGE1_PROFILES[mirror.stage1Profile]]
      : [...(mirror.rsyncOverride ?? RSYNC_DEFAULTS), ...mirror.rsyncOptions]
  return [...options, ...rsyncCommonArgs(mirror), ...extraArgs, mirror.upstream, mirror.mirrorDir]
}

export class TwoStageRsyncProvider extends BaseProvider {
  readonly kind = 'two-stage-rsync' as const

  protected async sync(run: Run): Promise<void> {
    const m = this.mirror
    for (const stage of [1, 2] as const) {
      const label = `rsync stage ${stage}`
      await run.exec({
        label,
        file: rsyncBinary(m),
        args: stageArgs(m, stage, run.ctx.extraArgs),
        env: rsyncEnv(m, run.ctx.env),
        describeExit: (code, log) => describeRsyncExit(label, code, log),
      })
    }
  }

  protected sizeFrom(log: string): string | undefined {
    return lastGroup(log, this.mirror.sizePattern ?? RSYNC_SIZE)
  }
}
