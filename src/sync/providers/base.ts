import { mkdirSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { formatDuration } from '../../util/units.ts'
import type { MirrorConfig, ProviderKind } from '../config/types.ts'
import { type Leftovers, type Provider, ProviderError, type RunContext, type RunResult } from '../provider.ts'
import { allMatches, logOffset, readLogSince } from './log-scan.ts'
import { appendLog, runProcess } from './process.ts'
import { endLeftovers } from './run-record.ts'

/** One run in progress: what `sync()` of a provider gets. */
export interface Run {
  ctx: RunContext
  /** Runs a program; resolves on an exit code counted as success, else throws ProviderError. */
  exec(step: Step): Promise<void>
}

export interface Step {
  /** Shown in messages: `rsync`, `rsync stage 1`, `command`. */
  label: string
  file: string
  args: string[]
  env: Record<string, string>
  /** Message for a failing exit code (default `LABEL exited N`); `log` is what this step wrote. */
  describeExit?: (code: number, log: string) => string
}

/** The part every provider shares: working folders, deadline, log offsets, fail_on_match and size. */
export abstract class BaseProvider implements Provider {
  abstract readonly kind: ProviderKind
  readonly name: string
  readonly upstream: string
  readonly workingDir: string
  readonly logDir: string
  readonly mirror: MirrorConfig

  constructor(mirror: MirrorConfig) {
    this.mirror = mirror
    this.name = mirror.name
    this.upstream = mirror.upstream
    this.workingDir = mirror.mirrorDir
    this.logDir = mirror.logDir
  }

  /** `<log_dir>/<name>.run`: the record of the run in progress (run-record.ts). */
  get recordFile(): string {
    return join(this.logDir, `${this.name}.run`)
  }

  #ending: Promise<Leftovers | undefined> | undefined
  /** What was ended and not yet written to a run's log. */
  #unlogged: Leftovers | undefined

  endLeftovers(): Promise<Leftovers | undefined> {
    // One at a time: the worker's call at start-up and the first run's share it.
    this.#ending ??= endLeftovers(this.recordFile, this.mirror.killGraceMs)
      .then((left) => {
        if (left) this.#unlogged = left
        return left
      })
      .finally(() => {
        this.#ending = undefined
      })
    return this.#ending
  }

  /** The provider's own work; throws ProviderError. */
  protected abstract sync(run: Run): Promise<void>

  /** The size after a successful run, from this run's log text. */
  protected abstract sizeFrom(log: string): string | undefined

  async run(ctx: RunContext): Promise<RunResult> {
    const m = this.mirror
    const deadline = m.timeoutMs > 0 ? Date.now() + m.timeoutMs : undefined
    try {
      mkdirSync(dirname(ctx.logFile), { recursive: true })
      mkdirSync(this.logDir, { recursive: true })
      mkdirSync(this.workingDir, { recursive: true })
    } catch (err) {
      throw new ProviderError(`cannot create folders: ${(err as Error).message}`, {
        code: 'SYNC_SPAWN',
        cause: err,
      })
    }
    await this.endLeftovers()
    const left = this.#unlogged
    this.#unlogged = undefined
    if (left) {
      appendLog(
        ctx.logFile,
        `cidmirror: ended ${left.pids.length} process${left.pids.length > 1 ? 'es' : ''} (PID ${left.pids.join(', ')}) left by a run of daemon ${left.daemonPid} started ${left.startedAt}, with ${left.signal}`,
      )
    }
    const offset = logOffset(ctx.logFile)
    const run: Run = { ctx, exec: (step) => this.exec(ctx, deadline, step) }
    try {
      await this.sync(run)
      const log = readLogSince(ctx.logFile, offset)
      if (m.failOnMatch) {
        const matches = allMatches(log, m.failOnMatch)
        if (matches.length > 0) {
          const first = (matches[0] as RegExpExecArray)[0].trim().slice(0, 200)
          throw new ProviderError(
            `fail_on_match ${m.failOnMatch} matched ${matches.length} time${matches.length > 1 ? 's' : ''} in the log (first: ${JSON.stringify(first)})`,
            { code: 'SYNC_FAIL_ON_MATCH' },
          )
        }
      }
      const size = this.sizeFrom(log)
      return size ? { size } : {}
    } catch (err) {
      if (err instanceof ProviderError) {
        try {
          appendLog(ctx.logFile, `cidmirror: ${err.message}`)
        } catch {}
      }
      throw err
    }
  }

  private async exec(ctx: RunContext, deadline: number | undefined, step: Step): Promise<void> {
    const m = this.mirror
    appendLog(ctx.logFile, `cidmirror: ${step.label}: ${[step.file, ...step.args].map(quote).join(' ')}`)
    const offset = logOffset(ctx.logFile)
    const out = await runProcess({
      file: step.file,
      args: step.args,
      cwd: this.workingDir,
      env: step.env,
      logFile: ctx.logFile,
      signal: ctx.signal,
      deadline,
      killGraceMs: m.killGraceMs,
      memoryLimit: m.memoryLimit,
      recordFile: this.recordFile,
    })
    if (out.ended === 'SIGKILL') {
      appendLog(
        ctx.logFile,
        `cidmirror: ${step.label}: processes outlived TERM by kill_grace (${formatDuration(m.killGraceMs)}): KILLed`,
      )
    }
    if (out.timedOut) {
      throw new ProviderError(`timed out after ${formatDuration(m.timeoutMs)}`, {
        code: 'SYNC_TIMEOUT',
      })
    }
    if (out.aborted) {
      const reason = ctx.signal.reason
      const why = typeof reason === 'string' ? reason : reason instanceof Error ? reason.message : ''
      throw new ProviderError(why && !/aborted/i.test(why) ? `stopped: ${why}` : 'stopped', {
        code: 'SYNC_ABORTED',
        cause: reason,
      })
    }
    if (out.spawnError) {
      throw new ProviderError(`cannot run ${step.file}: ${out.spawnError.message}`, {
        code: 'SYNC_SPAWN',
        cause: out.spawnError,
      })
    }
    if (out.signal) {
      throw new ProviderError(`${step.label} killed by ${out.signal}`, { code: 'SYNC_SIGNAL' })
    }
    const code = out.exitCode ?? 0
    if (code === 0) return
    if (m.successExitCodes.includes(code)) {
      appendLog(ctx.logFile, `cidmirror: exit code ${code} counted as success (success_exit_codes)`)
      return
    }
    const log = readLogSince(ctx.logFile, offset, 256 * 1024)
    const message = step.describeExit
      ? step.describeExit(code, log)
      : `${step.label} exited ${code}${lastLine(log)}`
    throw new ProviderError(message, {
      code: 'SYNC_EXIT',
      exitCode: code,
    })
  }
}

/** ` (last output: "...")`, or nothing. */
function lastLine(log: string): string {
  const line = log
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '')
    .pop()
  return line ? ` (last output: ${JSON.stringify(line.slice(0, 200))})` : ''
}

function quote(arg: string): string {
  return /^[\w@%+=:,./-]+$/.test(arg) ? arg : `'${arg.replace(/'/g, `'\\''`)}'`
}
