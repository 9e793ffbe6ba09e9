import type { Logger } from 'pino'
import { type Backoff, backoffDelay, sleep } from '../util/backoff.ts'
import { type HookContext, type HookJob, type JobHook, runHookStage } from './hooks/hook.ts'
import type { Provider, RunResult } from './provider.ts'
import type { Semaphore } from './semaphore.ts'
import type { JobEvent } from './status.ts'

/**
 * One mirror job and its state machine (tunasync's worker/job.go).
 *
 * States: `none` (never started), `ready` (may run; the scheduler starts it), `paused` (stopped by
 * the operator; never runs by itself), `disabled` (off until started), `halting` (the worker stops).
 *
 *     start / restart / force-start -> ready      stop -> paused (the run is killed)
 *     disable -> disabled (the run is killed)      halt -> halting (the run is killed)
 *
 * A run: wait for a concurrency slot (or bypass it on force-start), report `pre-syncing`, pre-job
 * hooks, then up to `retry` attempts of pre-exec hooks, `syncing`, the provider, post-exec, and
 * post-success (report `success`) or post-fail (report `failed`). Unlike tunasync, attempts after a
 * failure wait an exponential backoff with jitter first, with their slot given back meanwhile.
 */
export type JobState = 'none' | 'ready' | 'paused' | 'disabled' | 'halting'

export interface JobSpec {
  name: string
  provider: Provider
  /** Between the end of a successful run and the start of the next. */
  intervalMs: number
  /** Attempts per run in all (tunasync's `retry`); at least 1. */
  retry: number
  isMaster: boolean
  /** In registration order. */
  hooks: JobHook[]
  /** Changes when the job's configuration changes (for reloads). */
  fingerprint?: string
}

/** A job event, plus `interrupted` when the worker stopped in the middle of the run. */
export interface JobReport extends JobEvent {
  interrupted?: boolean
}

export interface JobDeps {
  semaphore: Semaphore
  backoff: Backoff
  log: Logger
  onEvent(job: Job, ev: JobReport): void
}

/** A run's hold on a concurrency slot; `take` resolves false when the run is killed while waiting. */
interface Slot {
  take(): Promise<boolean>
  free(): void
}

interface ActiveRun {
  kill: AbortController
  bypass: () => void
  done: Promise<void>
}

export const KILLED_BY_MANAGER = 'killed by manager'
export const KILLED_BY_HALT = 'interrupted: the worker stopped during the sync'

export class Job {
  readonly spec: JobSpec
  readonly #deps: JobDeps
  #state: JobState = 'none'
  #run: ActiveRun | null = null

  constructor(spec: JobSpec, deps: JobDeps) {
    this.spec = spec
    this.#deps = deps
  }

  get name(): string {
    return this.spec.name
  }

  get state(): JobState {
    return this.#state
  }

  /** Sets the state without side effects (restoring a persisted state at startup). */
  setState(state: JobState): void {
    this.#state = state
  }

  /** A run is in progress (waiting for a slot or syncing). */
  get running(): boolean {
    return this.#run !== null
  }

  /** Starts a run unless one is in progress; `force` lets it (or the waiting one) bypass the limit. */
  start(opts: { force?: boolean } = {}): void {
    this.#state = 'ready'
    if (this.#run) {
      if (opts.force) this.#run.bypass()
      return
    }
    this.#launch(opts.force ?? false)
  }

  /** Pauses the job, killing its run. */
  async stop(): Promise<void> {
    this.#state = 'paused'
    await this.#kill(KILLED_BY_MANAGER)
  }

  async disable(): Promise<void> {
    this.#state = 'disabled'
    await this.#kill(KILLED_BY_MANAGER)
  }

  /** Kills the run in progress, if any, and starts a new one. */
  async restart(opts: { force?: boolean } = {}): Promise<void> {
    this.#state = 'ready'
    await this.#kill(KILLED_BY_MANAGER)
    if (this.#state === 'ready') this.start(opts)
  }

  /** The worker stops: kill the run; its failure is reported as an interruption. */
  async halt(): Promise<void> {
    this.#state = 'halting'
    await this.#kill(KILLED_BY_HALT)
  }

  /** Resolves when no run is in progress. */
  async idle(): Promise<void> {
    while (this.#run) await this.#run.done
  }

  async #kill(reason: string): Promise<void> {
    const run = this.#run
    if (!run) return
    run.kill.abort(new Error(reason))
    await run.done
  }

  #launch(force: boolean): void {
    const kill = new AbortController()
    let bypass!: () => void
    const bypassed = new Promise<void>((resolve) => {
      bypass = resolve
    })
    if (force) bypass()
    const run: ActiveRun = { kill, bypass, done: Promise.resolve() }
    run.done = this.#runJob(kill.signal, bypassed, force)
      .catch((err) => this.#deps.log.error({ err, job: this.name }, 'job run crashed'))
      .finally(() => {
        if (this.#run === run) this.#run = null
      })
    this.#run = run
  }

  async #runJob(kill: AbortSignal, bypassed: Promise<void>, force: boolean): Promise<void> {
    let release: (() => void) | undefined
    let bypassing = force
    bypassed.then(() => {
      bypassing = true
    })
    const slot: Slot = {
      take: async () => {
        if (bypassing) return true
        const got = await this.#acquire(kill, bypassed)
        if (got === 'killed') return false
        if (got === 'bypassed') bypassing = true
        else release = got
        return true
      },
      free: () => {
        release?.()
        release = undefined
      },
    }
    // Killed while waiting for a slot: nothing ran, nothing to report.
    if (!(await slot.take())) return
    try {
      await this.#runAttempts(kill, slot)
    } finally {
      slot.free()
    }
  }

  /** Waits for a concurrency slot: its release function, or why there is none. */
  async #acquire(kill: AbortSignal, bypassed: Promise<void>): Promise<(() => void) | 'bypassed' | 'killed'> {
    const stopWaiting = new AbortController()
    const onKill = (): void => stopWaiting.abort(kill.reason)
    kill.addEventListener('abort', onKill, { once: true })
    const acquiring = this.#deps.semaphore.acquire(stopWaiting.signal)
    try {
      const got = await Promise.race([acquiring.then((r) => ({ r })), bypassed.then(() => null)])
      if (got) return got.r
      this.#deps.log.info({ job: this.name }, 'concurrency limit bypassed (force start)')
      stopWaiting.abort(new Error('bypassed'))
      // A slot granted in the same tick is given back.
      acquiring.then((r) => r()).catch(() => {})
      return 'bypassed'
    } catch {
      return 'killed'
    } finally {
      kill.removeEventListener('abort', onKill)
    }
  }

