import { EventEmitter } from 'node:events'
import pLimit, { type LimitFunction } from 'p-limit'
import type { Logger } from 'pino'
import type { Database } from '../db.ts'
import { type CopyRecord, CopyStore } from '../index/index.ts'
import { backoffDelay } from '../util/backoff.ts'
import { judge, type ReplicationPolicy, type Verdict } from './policy.ts'
import { type QueueEntry, ReplicationQueue, type TargetState } from './queue.ts'
import { type CopyCounter, isStorageTarget, type ReplicationItem, type StorageTarget } from './target.ts'

export interface RetryBackoff {
  baseMs: number
  maxMs: number
}

export interface ReplicatorOptions {
  db: Database
  /** Targets and counters in the configured order: stores go to the first ones that lack a copy. */
  counters: CopyCounter[]
  /** The policy of an item (per-mirror overrides). */
  policy: (item: ReplicationItem) => ReplicationPolicy
  /** Re-check every item this often (copies disappear: pins removed, nodes gone). */
  recheckMs: number
  /** Backoff of a target that failed for an item. */
  backoff?: RetryBackoff
  /** Items processed at once. */
  concurrency?: number
  /** Time limit of one check or store call. */
  callTimeoutMs?: number
  /**
   * The archived items (`archived` set) of what left `mirror`'s tree in the scans after `after` up to
   * `upTo` and that the tree of scan `after` held (what a pin of its root holds). Before a tree
   * target's pin moves off the previous root, each is stored on that target as its own item, so no
   * copy of it drops in between (issue 13: files that leave the mirror stay in the archive). Content
   * that came and went between the two scans is no part of it: the target never held it (its own item
   * is stored, or fails, apart), and the pin does not wait for bytes that may be gone. Without this
   * option, a tree pin moves as it is.
   */
  archived?: (mirror: string, after: number, upTo: number) => Promise<ReplicationItem[]>
  /**
   * `[replication] keep_archived`: how long tree targets keep an archived item's own pin (ms from
   * when it was archived); then they release it (entity-scope targets and Filecoin keep theirs).
   * Undefined: for ever.
   */
  keepArchivedMs?: number
  log: Logger
  now?: () => number
  random?: () => number
}

export interface ReplicatorEvents {
  /** An item was processed; its new queue entry. */
  processed: [QueueEntry]
}

const DEFAULT_BACKOFF: RetryBackoff = { baseMs: 5_000, maxMs: 3_600_000 }

/**
 * Keeps every tracked item (a mirror's tree, or a CID) in n verified copies: checks each counter,
 * stores on targets in order until the policy holds, records every copy in the index room, and
 * schedules the next check, spread over the re-check interval. A target that fails is retried with
 * exponential backoff for that item while the others go on. Idempotent across restarts: the queue and
 * the copies are in LevelDB, and a store of what a target holds changes nothing.
 */
export class Replicator extends EventEmitter<ReplicatorEvents> {
  readonly queue: ReplicationQueue
  readonly copies: CopyStore
  readonly #o: ReplicatorOptions
  readonly #limits = new Map<string, LimitFunction>()
  readonly #items: LimitFunction
  readonly #now: () => number
  readonly #random: () => number
  readonly #running = new Set<string>()
  #timer: NodeJS.Timeout | undefined
  #stopped = true
  #abort = new AbortController()
  #wake: (() => void) | undefined
  #loop: Promise<void> | undefined

  constructor(opts: ReplicatorOptions) {
    super()
    this.#o = opts
    this.queue = new ReplicationQueue(opts.db)
    this.copies = new CopyStore(opts.db)
    this.#items = pLimit(opts.concurrency ?? 4)
    this.#now = opts.now ?? Date.now
    this.#random = opts.random ?? Math.random
    const names = new Set<string>()
    for (const c of opts.counters) {
      if (names.has(c.name)) throw new TypeError(`two replication targets named ${c.name}`)
      names.add(c.name)
      this.#limits.set(c.name, pLimit(isStorageTarget(c) ? c.concurrency : 4))
    }
  }

