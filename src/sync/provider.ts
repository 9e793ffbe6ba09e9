/**
 * The seam between the job state machine and whatever fetches a mirror (tunasync's provider.go).
 * One implementation per file in `providers/`.
 */
export interface RunContext {
  /** Absolute path of this run's log file; stdout and stderr of every child go there. */
  logFile: string
  /** Aborts the run: TERM to the whole process group, KILL after the grace period. */
  signal: AbortSignal
  /** Extra environment from hooks (e.g. the exclude list of evicted files). */
  env: Record<string, string>
  /** Extra rsync arguments added by pre-exec hooks (e.g. `--exclude-from=FILE`). */
  extraArgs: string[]
}

export interface RunResult {
  /** Human size of the mirror after the run (`"5.24M"`), or undefined when not known. */
  size?: string
}

/** A failed run; `message` is what the job status shows as its error. */
export class ProviderError extends Error {
  readonly code: string
  readonly exitCode: number | undefined
  constructor(message: string, options: { code: string; exitCode?: number; cause?: unknown }) {
    super(message, { cause: options.cause })
    this.name = 'ProviderError'
    this.code = options.code
    this.exitCode = options.exitCode
  }
}

export interface Provider {
  readonly name: string
  readonly kind: 'rsync' | 'two-stage-rsync' | 'command'
  readonly upstream: string
  /** Folder the mirror lives in. */
  readonly workingDir: string
  /** Folder of this mirror's logs. */
  readonly logDir: string
  /** Runs one sync. Resolves on success, rejects with ProviderError on failure or abort. */
  run(ctx: RunContext): Promise<RunResult>
}
