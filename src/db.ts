import { mkdirSync } from 'node:fs'
import { Level } from 'level'
import { CidmirrorError } from './errors.ts'

/**
 * The one LevelDB of a cidmirror process. Each room takes a sublevel of its own (`sublevelOf(db,
 * 'index')`, `sublevelOf(db, 'jobs')`) and only that room knows its keys.
 */
export type Database = Level<string, unknown>

/** A room's own part of the database; values are JSON, as in the root. */
export type Room<V = unknown> = ReturnType<typeof sublevelOf<V>>

/**
 * The sublevel `name` of `db` with JSON values: a plain `sublevel()` does not inherit the encoding. A
 * room's own parts are sublevels of its sublevel, made the same way (cast to Database).
 */
export function sublevelOf<V = unknown>(db: Database, name: string) {
  return db.sublevel<string, V>(name, { valueEncoding: 'json' })
}

/**
 * A key range in a room's own keys (without its prefix), as abstract-level's range options. No bound:
 * the whole room.
 */
export interface KeyRange {
  gt?: string
  gte?: string
  lt?: string
  lte?: string
  reverse?: boolean
  /** At most this many entries. */
  limit?: number
}

/**
 * Batch sizes asked of LevelDB: the first fits the small ranges that most reads are, later ones grow
 * to a cap. classic-level sizes each iterator's native batch buffer to the count asked for (64 bytes
 * an entry: 1000 entries are 64 KB) and frees it only when V8 collects the iterator, at a full GC,
 * after thousands of reads: asking for what is needed is what keeps that memory small. (LevelDB also
 * ends a batch at 16 KiB of keys and values, so a larger cap would not read more per call.)
 */
const FIRST_BATCH = 16
const MAX_BATCH = 256

/** What the range reader needs of a room (any sublevel, nested or not: `db` is the root). */
interface RoomLike {
  readonly prefix: string
  readonly db: unknown
}

/** What a range read returns: entries, keys or values. */
type Want = 'entries' | 'keys' | 'values'

/**
 * Pages of a room's range, in key order (or reverse), read with one iterator that is closed when the
 * pages end, when the caller stops early (`break`), or on an error. The way to read ranges in
 * cidmirror (see DEVELOPING.md, "Reading the database"): never `for await` over a level iterator,
 * never its `.all()`; those leave each read's native buffers (up to 64 KB) to the GC, and memory
 * grows without bound under steady reads (bench/repro/level-iterator-leak.ts). Read through the root
 * database with utf8 keys and values, JSON parsed here: rooms hold JSON (`sublevelOf`).
 */
export async function* rangePages<V>(room: Room<V>, range: KeyRange = {}): AsyncGenerator<[string, V][]> {
  yield* pages(room, range, 'entries') as AsyncGenerator<[string, V][]>
}

/** Every entry of a room's range, [key, value], in key order (or reverse). See `rangePages`. */
export async function readRange<V>(room: Room<V>, range: KeyRange = {}): Promise<[string, V][]> {
  return collect(pages(room, range, 'entries')) as Promise<[string, V][]>
}

/** The keys of a room's range. See `rangePages`. */
export async function readKeys<V>(room: Room<V>, range: KeyRange = {}): Promise<string[]> {
  return collect(pages(room, range, 'keys')) as Promise<string[]>
}

/** The values of a room's range. See `rangePages`. */
export async function readValues<V>(room: Room<V>, range: KeyRange = {}): Promise<V[]> {
  return collect(pages(room, range, 'values')) as Promise<V[]>
}

async function collect<T>(it: AsyncGenerator<T[]>): Promise<T[]> {
  let out: T[] | undefined
  for await (const page of it) {
    if (out === undefined) out = page
    else for (const x of page) out.push(x)
  }
  return out ?? []
}

/** The first string above every key that starts with `prefix` (sublevel prefixes end in `!`). */
export function prefixUpperBound(prefix: string): string {
  return prefix.slice(0, -1) + String.fromCharCode(prefix.charCodeAt(prefix.length - 1) + 1)
}