  /**
   * Tracks an item: a new one is checked at once; a tree item whose root changed (a new scan) keeps its
   * per-target state, remembers the old root as `previous` (so pins move with `pin update`) and is
   * checked at once.
   */
  async track(item: Omit<ReplicationItem, 'key'> & { key?: string }): Promise<void> {
    const key = item.key ?? (item.scope === 'tree' ? `tree:${item.mirror}` : `cid:${item.cid}`)
    const old = await this.queue.get(key)
    const archiving = item.archived !== undefined && old?.item.archived === undefined
    if (old && old.item.cid === item.cid && old.item.scan === item.scan && !archiving) return
    const next: ReplicationItem = { ...item, key }
    // Archived once, archived since then: a later track (a catch-up) keeps the first time.
    if (old?.item.archived) next.archived = old.item.archived
    if (old && old.item.cid !== item.cid) {
      next.previous = old.item.cid
      if (old.item.scan !== undefined) next.previousScan = old.item.scan
    }
    const entry: QueueEntry = {
      item: next,
      state: 'pending',
      targets: old?.targets ?? {},
      nextAt: this.#now(),
    }
    // A new root: backoff of the old one no longer applies.
    for (const t of Object.values(entry.targets)) t.retryAt = undefined
    await this.queue.put(entry, old)
    this.#wake?.()
  }

  /**
   * Makes items due now (all, or those whose key is given), backoff included: `audit --verify` and a
   * re-check on demand.
   */
  async checkNow(keys?: string[]): Promise<number> {
    const entries = keys
      ? (await Promise.all(keys.map((k) => this.queue.get(k)))).filter((e): e is QueueEntry => !!e)
      : await this.queue.all()
    const now = this.#now()
    for (const old of entries) {
      const e = structuredClone(old)
      e.nextAt = now
      for (const t of Object.values(e.targets)) t.retryAt = undefined
      await this.queue.put(e, old)
    }
    this.#wake?.()
    return entries.length
  }

