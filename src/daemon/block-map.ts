/**
 * The index's block map kept up to date when no replicator does it (a daemon with `[gateway]` and no
 * `[ipfs]` or `[replication]`): the trustless `/ipfs/` routes read directory and file nodes and the
 * leaves of large files through it. After each committed scan, and at start for scans committed while
 * nothing mapped them, each mirror's new records are mapped, one mirror's runs in commit order.
 */
import type { Logger } from 'pino'
import type { Database } from '../db.ts'
import { blockMapSince, listMirrors, mapBlocks, onScanCommitted } from '../index/index.ts'

/** Starts following; the function returned stops it and waits for a map in progress. */
export function followBlockMap(db: Database, log: Logger): () => Promise<void> {
  const chains = new Map<string, Promise<void>>()
  const abort = new AbortController()
  const run = (mirror: string, root: string): void => {
    const next = (chains.get(mirror) ?? Promise.resolve())
      .then(async () => {
        const since = await blockMapSince(db, mirror)
        const m = await mapBlocks(db, mirror, root, { since, signal: abort.signal })
        log.info(
          { mirror, since, nodes: m.nodes, leaves: m.leaves, stale: m.stale.length },
          'block map brought up to date',
        )
      })
      .catch((err: unknown) => {
        if (!abort.signal.aborted) log.error({ mirror, err: (err as Error).message }, 'mapping blocks failed')
      })
    chains.set(mirror, next)
  }
  const unsubscribe = onScanCommitted(db, (s) => run(s.mirror, s.root), {
    onError: (err) => log.error({ err }, 'block map follow failed'),
  })
  void listMirrors(db)
    .then((ms) => {
      for (const m of ms) run(m.mirror, m.root)
    })
    .catch((err: unknown) => log.error({ err: (err as Error).message }, 'listing mirrors to map failed'))
  return async () => {
    unsubscribe()
    abort.abort()
    await Promise.all(chains.values())
  }
}