async function* pages(room: RoomLike, range: KeyRange, want: Want): AsyncGenerator<unknown[]> {
  const prefix = room.prefix
  const skip = prefix.length
  const bounds: Record<string, string> = {}
  if (range.gt !== undefined) bounds.gt = prefix + range.gt
  else bounds.gte = prefix + (range.gte ?? '')
  if (range.lte !== undefined) bounds.lte = prefix + range.lte
  else bounds.lt = range.lt !== undefined ? prefix + range.lt : prefixUpperBound(prefix)
  let left = range.limit ?? Number.POSITIVE_INFINITY
  if (left <= 0) return
  const it = (room.db as Database).iterator<string, string>({
    ...bounds,
    reverse: range.reverse ?? false,
    keys: want !== 'values',
    values: want !== 'keys',
    keyEncoding: 'utf8',
    valueEncoding: 'utf8',
  })
  try {
    let size = FIRST_BATCH
    while (left > 0) {
      const ask = Math.min(size, left)
      const batch = (await it.nextv(ask)) as unknown as [string, string][]
      if (batch.length === 0) return
      left -= batch.length
      const page: unknown[] = new Array(batch.length)
      for (let i = 0; i < batch.length; i++) {
        const [k, v] = batch[i] as [string, string]
        page[i] =
          want === 'keys' ? k.slice(skip) : want === 'values' ? JSON.parse(v) : [k.slice(skip), JSON.parse(v)]
      }
      yield page
      // LevelDB ends a batch early at 16 KiB, so a short batch is not the end; an empty one is.
      size = Math.min(size * 4, MAX_BATCH)
    }
  } finally {
    await it.close()
  }
}

export class DatabaseLockedError extends CidmirrorError {
  constructor(path: string, options?: { cause?: unknown }) {
    super(
      'DB_LOCKED',
      `database ${path} is held by another process (a running cidmirror daemon?); stop it or use its HTTP API`,
      options,
    )
  }
}

export class DatabaseOpenError extends CidmirrorError {
  constructor(path: string, reason: string, options?: { cause?: unknown }) {
    super('DB_OPEN', `cannot open database ${path}: ${reason}`, options)
  }
}

/**
 * A write the database could not store. `errno` names the system's reason when LevelDB's message
 * carries one (ENOSPC: the disk is full), so that operators and callers can tell a full disk from a bug.
 */
export class DatabaseWriteError extends CidmirrorError {
  readonly path: string
  readonly errno: string | undefined
  constructor(path: string, reason: string, errno: string | undefined, options?: { cause?: unknown }) {
    super(
      'DB_WRITE',
      `database ${path} cannot store writes: ${reason}${errno ? ` (${errno})` : ''}; what cidmirror holds in memory is served and stored when the database takes writes again`,
      options,
    )
    this.path = path
    this.errno = errno
  }
}

/** LevelDB's IO errors carry strerror()'s text; these are the ones an operator can fix. */
const ERRNO_TEXT: [RegExp, string][] = [
  [/no space left on device/i, 'ENOSPC'],
  [/disk quota exceeded/i, 'EDQUOT'],
  [/read-only file system/i, 'EROFS'],
  [/input\/output error/i, 'EIO'],
  [/permission denied/i, 'EACCES'],
]

/** A failed write of `db` as a DatabaseWriteError naming its path and, when known, the errno. */
export function writeErrorOf(db: Database, err: unknown): DatabaseWriteError {
  if (err instanceof DatabaseWriteError) return err
  const e = err as { message?: string; code?: string; cause?: { message?: string } }
  const text = `${e.message ?? String(err)} ${e.cause?.message ?? ''}`
  const found = ERRNO_TEXT.find(([re]) => re.test(text))
  const reason = found ? (found[1] === 'ENOSPC' ? 'no space left on device' : text.trim()) : text.trim()
  return new DatabaseWriteError(db.location, reason, found?.[1], { cause: err })
}

export async function openDatabase(path: string): Promise<Database> {
  try {
    mkdirSync(path, { recursive: true })
  } catch (err) {
    throw new DatabaseOpenError(path, (err as Error).message, { cause: err })
  }
  const db = new Level<string, unknown>(path, { valueEncoding: 'json' })
  try {
    await db.open()
  } catch (err) {
    const cause = (err as { cause?: { code?: string; message?: string } }).cause
    const text = `${(err as Error).message} ${cause?.message ?? ''}`
    if (cause?.code === 'LEVEL_LOCKED' || /lock/i.test(text))
      throw new DatabaseLockedError(path, { cause: err })
    throw new DatabaseOpenError(path, cause?.message ?? (err as Error).message, { cause: err })
  }
  return db
}
