/**
 * Writes that must land even when the disk fills: a room that serves its records from memory (the
 * manager's job statuses) hands each change here; what cannot be stored now stays queued, newest value
 * per key, and is written when the database takes writes again.
 *
 * Why a roll first: LevelDB appends every write to its log through a stdio buffer. When that append
 * fails (ENOSPC), part of the record may be in the file, and the writes that follow land after a torn
 * record: at the next open LevelDB drops the rest of that 32 KiB log block, silently, and those
 * writes are gone although each one reported success. So after any failed write, and before the next
 * one, the writer flushes the memtable to a table file and starts a new log (`compactRange` over a key
 * range no table holds: LevelDB compacts the memtable first, then finds nothing else to do), but only
 * once the disk has room for it: a failed memtable flush is an error LevelDB keeps until the database
 * is reopened.
 */
import { readdirSync, statfsSync, statSync } from 'node:fs'
import { join } from 'node:path'
import type { Logger } from 'pino'
import { type Database, type DatabaseWriteError, writeErrorOf } from './db.ts'

/** A put (`value` set) or a delete (`value` undefined) of `key` in `room` (a `Room` of `db`). */
export interface WriteOp {
  room: { readonly prefix: string }
  key: string
  value?: unknown
}

/** classic-level's `compactRange`, which the `level` package's types leave out. */
interface Compactable {
  compactRange(start: string, end: string): Promise<void>
}

/** Retries while the database refuses writes: 1 s doubling to 30 s. */
const RETRY_FIRST_MS = 1000
const RETRY_MAX_MS = 30_000
/** Room the roll needs beyond twice the log (the memtable it flushes is about the log's size). */
const ROLL_MARGIN_BYTES = 256 * 1024
/** Below every key cidmirror stores (rooms are sublevels, `!name!...`): no table file overlaps it. */
const NO_KEYS = '\x00'

export class DurableWriter {
  readonly #db: Database
  readonly #log: Logger
  readonly #pending = new Map<string, WriteOp>()
  #lock: Promise<unknown> = Promise.resolve()
  /** A write failed since the last roll: the log may end in a torn record. */
  #mustRoll = false
  /** Set while writes fail: the error every caller gets. */
  #failing: DatabaseWriteError | undefined
  #retryMs = RETRY_FIRST_MS
  #timer: NodeJS.Timeout | undefined
  #closed = false

  constructor(db: Database, log: Logger) {
    this.#db = db
    this.#log = log
  }

  /** Writes not yet stored. */
  get pending(): number {
    return this.#pending.size
  }

  /** The error of the episode while the database refuses writes, else undefined. */
  get failing(): DatabaseWriteError | undefined {
    return this.#failing
  }

  /**
   * Queues `ops` and stores everything queued in one batch. Throws a DatabaseWriteError when the
   * database cannot take it now; the ops stay queued (a later op on the same key replaces them) and
   * are retried in the background until they land.
   */
  write(ops: WriteOp[]): Promise<void> {
    for (const op of ops) this.#pending.set(`${op.room.prefix}${op.key}`, op)
    return this.#exclusive(() => this.#store())
  }

  /** Stops the retries after one last attempt; what is still queued then is lost (logged). */
  async close(): Promise<void> {
    this.#closed = true
    clearTimeout(this.#timer)
    await this.#exclusive(() => this.#store()).catch(() => {})
    if (this.#pending.size > 0)
      this.#log.error(
        { db: this.#db.location, writes: this.#pending.size },
        'database closed with writes it could not store',
      )
  }

  #exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.#lock.then(fn, fn)
    this.#lock = run.catch(() => {})
    return run
  }

  async #store(): Promise<void> {
    if (this.#pending.size === 0) return
    if (this.#mustRoll) {
      const short = this.#shortOfRoom()
      if (short) throw this.#fail(short)
      try {
        await (this.#db as unknown as Compactable).compactRange(NO_KEYS, NO_KEYS)
      } catch (err) {
        throw this.#fail(err)
      }
      this.#mustRoll = false
    }
    const batch = [...this.#pending]
    try {
      await this.#db.batch(
        batch.map(([, op]) =>
          op.value === undefined
            ? { type: 'del' as const, sublevel: op.room as never, key: op.key }
            : { type: 'put' as const, sublevel: op.room as never, key: op.key, value: op.value },
        ),
      )
    } catch (err) {
      this.#mustRoll = true
      throw this.#fail(err)
    }
    for (const [id, op] of batch) if (this.#pending.get(id) === op) this.#pending.delete(id)
    if (this.#failing) {
      this.#log.info(
        { db: this.#db.location },
        'database takes writes again; the records held in memory are stored',
      )
      this.#failing = undefined
      this.#retryMs = RETRY_FIRST_MS
    }
  }

  /** An error when the disk has no room for the roll (without touching LevelDB), else undefined. */
  #shortOfRoom(): Error | undefined {
    const dir = this.#db.location
    let free: number
    let log = 0
    try {
      const fs = statfsSync(dir)
      free = fs.bavail * fs.bsize
      for (const name of readdirSync(dir)) if (name.endsWith('.log')) log += statSync(join(dir, name)).size
    } catch {
      return undefined // let LevelDB say what is wrong
    }
    const need = 2 * log + ROLL_MARGIN_BYTES
    if (free >= need) return undefined
    return new Error(`IO error: ${dir}: No space left on device (${free} bytes free, ${need} needed)`)
  }

  #fail(err: unknown): DatabaseWriteError {
    const e = writeErrorOf(this.#db, err)
    if (!this.#failing) {
      this.#log.error(
        { db: this.#db.location, errno: e.errno, err: (e.cause as Error | undefined)?.message ?? e.message },
        `database ${this.#db.location} cannot store writes${e.errno ? ` (${e.errno})` : ''}; serving from memory, retrying`,
      )
    }
    this.#failing = e
    this.#scheduleRetry()
    return e
  }

  #scheduleRetry(): void {
    if (this.#closed || this.#timer) return
    this.#timer = setTimeout(() => {
      this.#timer = undefined
      this.#exclusive(() => this.#store()).catch(() => {})
    }, this.#retryMs)
    this.#timer.unref()
    this.#retryMs = Math.min(this.#retryMs * 2, RETRY_MAX_MS)
  }
}
