import type { Logger } from 'pino'
import { errorCode } from '../../error-codes.ts'
import { type Backoff, backoffDelay } from '../../util/backoff.ts'
import { RemoteError } from '../api-errors.ts'
import { ManagerClient } from '../manager/client.ts'
import { type JobStatus, toWire } from '../status.ts'

/** Registration and status pushes back off from 0.5 s up to 30 s while the manager is away. */
export const DEFAULT_LINK_BACKOFF: Backoff = { baseMs: 500, maxMs: 30_000, jitter: 0.2 }

/**
 * A worker's link to one manager. It registers (retrying for as long as it takes: the manager may
 * start later, or restart), then pushes the latest status of every job that changed. Only the latest
 * status per job is kept while the manager is away, with its own times, so nothing is lost or
 * reordered. A manager that forgot the worker (404) gets a fresh registration and every status.
 */
export class ManagerLink {
  readonly client: ManagerClient
  readonly #self: { id: string; url: string; token: string }
  readonly #all: () => JobStatus[]
  readonly #log: Logger
  readonly #backoff: Backoff
  readonly #pending = new Map<string, JobStatus>()
  /** Pending statuses the manager took into memory but could not store (DB_WRITE) this round. */
  readonly #heldInMemory = new Set<string>()
  #registered = false
  #stopped = false
  #wake: (() => void) | undefined
  #wakeOnUpdate = false
  #loop: Promise<void> | undefined
  #failures = 0
  #everRegistered: ((ok: boolean) => void)[] = []

  constructor(opts: {
    apiBase: string
    token: string
    self: { id: string; url: string; token: string }
    all: () => JobStatus[]
    log: Logger
    backoff?: Backoff
  }) {
    this.client = new ManagerClient(opts.apiBase, opts.token, { timeoutMs: 10_000 })
    this.#self = opts.self
    this.#all = opts.all
    this.#log = opts.log.child({ manager: opts.apiBase })
    this.#backoff = opts.backoff ?? DEFAULT_LINK_BACKOFF
  }

  get registered(): boolean {
    return this.#registered
  }

  /**
   * A new token (a reload changed it): later calls carry it, and the worker registers again so the
   * manager sends its commands with it. Every status goes again with the registration.
   */
  setToken(token: string): void {
    this.client.setToken(token)
    this.#self.token = token
    this.#registered = false
    this.#wake?.()
  }

  /** Calls to the manager that failed in a row (0 after any success). */
  get failures(): number {
    return this.#failures
  }

  /** Resolves once registered (true), or false when the link stops first. */
  whenRegistered(): Promise<boolean> {
    if (this.#registered) return Promise.resolve(true)
    return new Promise((resolve) => this.#everRegistered.push(resolve))
  }

  start(): void {
    this.#loop ??= this.#run()
  }

  update(status: JobStatus): void {
    this.#pending.set(status.name, status)
    this.#heldInMemory.delete(status.name)
    if (this.#wakeOnUpdate) this.#wake?.()
  }

  /** Pending pushes left (0 when the manager has everything). */
  get backlog(): number {
    return this.#pending.size
  }

  /** Tries to push what is pending for up to `graceMs`, then stops. */
  async stop(graceMs = 3000): Promise<void> {
    if (this.#registered && this.#pending.size > 0) {
      const deadline = Date.now() + graceMs
      while (this.#pending.size > 0 && this.#registered && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 20))
      }
    }
    this.#stopped = true
    this.#wake?.()
    await this.#loop
    for (const r of this.#everRegistered.splice(0)) r(false)
  }

  async #pause(ms: number, wakeOnUpdate = false): Promise<void> {
    this.#wakeOnUpdate = wakeOnUpdate
    await new Promise<void>((resolve) => {
      const t = setTimeout(done, ms)
      function done(): void {
        clearTimeout(t)
        resolve()
      }
      this.#wake = done
    })
    this.#wake = undefined
  }

  async #run(): Promise<void> {
    while (!this.#stopped) {
      if (!this.#registered) {
        try {
          try {
            await this.client.register(this.#self)
          } catch (err) {
            // The manager holds the registration in memory and stores it when its disk has room:
            // registered, so that the statuses go on reaching it.
            if (!(err instanceof RemoteError && err.code === errorCode('DB_WRITE'))) throw err
            this.#log.warn({ err: err.message }, 'registered; the manager cannot store it yet')
          }
          this.#registered = true
          this.#failures = 0
          this.#log.info({ worker: this.#self.id }, 'registered with the manager')
          for (const s of this.#all()) this.#pending.set(s.name, s)
          for (const r of this.#everRegistered.splice(0)) r(true)
        } catch (err) {
          this.#fail(err, 'cannot register with the manager; retrying')
          await this.#pause(backoffDelay(this.#backoff, this.#failures - 1))
          continue
        }
      }
      if (this.#pending.size === 0) {
        await this.#pause(2 ** 31 - 1, true)
        continue
      }
      const next = [...this.#pending].find(([n]) => !this.#heldInMemory.has(n))
      if (!next) {
        // Every status pending is in the manager's memory, not on its disk: retry them later, so
        // they are stored even if the manager restarts before its disk has room.
        this.#heldInMemory.clear()
        await this.#pause(backoffDelay(this.#backoff, this.#failures - 1), true)
        continue
      }
      const [name, status] = next
      try {
        await this.client.updateJob(this.#self.id, toWire(status))
        if (this.#pending.get(name) === status) this.#pending.delete(name)
        this.#failures = 0
      } catch (err) {
        if (err instanceof RemoteError && err.code === errorCode('UNKNOWN_WORKER')) {
          this.#registered = false
          continue
        }
        if (err instanceof RemoteError && err.code === errorCode('DB_WRITE')) {
          // The manager serves this status but cannot store it: go on with the others.
          this.#heldInMemory.add(name)
          this.#fail(err, 'the manager cannot store statuses (its database); it serves them, retrying')
          continue
        }
        if (
          err instanceof RemoteError &&
          err.statusCode >= 400 &&
          err.statusCode < 500 &&
          err.code !== errorCode('UNAUTHORIZED')
        ) {
          this.#log.error({ err: err.message, job: name }, 'manager refused a status; dropped')
          if (this.#pending.get(name) === status) this.#pending.delete(name)
          continue
        }
        // To the back of the queue: a status the manager cannot take now never holds up the others.
        // A refused token is retried too (the manager's token may be changing, and a reload follows).
        if (this.#pending.get(name) === status) {
          this.#pending.delete(name)
          this.#pending.set(name, status)
        }
        this.#fail(err, 'cannot push a status to the manager; retrying')
        await this.#pause(backoffDelay(this.#backoff, this.#failures - 1))
      }
    }
  }

  #fail(err: unknown, msg: string): void {
    this.#failures++
    const level = this.#failures === 1 || this.#failures % 20 === 0 ? 'warn' : 'debug'
    this.#log[level]({ err: (err as Error).message, attempt: this.#failures }, msg)
  }
}
