import type { ErrorKey } from '../error-codes.ts'
import { CidmirrorError } from '../errors.ts'

/**
 * The seam between the job state machine and whatever fetches a mirror (tunasync's provider.go).
 * One implementation per file in `providers/`; `createProvider()` in `providers/index.ts` picks one.
 */
export interface RunContext {
  /** Absolute path of this run's log file; stdout and stderr of every child are appended there. */
  logFile: string
  /** Aborts the run: TERM to the whole process group, KILL after the grace period. */
  signal: AbortSignal
  /** Extra environment from hooks (e.g. the exclude list of evicted files). */
  env: Record<string, string>
  /** Extra rsync arguments added by pre-exec hooks (e.g. `--exclude-from=FILE`); ignored by `command`. */
  extraArgs: string[]
}

export interface RunResult {
  /** Human size of the mirror after the run (`"5.24M"`), or undefined when not known. */
  size?: string
}

/** The codes of a failed run: the `SYNC_` rows of the table (`SYNC_EXIT` sets `exitCode`). */
export type ProviderErrorKey = Extract<ErrorKey, `SYNC_${string}`>

/**
 * A failed run; `options.code` is its key in the table. `message` is what the job status shows as its error
 * (`rsync exited 23: partial transfer due to error`).
 */
export class ProviderError extends CidmirrorError {
  readonly exitCode: number | undefined
  constructor(message: string, options: { code: ProviderErrorKey; exitCode?: number; cause?: unknown }) {
    super(options.code, message, { cause: options.cause })
    this.name = 'ProviderError'
    this.exitCode = options.exitCode
  }
}

/** What a previous daemon's run of a job left alive, and what it took to end it. */
export interface Leftovers {
  /** The processes found alive. */
  pids: number[]
  /** The last signal it took to end them. */
  signal: 'SIGTERM' | 'SIGKILL'
  /** The daemon that started that run, and when. */
  daemonPid: number
  startedAt: string
}

export interface Provider {
  readonly name: string
  readonly kind: 'rsync' | 'two-stage-rsync' | 'command'
  readonly upstream: string
  /** Folder the mirror lives in (created by `run` when missing). */
  readonly workingDir: string
  /** Folder of this mirror's logs. */
  readonly logDir: string
  /**
   * Runs one sync. Resolves on success, rejects with ProviderError on failure, abort or timeout (the
   * provider enforces the mirror's `timeoutMs` itself, over all stages). Never rejects with anything else
   * for a failure of the synced program.
   */
  run(ctx: RunContext): Promise<RunResult>
  /**
   * Ends what a previous daemon's run of this job left alive (the daemon died with it), waiting until
   * it is gone; `run` does it first too, so there are never two syncs on one tree. Resolves with what
   * it ended, or undefined.
   */
  endLeftovers(): Promise<Leftovers | undefined>
}
