import type { MirrorConfig } from '../config/types.ts'
import type { RunContext } from '../provider.ts'
import { BaseProvider, type Run } from './base.ts'
import { lastGroup } from './log-scan.ts'

/** What a command job finds in its environment: `CIDMIRROR_*` and tunasync's `TUNASYNC_*` twins, then `env`, then hooks'. */
export function commandEnv(mirror: MirrorConfig, ctx: RunContext): Record<string, string> {
  const vars: Record<string, string> = {
    MIRROR_NAME: mirror.name,
    WORKING_DIR: mirror.mirrorDir,
    UPSTREAM_URL: mirror.upstream,
    LOG_DIR: mirror.logDir,
    LOG_FILE: ctx.logFile,
  }
  const env: Record<string, string> = {}
  for (const [k, v] of Object.entries(vars)) {
    env[`CIDMIRROR_${k}`] = v
    env[`TUNASYNC_${k}`] = v
  }
  return { ...env, ...mirror.env, ...ctx.env }
}

/** Any program, through `sh -c`, in the mirror's folder. */
export class CommandProvider extends BaseProvider {
  readonly kind = 'command' as const

  protected async sync(run: Run): Promise<void> {
    await run.exec({
      label: 'command',
      file: 'sh',
      args: ['-c', this.mirror.command as string],
      env: commandEnv(this.mirror, run.ctx),
    })
  }

  protected sizeFrom(log: string): string | undefined {
    return this.mirror.sizePattern ? lastGroup(log, this.mirror.sizePattern) : undefined
  }
}
