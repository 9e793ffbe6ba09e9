import type { Database } from '../../db.ts'
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
 * The manager's records in the one LevelDB: `jobs` (`<mirror>/<worker>` -> JobStatus) and `workers`
 * (id -> WorkerRecord). Writes are serialized so read-modify-write updates never interleave.
 */
export class ManagerStore {
  readonly #jobs
  readonly #workers
  #lock: Promise<unknown> = Promise.resolve()

  constructor(db: Database) {
    this.#jobs = db.sublevel<string, JobStatus>('jobs', { valueEncoding: 'json' })
    this.#workers = db.sublevel<string, WorkerRecord>('workers', { valueEncoding: 'json' })
  }

  /** Runs `fn` alone among the store's writers. */
  exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.#lock.then(fn, fn)
    this.#lock = run.catch(() => {})
    return run
  }

  async getWorker(id: string): Promise<WorkerRecord | undefined> {
    return (await this.#workers.get(id)) ?? undefined
  }

  async putWorker(w: WorkerRecord): Promise<void> {
    await this.#workers.put(w.id, w)
  }

  async deleteWorker(id: string): Promise<void> {
    const keys: string[] = []
    for await (const [key, s] of this.#jobs.iterator()) if (s.worker === id) keys.push(key)
    await this.#jobs.batch(keys.map((key) => ({ type: 'del' as const, key })))
    await this.#workers.del(id)
  }

  async listWorkers(): Promise<WorkerRecord[]> {
    const out: WorkerRecord[] = []
    for await (const w of this.#workers.values()) out.push(w)
    return out
  }

  async getJob(worker: string, mirror: string): Promise<JobStatus | undefined> {
    return (await this.#jobs.get(`${mirror}/${worker}`)) ?? undefined
  }

  async putJob(s: JobStatus): Promise<void> {
    await this.#jobs.put(`${s.name}/${s.worker}`, s)
  }

  /** Every job, by name then worker. */
  async listJobs(worker?: string): Promise<JobStatus[]> {
    const out: JobStatus[] = []
    for await (const s of this.#jobs.values()) if (worker === undefined || s.worker === worker) out.push(s)
    return out.sort((a, b) => (a.name === b.name ? cmp(a.worker, b.worker) : cmp(a.name, b.name)))
  }

  /** Removes disabled jobs (tunasync: also nameless ones); returns how many. */
  async flushDisabled(): Promise<number> {
    const keys: string[] = []
    for await (const [key, s] of this.#jobs.iterator()) if (s.status === 'disabled' || !s.name) keys.push(key)
    await this.#jobs.batch(keys.map((key) => ({ type: 'del' as const, key })))
    return keys.length
  }
}

function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0
}
