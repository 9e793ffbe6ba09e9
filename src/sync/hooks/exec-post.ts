import { execa } from 'execa'
import { splitCommand } from '../command-line.ts'
import { CommandLineError } from '../errors.ts'
import type { HookContext, JobHook } from './hook.ts'

/**
 * `exec_on_success` / `exec_on_failure` (tunasync's exec_post_hook.go): runs a command after a
 * successful or failed attempt. The command line is split as a shell would split words (quotes and
 * backslashes), without a shell, as tunasync does. Its environment carries the job's
 * `TUNASYNC_*` variables, their `CIDMIRROR_*` twins, and the exit status:
 * `TUNASYNC_JOB_EXIT_STATUS` / `CIDMIRROR_JOB_EXIT_STATUS` = `success` | `failure`, plus
 * `CIDMIRROR_JOB_EXIT_CODE` (the provider's exit code when it had one) and `CIDMIRROR_JOB_ERROR`.
 * Its output goes to the attempt's log. A non-zero exit fails the run.
 */
export function createExecPostHook(on: 'success' | 'failure', command: string): JobHook {
  // The config checked the command when it loaded (a `commandList` value).
  const argv = splitCommand(command)
  if (argv.length === 0) throw new CommandLineError(`exec_on_${on}: empty command`)
  const run = async (ctx: HookContext): Promise<void> => {
    const status = on === 'success' ? 'success' : 'failure'
    const env: Record<string, string> = {}
    const vars: Record<string, string> = {
      MIRROR_NAME: ctx.job.name,
      WORKING_DIR: ctx.job.workingDir,
      UPSTREAM_URL: ctx.job.upstream,
      LOG_DIR: ctx.job.logDir,
      LOG_FILE: ctx.logFile,
      JOB_EXIT_STATUS: status,
    }
    for (const [k, v] of Object.entries(vars)) {
      env[`TUNASYNC_${k}`] = v
      env[`CIDMIRROR_${k}`] = v
    }
    env.CIDMIRROR_JOB_EXIT_CODE = on === 'success' ? '0' : String(ctx.exitCode ?? '')
    env.CIDMIRROR_JOB_ERROR = ctx.error?.message ?? ''
    const out = ctx.logFile === '/dev/null' ? 'ignore' : { file: ctx.logFile, append: true }
    const [file, ...args] = argv as [string, ...string[]]
    try {
      await execa(file, args, { env, stdin: 'ignore', stdout: out, stderr: out, cancelSignal: ctx.signal })
    } catch (err) {
      const e = err as { exitCode?: number; shortMessage?: string; message: string }
      throw new Error(
        e.exitCode !== undefined ? `${command}: exit status ${e.exitCode}` : (e.shortMessage ?? e.message),
      )
    }
  }
  return on === 'success'
    ? { name: `exec-on-success(${command})`, postSuccess: run }
    : { name: `exec-on-failure(${command})`, postFail: run }
}
