import { mkdirSync } from 'node:fs'
import { Level } from 'level'
import { CidmirrorError } from './errors.ts'

/**
 * The one LevelDB of a cidmirror process. Each room takes a sublevel of its own (`db.sublevel('index')`,
 * `db.sublevel('jobs')`) and only that room knows its keys.
 */
export type Database = Level<string, unknown>

/** A room's own part of the database; values are JSON, as in the root (sublevels do not inherit it). */
export type Room<V = unknown> = ReturnType<typeof sublevelOf<V>>

export function sublevelOf<V = unknown>(db: Database, name: string) {
  return db.sublevel<string, V>(name, { valueEncoding: 'json' })
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
