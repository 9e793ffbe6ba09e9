/**
 * Local file states: whether a file's bytes are on this disk. The path record's `state` says present,
 * evicted or deleted (the scan keeps an evicted record whose file is absent); beside it the index keeps,
 * per path the janitor or the fetch-back touched, when that happened:
 *
 *   index/m.<name>/l/<path key> -> LocalEntry   evicted or refetched at, for the record's CID `cid`
 *   index/m.<name>/g/<path key> -> epoch ms     an evicted path the upstream no longer has: the next
 *                                               scan records it deleted (and re-encodes its directory)
 *
 * An entry belongs to the copy it was made for: the commit of a scan that records the path deleted, or
 * with another CID, or back after a deletion, drops its `l` and `g` entries in the same batch
 * (store.ts `applyCommit`), so a later copy with the same bytes is neither "refetched" nor evicted at
 * the old time. An entry whose `cid` is not the record's (written before that rule) is read as absent. Every write here waits for the mirror's scan to end (MirrorState's
 * lock) and keeps the crash-safety promise: the eviction is durable (a synced batch) before `remove`
 * unlinks anything, and an evicted record keeps size, mtime, inode and CID, so the mirror's root CID,
 * computed from records, stays the upstream tree's.
 */
import { type Room, rangePages, readKeys } from '../db.ts'
import { checkRelPath } from './checks.ts'
import { keyOf, pathOf } from './keys.ts'
import { decodeRecord, encodeRecord, type PathRecord, type StoredRecord, toPathRecord } from './records.ts'
import type { MirrorState } from './state.ts'
import type { MirrorStore } from './store.ts'

export interface LocalEntry {
  /** The CID the times are about. */
  cid: string
  /** Epoch ms of the last eviction. */
  evictedAt?: number
  /** Epoch ms when the file was fetched back into the tree. */
  refetchedAt?: number
}

/** What this disk holds of a path. refetched: present again after an eviction, fetched back. */
export type LocalStateName = 'present' | 'evicted' | 'refetched' | 'deleted'

export interface LocalState {
  path: string
  state: LocalStateName
  cid: string
  size: number
  mtimeMs: number
  /** ISO times, when known. */
  evictedAt?: string
  refetchedAt?: string
}

/** An evicted file, as the exclude list and the fetch-back need it. */
export interface EvictedRecord {
  path: string
  cid: string
  size: number
  mtimeMs: number
  /** Epoch ms of the eviction, when the index recorded one (undefined for records evicted before). */
  evictedAt: number | undefined
}

/** What the caller saw when it judged a file evictable: the eviction is refused if the record differs. */
export interface EvictItem {
  path: string
  cid: string
  size: number
  mtimeMs: number
}

/** Why an eviction was not done: the record is not a present file as judged, or the unlink failed. */
export type EvictRefusal = 'not-indexed' | 'not-a-file' | 'not-present' | 'changed' | 'remove-failed'

export type EvictOutcome =
  | { path: string; evicted: true; record: PathRecord }
  | { path: string; evicted: false; reason: EvictRefusal; error?: Error }

/** The stat of a fetched-back file as it lies in the tree now (after its rename). */
export interface PlacedStat {
  size: number
  mtimeMs: number
  ctimeMs: number
  ino: number
}

/** A record as the paths sublevel stores it (JSON: `encodeRecord`'s array). */
function stored(r: StoredRecord): unknown {
  return JSON.parse(encodeRecord(r))
}

/** Why a committed record `r` is not evicted as `item` asks, or undefined when it may be. */
function refusal(r: StoredRecord | undefined, item: EvictItem): EvictRefusal | undefined {
  if (!r) return 'not-indexed'
  if (r.kind !== 'file') return 'not-a-file'
  if (r.state !== 'present') return 'not-present'
  if (r.cid !== item.cid || r.size !== item.size || r.mtimeMs !== item.mtimeMs) return 'changed'
  return undefined
}

