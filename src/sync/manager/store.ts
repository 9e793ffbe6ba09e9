import type { Logger } from 'pino'
import { type Database, readRange, sublevelOf } from '../../db.ts'
import { DurableWriter } from '../../db-writes.ts'
import type { JobStatus } from '../status.ts'

/** A registered worker (tunasync's WorkerStatus). Times are epoch ms. */
export interface WorkerRecord {
  id: string
  url: string
  /** Sent by the manager to this worker's control API. */
  token: string
  lastOnline: number
  lastRegister: number
}

/**
 * The manager's records: served from memory, written through to the one LevelDB as their record
 * (`jobs`: `<mirror>/<worker>` -> JobStatus, `workers`: id -> WorkerRecord), loaded at start. The
 * public reads (`GET /jobs`, `/workers`) touch no database: a range read per request keeps native
 * memory until a full GC (src/db.ts, `rangePages`), and a status is small and written far less often
 * than read.
 *
 * A change is in memory at once, whatever the disk says: when LevelDB cannot store it (the disk is
 * full), the write throws a DatabaseWriteError naming the database and the errno, the manager goes on
 * serving the change, and DurableWriter stores it once the disk takes writes again. Writes are
 * serialized so read-modify-write updates never interleave.
 */
export class ManagerStore {
  readonly #jobsRoom
  readonly #workersRoom
  readonly #jobs = new Map<string, JobStatus>()
  readonly #workers = new Map<string, WorkerRecord>()
  readonly #writer: DurableWriter
  /** Every job sorted by name then worker, until the next change. */
  #sorted: JobStatus[] | undefined
  #lock: Promise<unknown> = Promise.resolve()

  private constructor(db: Database, log: Logger) {
    this.#jobsRoom = sublevelOf<JobStatus>(db, 'jobs')
    this.#workersRoom = sublevelOf<WorkerRecord>(db, 'workers')
    this.#writer = new DurableWriter(db, log)
  }

  /** The store of `db`, with every record loaded. */
  static async open(db: Database, log: Logger): Promise<ManagerStore> {
    const s = new ManagerStore(db, log)
    for (const [key, job] of await readRange(s.#jobsRoom)) s.#jobs.set(key, job)
    for (const [id, w] of await readRange(s.#workersRoom)) s.#workers.set(id, w)
    return s
  }

  /** Stores what is still queued (one last try) and stops retrying. */
  close(): Promise<void> {
    return this.#writer.close()
  }

  /** Writes that the database has not stored yet (the disk was full). */
  get unstored(): number {
    return this.#writer.pending
  }

  /** Runs `fn` alone among the store's writers. */
  exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.#lock.then(fn, fn)
    this.#lock = run.catch(() => {})
    return run
  }

  async getWorker(id: string): Promise<WorkerRecord | undefined> {
    return this.#workers.get(id)
  }

  async putWorker(w: WorkerRecord): Promise<void> {
    this.#workers.set(w.id, w)
    await this.#writer.write([{ room: this.#workersRoom, key: w.id, value: w }])
  }

  async deleteWorker(id: string): Promise<void> {
    const keys = [...this.#jobs].filter(([, s]) => s.worker === id).map(([key]) => key)
    for (const key of keys) this.#jobs.delete(key)
    this.#workers.delete(id)
    this.#sorted = undefined
    await this.#writer.write([
      ...keys.map((key) => ({ room: this.#jobsRoom, key })),
      { room: this.#workersRoom, key: id },
    ])
  }

  async listWorkers(): Promise<WorkerRecord[]> {
    return [...this.#workers.values()].sort((a, b) => cmp(a.id, b.id))
  }

  async getJob(worker: string, mirror: string): Promise<JobStatus | undefined> {
    return this.#jobs.get(`${mirror}/${worker}`)
  }

  async putJob(s: JobStatus): Promise<void> {
    const key = `${s.name}/${s.worker}`
    this.#jobs.set(key, s)
    this.#sorted = undefined
    await this.#writer.write([{ room: this.#jobsRoom, key, value: s }])
  }

  /** Every job, by name then worker. */
  async listJobs(worker?: string): Promise<JobStatus[]> {
    this.#sorted ??= [...this.#jobs.values()].sort((a, b) =>
      a.name === b.name ? cmp(a.worker, b.worker) : cmp(a.name, b.name),
    )
    return worker === undefined ? this.#sorted : this.#sorted.filter((s) => s.worker === worker)
  }

  /** Removes disabled jobs (tunasync: also nameless ones); returns how many. */
  async flushDisabled(): Promise<number> {
    const keys = [...this.#jobs].filter(([, s]) => s.status === 'disabled' || !s.name).map(([key]) => key)
    for (const key of keys) this.#jobs.delete(key)
    this.#sorted = undefined
    await this.#writer.write(keys.map((key) => ({ room: this.#jobsRoom, key })))
    return keys.length
  }
}

function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0
}
