import type { Database } from '../db.ts'
import { checkMirrorName } from './checks.ts'
import { MirrorStore } from './store.ts'

/**
 * What one process keeps per database and mirror, whatever root the mirror is opened at: one store
 * (whose `last` every reader of the mirror believes, so a commit is seen by all of them) and one scan
 * lock (so scans of one mirror never overlap, even when the root changes between them).
 */
export interface MirrorState {
  readonly db: Database
  readonly store: MirrorStore
  scanning: boolean
  /**
   * Tail of the chain of record writers (a scan, an eviction, a refetch mark: local.ts `exclusive`),
   * so that no write outside a scan lands while a scan merges against the records it read.
   */
  lock: Promise<void>
  /**
   * Record counts by state as of scan `last` (reader.ts). Anything that changes records outside a
   * scan (an eviction) drops it.
   */
  counts?: { last: number; value: Promise<StateCounts> }
}

/** Committed records by state: files and symlinks in each state, and the directories present. */
export interface StateCounts {
  present: number
  evicted: number
  deleted: number
  dirs: number
}

const states = new WeakMap<Database, Map<string, MirrorState>>()

export function stateOf(db: Database, mirror: string): MirrorState {
  checkMirrorName(mirror)
  let byName = states.get(db)
  if (!byName) {
    byName = new Map()
    states.set(db, byName)
  }
  let state = byName.get(mirror)
  if (!state) {
    state = { db, store: new MirrorStore(db, mirror), scanning: false, lock: Promise.resolve() }
    byName.set(mirror, state)
  }
  return state
}
