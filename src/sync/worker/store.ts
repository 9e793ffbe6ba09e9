import { type Database, type Room, sublevelOf } from '../../db.ts'
import type { JobStatus } from '../status.ts'

/** What a worker remembers of a job across restarts. */
export interface StoredJob {
  status: JobStatus
  /** Failed runs in a row (for the backoff of the next run). */
  failStreak: number
  /** The worker stopped while this job was syncing: rerun it at once. */
  interrupted: boolean
}

/** The worker's own records, in the `worker` sublevel of its process's LevelDB (name -> StoredJob). */
export class WorkerStore {
  readonly #db: Room<StoredJob>

  constructor(db: Database) {
    this.#db = sublevelOf<StoredJob>(db, 'worker')
  }

  async get(name: string): Promise<StoredJob | undefined> {
    return (await this.#db.get(name)) ?? undefined
  }

  async put(name: string, rec: StoredJob): Promise<void> {
    await this.#db.put(name, rec)
  }

  async del(name: string): Promise<void> {
    await this.#db.del(name)
  }
}
