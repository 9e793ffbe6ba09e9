/**
 * A scan's walk and its stat cache (statcache.ts): the walk starts first, compared with the cache if
 * there is one, split over two threads; whether the cache is to be believed is decided while it runs.
 * The walk writes the cache of what it finds to a temp file, put in force only after the scan commits.
 */

import {
  discardStatCache,
  installStatCache,
  type LoadedStatCache,
  loadStatCache,
  type StatCacheFiles,
  splitStatCache,
  statCacheEntries,
  statCacheFiles,
} from '../statcache.ts'
import type { MirrorStore } from '../store.ts'
import { Walker } from '../walker.ts'

/** Walker threads for a walk compared with a stat cache (the machines this is made for have 2 cores). */
const WALK_THREADS = 2
export const SPLIT_WALK_AT = 4096

export class ScanWalk {
  readonly walker: Walker
  readonly files: StatCacheFiles
  /** The stat cache the walk is compared with, if one was read. */
  readonly cache: LoadedStatCache | undefined

  /**
   * Starts the walk of `root`: compared with the mirror's stat cache when there is one (split over
   * threads when it holds at least `splitAt` entries); without one, `startPlain` starts it.
   */
  constructor(store: MirrorStore, root: string, splitAt: number) {
    this.files = statCacheFiles(store.db.location, store.mirror)
    const entries = statCacheEntries(this.files.file)
    const threads = entries !== undefined && entries >= splitAt ? WALK_THREADS : 1
    this.walker = new Walker(root, { threads, write: this.files.temp })
    // The threads boot (tens of milliseconds) while the cache is read and split.
    this.cache = entries !== undefined ? loadStatCache(this.files.file) : undefined
    if (this.cache) this.walker.start({ sab: this.cache.sab, parts: splitStatCache(this.cache, threads) })
  }

  /** Starts a walk with no stat cache to compare with; `listed`: see walk-protocol.ts `WalkPartConfig`. */
  startPlain(listed: boolean): void {
    this.walker.start(undefined, { listed })
  }

  /**
   * The cache is believed only when it is the cache of the committed index (its token, `root`, the
   * root of the last scan) and no interrupted scan left work.
   */
  async cacheTrusted(store: MirrorStore, root: string, lastRoot: string | undefined, clean: boolean) {
    const cache = this.cache
    return (
      cache !== undefined &&
      clean &&
      lastRoot === root &&
      cache.root === root &&
      cache.token === (await store.statCacheToken()) &&
      cache.checksumOk()
    )
  }

  /** Puts the cache this walk wrote in force (the caller then records its token). */
  installCache(): void {
    installStatCache(this.files)
  }

  discardCache(): void {
    discardStatCache(this.files)
  }
}
