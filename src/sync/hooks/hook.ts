import type { Logger } from 'pino'
import { CidmirrorError } from '../../errors.ts'
import type { RunResult } from '../provider.ts'

/**
 * Hooks around a sync run (tunasync's worker/hooks.go):
 *
 *     job start -> pre-job -> [ pre-exec -> run -> post-exec -> post-success | post-fail ] per attempt
 *
 * Pre hooks run in registration order, post hooks in reverse. A hook that throws ends the run as
 * failed ("error exec hook post-success: ..."), with no further attempt.
 *
 * Seam for the janitor's exclude list of evicted files: a `preExec` hook that writes the list to a
 * file and pushes `--exclude-from=FILE` onto `ctx.extraArgs` (rsync providers pass those to rsync)
 * or sets a variable in `ctx.env` (command providers). The daemon registers it (src/daemon/).
 */
export interface JobHook {
  readonly name: string
  preJob?(ctx: HookContext): Promise<void> | void
  preExec?(ctx: HookContext): Promise<void> | void
  postExec?(ctx: HookContext): Promise<void> | void
  postSuccess?(ctx: HookContext): Promise<void> | void
  postFail?(ctx: HookContext): Promise<void> | void
}

export type HookStage = 'pre-job' | 'pre-exec' | 'post-exec' | 'post-success' | 'post-fail'

/** What a hook sees of its job. */
export interface HookJob {
  readonly name: string
  readonly kind: string
  readonly upstream: string
  readonly workingDir: string
  readonly logDir: string
}

/** One per run; attempt-scoped fields are reset before each attempt's pre-exec hooks. */
export interface HookContext {
  readonly job: HookJob
  /** 0 for the first attempt. */
  attempt: number
  /** This attempt's log file; `/dev/null` unless a hook (log rotation) sets one in pre-exec. */
  logFile: string
  /** Extra environment for the provider (attempt-scoped). */
  env: Record<string, string>
  /** Extra provider arguments, e.g. `--exclude-from=FILE` (attempt-scoped). */
  extraArgs: string[]
  /** The attempt's failure, in post-exec and post-fail. */
  error?: Error
  /** The provider's exit code when it failed with one. */
  exitCode?: number
  /** The attempt's result, in post-exec and post-success after a success. */
  result?: RunResult
  /** Added to the job status after a success (e.g. `details.index`). */
  details: Record<string, unknown>
  /** Aborts when the run is stopped. */
  readonly signal: AbortSignal
  readonly log: Logger
}

const METHOD = {
  'pre-job': 'preJob',
  'pre-exec': 'preExec',
  'post-exec': 'postExec',
  'post-success': 'postSuccess',
  'post-fail': 'postFail',
} as const

/** A hook stage failed: the run ends as failed with this message. */
export class HookError extends CidmirrorError {
  readonly stage: HookStage
  readonly hook: string
  constructor(stage: HookStage, hook: string, cause: unknown) {
    super('HOOK', `error exec hook ${stage}: ${(cause as Error)?.message ?? String(cause)}`, { cause })
    this.name = 'HookError'
    this.stage = stage
    this.hook = hook
  }
}

/** Runs one stage: pre stages in registration order, post stages reversed. Throws HookError. */
export async function runHookStage(
  hooks: readonly JobHook[],
  stage: HookStage,
  ctx: HookContext,
): Promise<void> {
  const ordered = stage.startsWith('post') ? [...hooks].reverse() : hooks
  const method = METHOD[stage]
  for (const hook of ordered) {
    const fn = hook[method]
    if (!fn) continue
    try {
      await fn.call(hook, ctx)
    } catch (err) {
      throw new HookError(stage, hook.name, err)
    }
  }
}