  /** Processes every item due now, and returns how many were processed. */
  async runOnce(): Promise<number> {
    const keys = (await this.queue.due(this.#now(), 10_000)).filter((k) => !this.#running.has(k))
    await Promise.all(keys.map((k) => this.#items(() => this.#process(k))))
    return keys.length
  }

  /** Runs until `stop()`: processes due items, sleeps until the next is due or something is tracked. */
  start(): void {
    if (!this.#stopped) return
    this.#stopped = false
    this.#abort = new AbortController()
    this.#loop = this.#run()
  }

  /** Whether `start()` was called and `stop()` not since. */
  get running(): boolean {
    return !this.#stopped
  }

  async stop(): Promise<void> {
    this.#stopped = true
    this.#abort.abort(new Error('replicator stopped'))
    this.#wake?.()
    await this.#loop
    for (const c of this.#o.counters) await c.close?.()
  }

  async #run(): Promise<void> {
    while (!this.#stopped) {
      try {
        await this.runOnce()
      } catch (err) {
        this.#o.log.error({ err }, 'replication pass failed')
      }
      if (this.#stopped) break
      const next = await this.queue.nextDue().catch(() => undefined)
      const wait = Math.min(60_000, Math.max(50, (next ?? this.#now() + 60_000) - this.#now()))
      await new Promise<void>((resolve) => {
        this.#wake = resolve
        this.#timer = setTimeout(resolve, wait)
      })
      clearTimeout(this.#timer)
      this.#wake = undefined
    }
  }

  async #call<T>(c: CopyCounter, what: string, fn: (signal: AbortSignal) => Promise<T>): Promise<T> {
    const limit = this.#limits.get(c.name)!
    return limit(async () => {
      const signals = [this.#abort.signal]
      if (this.#o.callTimeoutMs) signals.push(AbortSignal.timeout(this.#o.callTimeoutMs))
      const signal = AbortSignal.any(signals)
      try {
        return await fn(signal)
      } catch (err) {
        if (signal.aborted && !this.#abort.signal.aborted)
          throw new Error(`${c.name}: ${what} timed out after ${this.#o.callTimeoutMs} ms`)
        throw err
      }
    })
  }

  #backoff(state: TargetState): number {
    return backoffDelay(
      { ...(this.#o.backoff ?? DEFAULT_BACKOFF), jitter: 0.2 },
      state.failures - 1,
      this.#random,
    )
  }

  async #recorded(item: ReplicationItem): Promise<CopyRecord[]> {
    return item.scope === 'tree' ? this.copies.trees(item.mirror!) : this.copies.of(item.cid)
  }

  /**
   * Stores on `c` each archived item of what left the tree between the item's previous scan and its
   * scan, and records their copies (entity copies, like any file's).
   * Throws when one cannot be stored: the tree pin then stays where it is (it still holds them all).
   */
  async #archiveOn(c: StorageTarget, item: ReplicationItem): Promise<void> {
    if (!this.#o.archived || item.mirror === undefined) return
    const items = await this.#o.archived(item.mirror, item.previousScan ?? 0, item.scan ?? 0)
    // Always a store (idempotent): a check would see them held through the very pin that moves.
    await Promise.all(
      items.map(async (a) => {
        const copies = await this.#call(c, 'store', (signal) => c.store(a, { signal }))
        const checkedAt = this.#now()
        for (const r of copies)
          await this.copies.put({ ...r, target: c.name, checkedAt: r.checkedAt || checkedAt })
      }),
    )
    if (items.length > 0)
      this.#o.log.info(
        { item: item.key, target: c.name, archived: items.length },
        'archived content pinned on its own before the tree pin moves',
      )
  }

  /**
   * `keep_archived` ran out for an archived item: each tree target releases the item's own pin and its
   * copy records go. The item then stays for entity-scope targets (no longer archived: they keep it as
   * any file), or leaves the queue when there are none. False when it left the queue or a target
   * failed (retried with backoff), so there is nothing more to do now.
   */
  async #expire(entry: QueueEntry, old: QueueEntry): Promise<boolean> {
    const item = entry.item
    const trees = this.#o.counters.filter(
      (c): c is StorageTarget => isStorageTarget(c) && c.scope === 'tree' && c.release !== undefined,
    )
    const recorded = await this.copies.of(item.cid)
    let failed = false
    for (const c of trees) {
      entry.targets[c.name] ??= { failures: 0 }
      const ts = entry.targets[c.name]!
      try {
        await this.#call(c, 'release', (signal) => c.release!(item, { signal }))
        for (const r of recorded)
          if (r.target === c.name) await this.copies.remove({ cid: r.cid, holder: r.holder, scope: 'entity' })
        ts.failures = 0
        ts.error = undefined
      } catch (err) {
        if (this.#abort.signal.aborted) return false
        failed = true
        ts.failures++
        ts.error = err instanceof Error ? err.message : String(err)
        ts.retryAt = this.#now() + this.#backoff(ts)
      }
    }
    if (failed) {
      entry.state = 'failing'
      entry.reason = `releasing an archived pin: ${Object.values(entry.targets)
        .map((t) => t.error)
        .filter(Boolean)
        .join('; ')}`
      entry.nextAt = Math.min(...Object.values(entry.targets).map((t) => t.retryAt ?? Infinity))
      await this.queue.put(entry, old)
      return false
    }
    this.#o.log.info(
      { item: item.key, cid: item.cid, mirror: item.mirror },
      'archived pin released (keep_archived)',
    )
    if (!this.#o.counters.some((c) => c.scope === 'entity' && isStorageTarget(c))) {
      await this.queue.remove(old)
      return false
    }
    entry.item.archived = undefined
    return true
  }

  async #process(key: string): Promise<void> {
    this.#running.add(key)
    try {
      const old = await this.queue.get(key)
      if (!old) return
      const entry: QueueEntry = structuredClone(old)
      const item = entry.item
      const now = this.#now()
      const keep = this.#o.keepArchivedMs
      if (item.archived && keep !== undefined && item.archived.since + keep <= now) {
        if (!(await this.#expire(entry, old))) return
      }
      const policy = this.#o.policy(item)
      // Archived content is kept by tree targets too, as a pin of its own (their tree pin moves on).
      const counters = this.#o.counters.filter(
        (c) =>
          c.scope === item.scope || (item.archived !== undefined && isStorageTarget(c) && c.scope === 'tree'),
      )
      const recorded = await this.#recorded(item)
      const seen = new Map<string, CopyRecord[]>()
      const failed = new Set<string>()

      /** Targets that cannot store the item until its bytes can be read somewhere (`waits` errors). */
      const waiting = new Set<string>()
      const fail = (c: CopyCounter, ts: TargetState, err: unknown): void => {
        ts.failures++
        ts.error = err instanceof Error ? err.message : String(err)
        ts.retryAt = this.#now() + this.#backoff(ts)
        failed.add(c.name)
        if ((err as { waits?: unknown } | undefined)?.waits === true) waiting.add(c.name)
        this.#o.log.warn(
          {
            item: item.key,
            cid: item.cid,
            target: c.name,
            failures: ts.failures,
            retryAt: new Date(ts.retryAt),
          },
          `replication target failed: ${ts.error}`,
        )
      }
      const ok = (ts: TargetState): void => {
        ts.failures = 0
        ts.error = undefined
        ts.retryAt = undefined
        ts.okAt = this.#now()
      }

      // 1. What every counter sees now.
      for (const c of counters) {
        entry.targets[c.name] ??= { failures: 0 }
        const ts = entry.targets[c.name]!
        if (ts.retryAt !== undefined && ts.retryAt > now) continue
        try {
          seen.set(c.name, await this.#call(c, 'check', (signal) => c.check(item, { signal })))
          ok(ts)
        } catch (err) {
          if (this.#abort.signal.aborted) return
          fail(c, ts, err)
        }
      }
      // Only what answered now counts: a holder that is down or in backoff may hold its copy still
      // (its record stays, ageing out of the freshness window), but the replicator does not lean on it.
      const current = (): CopyRecord[] => {
        const out: CopyRecord[] = []
        for (const list of seen.values()) for (const r of list) if (r.cid === item.cid) out.push(r)
        return out
      }
      let verdict: Verdict = judge(current(), policy, now)

      // 2. Store on targets, in order, that lack a verified copy, until the policy holds.
      for (const c of counters) {
        if (verdict.satisfied) break
        if (!isStorageTarget(c) || failed.has(c.name) || !seen.has(c.name)) continue
        // A target keeps `copies` of an item on distinct holders (Filecoin: providers), 1 by default.
        const held = seen.get(c.name)!.filter((r) => r.cid === item.cid && r.status === 'verified')
        if (held.length >= ((c as StorageTarget).copies ?? 1)) continue
        const ts = entry.targets[c.name]!
        const started = this.#now()
        try {
          // A tree pin moves off the previous root only once what left the tree since is kept apart.
          if (
            item.scope === 'tree' &&
            item.previous &&
            seen.get(c.name)!.some((r) => r.cid === item.previous)
          )
            await this.#archiveOn(c as StorageTarget, item)
          const got = await this.#call(c, 'store', (signal) => (c as StorageTarget).store(item, { signal }))
          ok(ts)
          seen.set(c.name, got)
          this.#o.log.info(
            {
              item: item.key,
              cid: item.cid,
              previous: item.previous,
              target: c.name,
              ms: this.#now() - started,
            },
            'stored',
          )
        } catch (err) {
          if (this.#abort.signal.aborted) return
          fail(c, ts, err)
        }
        verdict = judge(current(), policy, this.#now())
      }

      // Upkeep of targets that answered (a check itself only reads).
      for (const c of counters) {
        if (!isStorageTarget(c) || !c.tidy || failed.has(c.name) || !seen.has(c.name)) continue
        try {
          await this.#call(c, 'tidy', (signal) => (c as StorageTarget).tidy!(item, { signal }))
        } catch (err) {
          if (this.#abort.signal.aborted) return
          this.#o.log.warn(
            { item: item.key, target: c.name, err: (err as Error).message },
            'target upkeep failed',
          )
        }
      }

      // 3. Record what was seen: new copies, and losses of copies recorded before.
      const checkedAt = this.#now()
      for (const [name, list] of seen) {
        const holders = new Set<string>()
        for (const r of list) {
          holders.add(r.holder)
          await this.copies.put({ ...r, target: name, checkedAt: r.checkedAt || checkedAt })
        }
        for (const r of recorded) {
          if (r.target !== name || holders.has(r.holder) || r.status === 'lost') continue
          if (r.cid !== item.cid && item.scope === 'entity') continue
          this.#o.log.warn({ item: item.key, cid: r.cid, holder: r.holder, target: name }, 'copy lost')
          await this.copies.put({ ...r, status: 'lost', checkedAt, error: 'no longer held' })
        }
      }

      entry.checkedAt = checkedAt
      entry.verified = verdict.count.verified
      if (verdict.satisfied) {
        entry.state = 'satisfied'
        entry.reason = undefined
        // Spread re-checks over the last quarter of the interval, so they do not all fall at once.
        entry.nextAt = checkedAt + Math.round(this.#o.recheckMs * (0.75 + 0.25 * this.#random()))
      } else {
        const failing = [...failed].map((n) => `${n}: ${entry.targets[n]!.error}`)
        entry.state =
          failed.size > waiting.size ? 'failing' : waiting.size > 0 ? 'waiting' : 'under-replicated'
        entry.reason = [verdict.shortfall, ...failing].filter(Boolean).join('; ')
        const retries = Object.values(entry.targets)
          .map((t) => t.retryAt)
          .filter((t): t is number => t !== undefined)
        entry.nextAt = Math.min(checkedAt + this.#o.recheckMs, ...retries)
        if (old.state === 'satisfied')
          this.#o.log.warn({ item: item.key, reason: entry.reason }, 'under-replicated')
      }
      if (old.state !== 'satisfied' && entry.state === 'satisfied' && old.checkedAt !== undefined)
        this.#o.log.info({ item: item.key, cid: item.cid, verified: entry.verified }, 'repaired')
      await this.queue.put(entry, old)
      this.emit('processed', entry)
    } finally {
      this.#running.delete(key)
    }
  }
}