  async #runAttempts(kill: AbortSignal, slot: Slot): Promise<void> {
    const { spec } = this
    const { provider } = spec
    const log = this.#deps.log.child({ job: spec.name })
    const emit = (ev: JobReport): void => this.#deps.onEvent(this, ev)
    const hookJob: HookJob = {
      name: spec.name,
      kind: provider.kind,
      upstream: provider.upstream,
      workingDir: provider.workingDir,
      logDir: provider.logDir,
    }
    const ctx: HookContext = {
      job: hookJob,
      attempt: 0,
      logFile: '/dev/null',
      env: {},
      extraArgs: [],
      details: {},
      signal: kill,
      log,
    }
    const killedReport = (): JobReport => {
      const reason = (kill.reason as Error)?.message ?? KILLED_BY_MANAGER
      return { status: 'failed', message: reason, schedule: false, interrupted: this.#state === 'halting' }
    }

    emit({ status: 'pre-syncing', message: '', schedule: false })
    log.info('start syncing')
    try {
      await runHookStage(spec.hooks, 'pre-job', ctx)
    } catch (err) {
      log.error({ err }, 'pre-job hooks failed')
      emit({ status: 'failed', message: (err as Error).message, schedule: true })
      return
    }

    const attempts = Math.max(1, spec.retry)
    for (let attempt = 0; attempt < attempts; attempt++) {
      if (attempt > 0) {
        const delay = Math.min(backoffDelay(this.#deps.backoff, attempt - 1), spec.intervalMs)
        log.info({ attempt, delayMs: delay }, 'retry after backoff')
        // The slot is not held while waiting: other jobs sync meanwhile (with concurrent = 1, one
        // dead upstream would otherwise stop every mirror for the whole backoff).
        slot.free()
        try {
          await sleep(delay, kill)
        } catch {
          emit(killedReport())
          return
        }
        if (!(await slot.take())) {
          emit(killedReport())
          return
        }
      }
      ctx.attempt = attempt
      ctx.logFile = '/dev/null'
      ctx.env = {}
      ctx.extraArgs = []
      ctx.error = undefined
      ctx.exitCode = undefined
      ctx.result = undefined
      try {
        await runHookStage(spec.hooks, 'pre-exec', ctx)
      } catch (err) {
        log.error({ err }, 'pre-exec hooks failed')
        emit({ status: 'failed', message: (err as Error).message, schedule: true })
        return
      }

      emit({ status: 'syncing', message: '', schedule: false })
      let error: Error | undefined
      let result: RunResult | undefined
      try {
        result = await provider.run({
          logFile: ctx.logFile,
          signal: kill,
          env: ctx.env,
          extraArgs: ctx.extraArgs,
        })
      } catch (err) {
        error = err instanceof Error ? err : new Error(String(err))
      }
      const killed = kill.aborted
      if (killed) error = new Error((kill.reason as Error)?.message ?? KILLED_BY_MANAGER)
      ctx.error = error
      ctx.result = result
      const exitCode = (error as { exitCode?: unknown } | undefined)?.exitCode
      ctx.exitCode = typeof exitCode === 'number' ? exitCode : undefined

      try {
        await runHookStage(spec.hooks, 'post-exec', ctx)
        await runHookStage(spec.hooks, error ? 'post-fail' : 'post-success', ctx)
      } catch (err) {
        log.error({ err }, 'post hooks failed')
        emit({ status: 'failed', message: (err as Error).message, schedule: true })
        return
      }

      if (!error) {
        log.info({ size: result?.size }, 'succeeded syncing')
        const ev: JobReport = { status: 'success', message: '', schedule: this.#state === 'ready' }
        if (result?.size) ev.size = result.size
        if (Object.keys(ctx.details).length > 0) ev.details = { ...ctx.details }
        emit(ev)
        return
      }
      log.warn({ err: error.message, attempt }, 'failed syncing')
      if (killed) {
        emit(killedReport())
        return
      }
      const last = attempt === attempts - 1
      emit({ status: 'failed', message: error.message, schedule: last && this.#state === 'ready' })
    }
  }
}