/** Runs `fn` once no scan of the mirror runs and no other local write does. */
export async function exclusive<T>(state: MirrorState, fn: () => Promise<T>): Promise<T> {
  const prev = state.lock
  let release!: () => void
  const mine = new Promise<void>((r) => {
    release = r
  })
  state.lock = prev.then(() => mine)
  await prev
  try {
    return await fn()
  } finally {
    release()
  }
}

/** Forgets what was cached of committed records (counts, the stat cache): records changed outside a scan. */
function recordsChanged(state: MirrorState): void {
  state.counts = undefined
}

export class LocalStates {
  readonly #state: MirrorState

  constructor(state: MirrorState) {
    this.#state = state
  }

  /**
   * Records each item's eviction (state evicted, its metadata kept, the time in `l`) in one synced
   * batch, then calls `remove` for each evicted record (the janitor unlinks the file there). An item
   * whose committed record is not a present file with the CID, size and mtime the caller saw is left
   * alone. A `remove` that throws is reported: the record stays evicted and the janitor's next run
   * finishes the unlink (`unfinished`).
   */
  evict(
    items: EvictItem[],
    remove: (record: PathRecord) => Promise<void>,
    now = Date.now(),
  ): Promise<EvictOutcome[]> {
    const state = this.#state
    const store = state.store
    return exclusive(state, async () => {
      await store.ready()
      const keys = items.map((i) => keyOf(checkRelPath(i.path)))
      const values = await store.paths.getMany(keys)
      const out: EvictOutcome[] = []
      const batch = store.db.batch()
      const records: PathRecord[] = []
      for (let i = 0; i < items.length; i++) {
        const item = items[i]!
        const v = values[i]
        const r = v === undefined ? undefined : decodeRecord(v)
        const reason = refusal(r !== undefined && store.isCommitted(r) ? r : undefined, item)
        if (reason !== undefined) {
          out.push({ path: item.path, evicted: false, reason })
          continue
        }
        const rec: StoredRecord = { ...r!, state: 'evicted' }
        batch.put(keys[i]!, stored(rec), { sublevel: store.paths })
        batch.put(keys[i]!, { cid: rec.cid, evictedAt: now }, { sublevel: store.local })
        records.push(toPathRecord(pathOf(keys[i]!), rec))
      }
      if (records.length > 0) {
        batch.del('statcache', { sublevel: store.meta })
        await batch.write({ sync: true })
        recordsChanged(state)
      } else await batch.close()
      for (const record of records) {
        try {
          await remove(record)
          out.push({ path: record.path, evicted: true, record })
        } catch (err) {
          out.push({ path: record.path, evicted: false, reason: 'remove-failed', error: err as Error })
        }
      }
      return out
    })
  }

  /**
   * A fetched-back file lies in the tree again (renamed into place, stat `stat`): its record becomes
   * present with that stat, so the next scan does not hash it again, and `refetchedAt` starts its cache
   * lifetime (`refetched_ttl`). Refused (undefined) when the record no longer holds `cid` or is gone.
   */
  markRefetched(
    relPath: string,
    opts: { cid: string; stat: PlacedStat; at?: number },
  ): Promise<PathRecord | undefined> {
    const state = this.#state
    const store = state.store
    const key = keyOf(checkRelPath(relPath))
    return exclusive(state, async () => {
      const r = await store.getRecord(key)
      if (r?.kind !== 'file' || r.state === 'deleted' || r.cid !== opts.cid || r.size !== opts.stat.size)
        return undefined
      const rec: StoredRecord = {
        ...r,
        mtimeMs: opts.stat.mtimeMs,
        ctimeMs: opts.stat.ctimeMs,
        ino: opts.stat.ino,
        state: 'present',
      }
      const prev = await store.local.get(key)
      const entry: LocalEntry = { cid: r.cid, refetchedAt: opts.at ?? Date.now() }
      if (prev?.cid === r.cid && prev.evictedAt !== undefined) entry.evictedAt = prev.evictedAt
      const batch = store.db.batch()
      // The per-CID index holds evicted and present records alike: nothing changes there.
      batch.put(key, stored(rec), { sublevel: store.paths })
      batch.put(key, entry, { sublevel: store.local })
      batch.del('statcache', { sublevel: store.meta })
      await batch.write()
      recordsChanged(state)
      return toPathRecord(pathOf(key), rec)
    })
  }

