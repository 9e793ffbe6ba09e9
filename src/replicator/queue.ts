/**
 * The replicator's persistent queue, its own sublevel (DESIGN: "the replicator's queue is its own
 * sublevel"):
 *
 *   replicator/q/<item key>                   -> QueueEntry   one per tree (mirror) or per CID
 *   replicator/due/<next at, 15 digits>\x00<key> -> ''         the schedule, read in time order
 *
 * An entry and its schedule key change in one batch, so a kill -9 leaves either the old or the new
 * state, never an entry without its place in the schedule.
 */
import { type Database, type Room, readKeys, readValues } from '../db.ts'
import type { ReplicationItem } from './target.ts'

/**
 * `waiting`: a target cannot store the item yet because its bytes are nowhere to be read (not on this
 * disk, no source of the fetch-back has them); retried with backoff like a failure, but not one.
 */
export type ItemState = 'pending' | 'storing' | 'satisfied' | 'under-replicated' | 'waiting' | 'failing'

export interface TargetState {
  /** Failed calls in a row (0 after a success). */
  failures: number
  /** Epoch ms before which the target is not called for this item again (backoff). */
  retryAt?: number
  error?: string
  /** Epoch ms of the last call that succeeded. */
  okAt?: number
}

export interface QueueEntry {
  item: ReplicationItem
  state: ItemState
  /** Why it is not satisfied, or why it fails. */
  reason?: string
  /** Per target (config name). */
  targets: Record<string, TargetState>
  /** Epoch ms of the next check. */
  nextAt: number
  /** Epoch ms of the last time it was processed. */
  checkedAt?: number
  /** Verified copies counted at the last check. */
  verified?: number
}

const SEP = '\x00'

function dueKey(at: number, key: string): string {
  return `${String(Math.max(0, Math.floor(at))).padStart(15, '0')}${SEP}${key}`
}

export class ReplicationQueue {
  readonly #db: Database
  readonly #q
  readonly #due

  constructor(db: Database) {
    this.#db = db
    const room = db.sublevel<string, unknown>('replicator', { valueEncoding: 'json' })
    this.#q = room.sublevel<string, QueueEntry>('q', { valueEncoding: 'json' })
    this.#due = room.sublevel<string, string>('due', { valueEncoding: 'json' })
  }

  get(key: string): Promise<QueueEntry | undefined> {
    return this.#q.get(key)
  }

  /** Writes `entry`, moving its schedule key from where `old` had it. */
  async put(entry: QueueEntry, old?: QueueEntry): Promise<void> {
    const batch = this.#db.batch()
    if (old) batch.del(dueKey(old.nextAt, old.item.key), { sublevel: this.#due as never })
    batch.put(entry.item.key, entry, { sublevel: this.#q as never })
    batch.put(dueKey(entry.nextAt, entry.item.key), '', { sublevel: this.#due as never })
    await batch.write()
  }

  async remove(entry: QueueEntry): Promise<void> {
    const batch = this.#db.batch()
    batch.del(dueKey(entry.nextAt, entry.item.key), { sublevel: this.#due as never })
    batch.del(entry.item.key, { sublevel: this.#q as never })
    await batch.write()
  }

  /** Keys of entries due at `now` or before, earliest first, at most `limit`. */
  async due(now: number, limit: number): Promise<string[]> {
    const keys = await readKeys(this.#due as unknown as Room<string>, { lt: dueKey(now + 1, ''), limit })
    return keys.map((k) => k.slice(k.indexOf(SEP) + 1))
  }

  /** Epoch ms of the earliest scheduled check, if any. */
  async nextDue(): Promise<number | undefined> {
    const [k] = await readKeys(this.#due as unknown as Room<string>, { limit: 1 })
    return k === undefined ? undefined : Number(k.slice(0, k.indexOf(SEP)))
  }

  /** Every entry (for the audit and the status). */
  async all(): Promise<QueueEntry[]> {
    return readValues(this.#q as unknown as Room<QueueEntry>)
  }

  /** Entries counted by state. */
  async counts(): Promise<Record<ItemState, number>> {
    const out: Record<ItemState, number> = {
      pending: 0,
      storing: 0,
      satisfied: 0,
      'under-replicated': 0,
      waiting: 0,
      failing: 0,
    }
    for (const e of await this.all()) out[e.state]++
    return out
  }
}
