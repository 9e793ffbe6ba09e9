import type { FastifyInstance } from 'fastify'
import type { Logger } from 'pino'
import type { Database } from '../../db.ts'
import { type Backoff, DEFAULT_RETRY_BACKOFF } from '../../util/backoff.ts'
import type { ListenSource } from '../config/types.ts'
import { type ExtraRoutes, listenApi, type ServerTls, validName } from '../http.ts'
import { Job, type JobReport, type JobSpec, KILLED_BY_HALT } from '../job.ts'
import { isCommandVerb } from '../protocol.ts'
import { firstRunAt, nextRunAfterFailure, Scheduler } from '../scheduler.ts'
import { Semaphore } from '../semaphore.ts'
import { applyEvent, emptyStatus, type JobStatus, type SyncStatus } from '../status.ts'
import { BadRequestError, InvalidCommandError, ReloadUnsupportedError, UnknownMirrorError } from './errors.ts'
import { ManagerLink } from './link.ts'
import { createWorkerServer } from './server.ts'
import { type StoredJob, WorkerStore } from './store.ts'

/** Default limit of jobs syncing at once (tunasync's default of 0 lets nothing run). */
export const DEFAULT_CONCURRENT = 4

export interface WorkerOptions {
  /** The worker's id at the manager (tunasync's `[global] name`). */
  name: string
  jobs: JobSpec[]
  /** The process's LevelDB; the worker keeps its job records in its `worker` sublevel. */
  db: Database
  /** Manager API bases (tunasync's `api_base_list`); the worker registers with each. */
  managers: string[]
  /** Sent to the managers, and required on this worker's own control API. */
  token: string
  server: {
    listenAddr: string
    listenPort: number
    hostname: string
    tls?: ServerTls
    /** Further routes on the worker's listener (the daemon's read API). */
    routes?: ExtraRoutes
    /** The config keys of the listen address and port, named when the worker cannot listen. */
    listenSource?: ListenSource
  }
  /** Jobs syncing at once; values below 1 mean the default. */
  concurrent: number
  retryBackoff?: Backoff
  linkBackoff?: Backoff
  log: Logger
  /** Re-reads the configuration, for the `reload` command and SIGHUP. */
  reload?: () => Promise<JobSpec[]>
}

export interface WorkerCommand {
  cmd?: unknown
  mirror_id?: unknown
  options?: unknown
}

/**
 * A worker (tunasync's worker/worker.go): runs its jobs on schedule, keeps their status (persisted,
 * so a restart keeps paused and disabled jobs, and reruns a job it interrupted), answers the
 * manager's commands on its own HTTP API, and reports every status change to its managers.
 */
export class Worker {
  readonly name: string
  readonly #opts: WorkerOptions
  #token: string
  readonly #log: Logger
  readonly #store: WorkerStore
  readonly #semaphore: Semaphore
  readonly #scheduler: Scheduler
  readonly #retryBackoff: Backoff
  readonly #jobs = new Map<string, Job>()
  readonly #records = new Map<string, StoredJob>()
  #links: ManagerLink[] = []
  #app: FastifyInstance | undefined
  #url = ''
  #saving: Promise<unknown> = Promise.resolve()
  #stopped = false
  #commands: Promise<unknown> = Promise.resolve()
  readonly #listeners = new Set<(s: JobStatus) => void>()

  constructor(opts: WorkerOptions) {
    this.name = opts.name
    this.#opts = opts
    this.#token = opts.token
    this.#log = opts.log.child({ role: 'worker', worker: opts.name })
    this.#store = new WorkerStore(opts.db)
    this.#semaphore = new Semaphore(opts.concurrent >= 1 ? opts.concurrent : DEFAULT_CONCURRENT)
    this.#retryBackoff = opts.retryBackoff ?? DEFAULT_RETRY_BACKOFF
    this.#scheduler = new Scheduler((names) => this.#due(names))
  }

  /** The control API's URL as registered with the managers (`http://hostname:port/`). */
  get url(): string {
    return this.#url
  }

  get concurrency(): number {
    return this.#semaphore.limit
  }

  get links(): readonly ManagerLink[] {
    return this.#links
  }