  /** The committed evicted records of the mirror that the index recorded evicting, in path order. */
  async *evicted(): AsyncGenerator<EvictedRecord> {
    const state = this.#state
    const store = state.store
    await store.ready()
    for await (const entries of rangePages(store.local as Room<LocalEntry>)) {
      const values = await store.paths.getMany(entries.map(([k]) => k))
      for (let i = 0; i < entries.length; i++) {
        const v = values[i]
        if (v === undefined) continue
        const r = decodeRecord(v)
        const [key, e] = entries[i]!
        if (!store.isCommitted(r) || r.state !== 'evicted' || r.kind !== 'file') continue
        yield {
          path: pathOf(key),
          cid: r.cid,
          size: r.size,
          mtimeMs: r.mtimeMs,
          evictedAt: e.cid === r.cid ? e.evictedAt : undefined,
        }
      }
    }
  }

  /**
   * Local entries (evicted or refetched times) by relative path. An entry is about its `cid`: compare
   * it with the record's before believing it.
   */
  async entries(): Promise<Map<string, LocalEntry>> {
    const out = new Map<string, LocalEntry>()
    for await (const page of rangePages(this.#state.store.local as Room<LocalEntry>))
      for (const [k, v] of page) out.set(pathOf(k), v)
    return out
  }

  /** A path's local state, or undefined when the index has no committed record of it. */
  async of(relPath: string): Promise<LocalState | undefined> {
    const state = this.#state
    const key = keyOf(checkRelPath(relPath))
    const r = await state.store.getRecord(key)
    if (!r) return undefined
    const e = await state.store.local.get(key)
    return localStateOf(pathOf(key), r, e)
  }

  /**
   * Evicted paths the upstream no longer has: the next scan records them deleted (an excluded path is
   * invisible to rsync, so its `--delete` does not say so). Paths not evicted are ignored.
   */
  markGoneUpstream(paths: string[], now = Date.now()): Promise<number> {
    const state = this.#state
    const store = state.store
    return exclusive(state, async () => {
      const keys = paths.map((p) => keyOf(checkRelPath(p)))
      const values = await store.paths.getMany(keys)
      const batch = store.db.batch()
      let n = 0
      keys.forEach((key, i) => {
        const v = values[i]
        if (v === undefined) return
        const r = decodeRecord(v)
        if (!store.isCommitted(r) || r.state !== 'evicted') return
        batch.put(key, now, { sublevel: store.gone })
        n++
      })
      batch.del('statcache', { sublevel: store.meta })
      await batch.write()
      return n
    })
  }
}

/** Path keys marked gone upstream (read by a scan as it begins). */
export async function goneKeys(store: MirrorStore): Promise<Set<string>> {
  return new Set(await readKeys(store.gone))
}

/** Drops gone-upstream marks once a scan that read them has committed (it acted on each). */
export async function clearGone(store: MirrorStore, keys: Set<string>): Promise<void> {
  if (keys.size > 0) await store.gone.batch([...keys].map((key) => ({ type: 'del' as const, key })))
}

/** A record's local state, with its local entry when it has one. */
export function localStateOf(path: string, r: StoredRecord, e: LocalEntry | undefined): LocalState {
  const current = e !== undefined && e.cid === r.cid ? e : undefined
  let name: LocalStateName = r.state
  if (r.state === 'present' && current?.refetchedAt !== undefined) name = 'refetched'
  const out: LocalState = { path, state: name, cid: r.cid, size: r.size, mtimeMs: r.mtimeMs }
  if (current?.evictedAt !== undefined) out.evictedAt = new Date(current.evictedAt).toISOString()
  if (name === 'refetched') out.refetchedAt = new Date(current!.refetchedAt!).toISOString()
  return out
}
