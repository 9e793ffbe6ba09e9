import type { MirrorConfig } from '../config/types.ts'
import { BaseProvider, type Run } from './base.ts'
import { lastGroup, RSYNC_SIZE } from './log-scan.ts'
import { rsyncExitMeaning } from './rsync-exit.ts'

/** tunasync's rsync defaults, before `--timeout`, `-4`/`-6`, `--exclude-from` and rsync_options. */
export const RSYNC_DEFAULTS: readonly string[] = [
  '-aHvh',
  '--no-o',
  '--no-g',
  '--stats',
  '--filter',
  'risk .~tmp~/',
  '--exclude',
  '.~tmp~/',
  '--delete',
  '--delete-after',
  '--delay-updates',
  '--safe-links',
]

/** `--timeout=N`, `-6` or `-4`, `--exclude-from FILE`: what every rsync run of a mirror gets after its base flags. */
export function rsyncCommonArgs(mirror: MirrorConfig): string[] {
  const out: string[] = []
  if (mirror.rsyncTimeoutMs > 0) out.push(`--timeout=${Math.ceil(mirror.rsyncTimeoutMs / 1000)}`)
  if (mirror.useIPv6) out.push('-6')
  else if (mirror.useIPv4) out.push('-4')
  if (mirror.excludeFile) out.push('--exclude-from', mirror.excludeFile)
  return out
}

/** The full argument list of the rsync provider (tunasync's order), hooks' arguments last, then source and destination. */
export function rsyncArgs(mirror: MirrorConfig, extraArgs: readonly string[]): string[] {
  const base = mirror.rsyncOverride ?? RSYNC_DEFAULTS
  const options = mirror.rsyncOverrideOnly
    ? [...base]
    : [...base, ...rsyncCommonArgs(mirror), ...mirror.rsyncOptions]
  return [...options, ...extraArgs, mirror.upstream, mirror.mirrorDir]
}

/** `USER` and `RSYNC_PASSWORD` for daemon authentication, over the mirror's env, under the hooks' env. */
export function rsyncEnv(mirror: MirrorConfig, hookEnv: Record<string, string>): Record<string, string> {
  const env: Record<string, string> = { ...mirror.env }
  if (mirror.username) env.USER = mirror.username
  if (mirror.password) env.RSYNC_PASSWORD = mirror.password
  return { ...env, ...hookEnv }
}

/** `rsync exited 23: partial transfer due to error (rsync: [sender] ...)`. */
export function describeRsyncExit(label: string, code: number, log: string): string {
  const meaning = rsyncExitMeaning(code)
  const reason = rsyncReason(log)
  return `${label} exited ${code}${meaning ? `: ${meaning}` : ''}${reason ? ` (${reason})` : ''}`
}

/** rsync's own last complaint in the log (`@ERROR: ...`, `rsync: ...`), without the generic `rsync error:` line. */
function rsyncReason(log: string): string | undefined {
  const lines = log.split('\n').filter((l) => /^(@ERROR|rsync: )/.test(l))
  return lines.pop()?.trim().slice(0, 300)
}

export function rsyncBinary(mirror: MirrorConfig): string {
  return mirror.command ?? 'rsync'
}

export class RsyncProvider extends BaseProvider {
  readonly kind = 'rsync' as const

  protected async sync(run: Run): Promise<void> {
    const m = this.mirror
    await run.exec({
      label: 'rsync',
      file: rsyncBinary(m),
      args: rsyncArgs(m, run.ctx.extraArgs),
      env: rsyncEnv(m, run.ctx.env),
      describeExit: (code, log) => describeRsyncExit('rsync', code, log),
    })
  }

  protected sizeFrom(log: string): string | undefined {
    return lastGroup(log, this.mirror.sizePattern ?? RSYNC_SIZE)
  }
}
