/**
 * Scan commits, as an event: whoever must follow the index (the replicator picking up each sync's new
 * root and files, caches keyed on the last scan) subscribes here instead of being called by the scan.
 */
import type { Database } from '../db.ts'
import type { ScanSummary } from './records.ts'

/**
 * Called once a scan of a mirror in this process has committed: readers see its index from then on.
 * The records it wrote are those whose `scan` is `summary.id`; `summary.rootCid` is the mirror's new
 * root.
 */
export type ScanCommitListener = (summary: ScanSummary) => void

interface Subscription {
  listener: ScanCommitListener
  onError: (err: unknown) => void
}

const subscriptions = new WeakMap<Database, Set<Subscription>>()

/**
 * Calls `listener` after each scan of any mirror of `db` commits in this process. A listener that
 * throws does not fail the scan (it has committed): its error goes to `onError` (default: a process
 * warning). Returns the unsubscribe function.
 */
export function onScanCommitted(
  db: Database,
  listener: ScanCommitListener,
  opts: { onError?: (err: unknown) => void } = {},
): () => void {
  let set = subscriptions.get(db)
  if (!set) {
    set = new Set()
    subscriptions.set(db, set)
  }
  const sub: Subscription = {
    listener,
    onError: opts.onError ?? ((err) => process.emitWarning(err as Error, 'ScanCommitListenerError')),
  }
  set.add(sub)
  return () => {
    set.delete(sub)
  }
}

export function emitScanCommitted(db: Database, summary: ScanSummary): void {
  const set = subscriptions.get(db)
  if (!set) return
  for (const sub of [...set]) {
    try {
      sub.listener(summary)
    } catch (err) {
      sub.onError(err)
    }
  }
}