  /** Replaces the token of its control API and of its calls to the managers (a reload changed it). */
  setToken(token: string): void {
    this.#token = token
    for (const link of this.#links) link.setToken(token)
  }

  job(name: string): Job | undefined {
    return this.#jobs.get(name)
  }

  status(name: string): JobStatus | undefined {
    return this.#records.get(name)?.status
  }

  statuses(): JobStatus[] {
    return [...this.#records.values()].map((r) => r.status).sort((a, b) => (a.name < b.name ? -1 : 1))
  }

  /** Calls `fn` with every new status of any job; returns the unsubscribe function. */
  onStatus(fn: (s: JobStatus) => void): () => void {
    this.#listeners.add(fn)
    return () => this.#listeners.delete(fn)
  }

  async start(): Promise<void> {
    const now = Date.now()
    const due: { name: string; at: number }[] = []
    for (const spec of this.#opts.jobs) {
      if (this.#jobs.has(spec.name)) throw new BadRequestError(`duplicate job ${spec.name}`)
      const at = await this.#restore(spec, now)
      if (at !== null) due.push({ name: spec.name, at })
    }

    const { server } = this.#opts
    this.#app = createWorkerServer({
      worker: this,
      token: () => this.#token,
      log: this.#log,
      tls: server.tls,
      routes: server.routes,
    })
    await listenApi(this.#app, server.listenAddr, server.listenPort, server.listenSource)
    const addr = this.#app.server.address()
    const port = typeof addr === 'object' && addr ? addr.port : server.listenPort
    const host = server.hostname.includes(':') ? `[${server.hostname}]` : server.hostname
    this.#url = `${server.tls ? 'https' : 'http'}://${host}:${port}/`
    this.#log.info(
      { url: this.#url, jobs: this.#jobs.size, concurrent: this.concurrency },
      'worker listening',
    )

    this.#links = this.#opts.managers.map(
      (apiBase) =>
        new ManagerLink({
          apiBase,
          token: this.#token,
          self: { id: this.name, url: this.#url, token: this.#token },
          all: () => this.statuses(),
          log: this.#log,
          ...(this.#opts.linkBackoff ? { backoff: this.#opts.linkBackoff } : {}),
        }),
    )
    for (const link of this.#links) link.start()
    // A daemon killed during a sync may have left its processes: end them now, not at the job's next
    // run (a paused job may not run for long). A run that starts meanwhile waits for this first.
    for (const job of this.#jobs.values()) {
      job.spec.provider.endLeftovers().then(
        (left) => {
          if (left) this.#log.warn({ job: job.name, ...left }, 'ended processes left by a previous daemon')
        },
        (err) => this.#log.error({ err, job: job.name }, 'cannot end processes left by a previous daemon'),
      )
    }
    for (const d of due) this.#scheduler.add(d.name, d.at)
  }

  /** Stops scheduling, kills running syncs (they rerun at the next start), reports, closes. */
  async stop(opts: { graceMs?: number } = {}): Promise<void> {
    if (this.#stopped) return
    this.#stopped = true
    this.#scheduler.stop()
    await this.#app?.close()
    await Promise.all([...this.#jobs.values()].filter((j) => j.running).map((j) => j.halt()))
    await this.#saving
    await Promise.all(this.#links.map((l) => l.stop(opts.graceMs ?? 3000)))
    this.#log.info('worker stopped')
  }

  /** A command from the manager (tunasync's WorkerCmd). Commands run one at a time. */
  command(c: WorkerCommand): Promise<void> {
    const run = this.#commands.then(
      () => this.#command(c),
      () => this.#command(c),
    )
    this.#commands = run.catch(() => {})
    return run
  }

  async #command(c: WorkerCommand): Promise<void> {
    const cmd = c.cmd
    if (!isCommandVerb(cmd)) throw new InvalidCommandError(cmd)
    const mirror = c.mirror_id === undefined || c.mirror_id === '' ? '' : validName(c.mirror_id, 'mirror_id')
    const force =
      typeof c.options === 'object' &&
      c.options !== null &&
      (c.options as Record<string, unknown>).force === true
    this.#log.info({ cmd, mirror, force }, 'received command')
    if (cmd === 'reload') return this.reload()
    if (mirror === '') throw new BadRequestError(`${cmd}: mirror_id is required`)
    const job = this.#jobs.get(mirror)
    if (!job) throw new UnknownMirrorError(mirror, `worker ${this.name}`)

    // Whatever the command, the job's pending schedule goes (as in tunasync).
    if (this.#scheduler.remove(mirror)) this.#patch(mirror, { nextSchedule: null })
    switch (cmd) {
      case 'start':
        job.start({ force })
        break
      case 'restart':
        await job.restart({ force })
        break
      case 'stop':
        await job.stop()
        this.#control(mirror, 'paused')
        break
      case 'disable':
        await job.disable()
        this.#control(mirror, 'disabled')
        break
      case 'ping':
        break
    }
  }

  /**
   * Applies a new job list (tunasync's ReloadMirrorConfig): removed jobs are disabled and dropped,
   * changed ones restart with their paused or disabled state kept, new ones run now.
   */
  async reload(specs?: JobSpec[]): Promise<void> {
    if (!specs) {
      if (!this.#opts.reload) throw new ReloadUnsupportedError()
      specs = await this.#opts.reload()
    }
    const next = new Map(specs.map((s) => [s.name, s]))
    const now = Date.now()
    for (const [name, job] of [...this.#jobs]) {
      const spec = next.get(name)
      if (!spec) {
        this.#scheduler.remove(name)
        await job.disable()
        this.#jobs.delete(name)
        const rec = this.#records.get(name)
        this.#records.delete(name)
        if (rec) this.#push(applyEvent(rec.status, { status: 'disabled', message: '', schedule: false }, now))
        this.#saving = this.#saving.then(() => this.#store.del(name)).catch(() => {})
        this.#log.info({ job: name }, 'job removed')
      } else if (spec.fingerprint !== job.spec.fingerprint) {
        const prev = job.state
        const wasRunning = job.running
        this.#scheduler.remove(name)
        await job.disable()
        const fresh = this.#newJob(spec)
        this.#patch(name, { upstream: spec.provider.upstream, isMaster: spec.isMaster })
        if (prev === 'disabled' || prev === 'paused') {
          fresh.setState(prev)
        } else {
          if (wasRunning)
            this.#patch(name, { status: 'failed', errorMsg: 'interrupted: the job was reloaded' })
          this.#schedule(name, now)
        }
        this.#log.info({ job: name }, 'job reloaded')
      }
    }
    for (const spec of specs) {
      if (this.#jobs.has(spec.name)) continue
      const at = await this.#restore(spec, now)
      if (at !== null) this.#schedule(spec.name, at)
      this.#log.info({ job: spec.name }, 'job added')
    }
  }

  #newJob(spec: JobSpec): Job {
    const job = new Job(spec, {
      semaphore: this.#semaphore,
      backoff: this.#retryBackoff,
      log: this.#log,
      onEvent: (j, ev) => this.#onEvent(j, ev),
    })
    this.#jobs.set(spec.name, job)
    return job
  }

  /** Creates the job from its stored record; returns when it should first run, or null. */
  async #restore(spec: JobSpec, now: number): Promise<number | null> {
    const job = this.#newJob(spec)
    const rec = await this.#store.get(spec.name)
    const base = rec?.status ?? emptyStatus(spec.name, this.name, spec.provider.upstream, spec.isMaster)
    let status: JobStatus = {
      ...base,
      worker: this.name,
      upstream: spec.provider.upstream,
      isMaster: spec.isMaster,
    }
    let at: number | null = null
    if (status.status === 'disabled' || status.status === 'paused') {
      job.setState(status.status)
      status.nextSchedule = null
    } else if (status.status === 'syncing' || status.status === 'pre-syncing' || rec?.interrupted) {
      // Killed (kill -9, power loss) or stopped in the middle of a sync: say so, and run it again now.
      status = {
        ...status,
        status: 'failed',
        errorMsg: KILLED_BY_HALT,
        lastEnded: rec?.interrupted ? status.lastEnded : now,
      }
      at = now
    } else {
      at = firstRunAt(status.lastUpdate, spec.intervalMs, now)
    }
    status.nextSchedule = at
    this.#set(spec.name, { status, failStreak: rec?.failStreak ?? 0, interrupted: false })
    return at
  }

  #due(names: string[]): void {
    for (const name of names) {
      const job = this.#jobs.get(name)
      if (!job || job.state === 'paused' || job.state === 'disabled' || job.state === 'halting') continue
      job.start()
    }
  }

  #schedule(name: string, at: number): void {
    this.#scheduler.add(name, at)
    this.#patch(name, { nextSchedule: at })
  }

  #onEvent(job: Job, ev: JobReport): void {
    if (this.#jobs.get(job.name) !== job) return
    // As in tunasync: once paused or disabled, what the killed run reports is not news.
    if (job.state !== 'ready' && job.state !== 'halting') {
      this.#log.debug({ job: job.name, status: ev.status }, 'job not ready; status ignored')
      return
    }
    const rec = this.#records.get(job.name)
    if (!rec) return
    const now = Date.now()
    const status = applyEvent(rec.status, ev, now)
    let failStreak = rec.failStreak
    if (ev.status === 'success') failStreak = 0
    if (ev.status === 'failed' && ev.schedule) failStreak++
    if (ev.schedule && job.state === 'ready' && !this.#stopped) {
      const at =
        ev.status === 'success'
          ? now + job.spec.intervalMs
          : nextRunAfterFailure(this.#retryBackoff, job.spec.retry, failStreak, job.spec.intervalMs, now)
      status.nextSchedule = at
      this.#scheduler.add(job.name, at)
    }
    this.#set(job.name, { status, failStreak, interrupted: ev.interrupted === true })
  }

  #control(name: string, status: SyncStatus): void {
    const rec = this.#records.get(name)
    if (!rec) return
    this.#set(name, {
      ...rec,
      status: applyEvent(rec.status, { status, message: '', schedule: false }, Date.now()),
    })
  }

  #patch(name: string, fields: Partial<JobStatus>): void {
    const rec = this.#records.get(name)
    if (!rec) return
    this.#set(name, { ...rec, status: { ...rec.status, ...fields } })
  }

  #set(name: string, rec: StoredJob): void {
    this.#records.set(name, rec)
    this.#saving = this.#saving
      .then(() => this.#store.put(name, rec))
      .catch((err) => this.#log.error({ err, job: name }, 'cannot save job status'))
    this.#push(rec.status)
    for (const fn of this.#listeners) fn(rec.status)
  }

  #push(status: JobStatus): void {
    for (const link of this.#links) link.update(status)
  }
}
