/**
 * The stat cache: one file per mirror beside the database (`<db>/statcache/<mirror sublevel>`), listing
 * every entry the last plain scan walked, in walk (key) order, with the stat the index compares. Like
 * git's index file, it lets an unchanged rescan be a bare stat walk: the walker thread compares its
 * lstat results with the cache and, when every entry matches, the main thread only records the scan.
 *
 * It is a cache, never the truth: it is believed only when its token equals the database's
 * `meta/statcache` (store.ts), which commits that change path records delete and which is set only after
 * the file is complete and renamed into place; its root must be the scanned root, its checksum must hold,
 * and a scan that finds an interrupted one (`meta/scanning`, a journal) does not use it. Any doubt costs
 * one full scan, which writes a fresh cache.
 *
 * Format (little-endian), written and read by the walker thread (walk-worker.ts keeps its own copy):
 *
 *   "CIDMSC01"  u32 n  header JSON (n bytes): { token, root }
 *   entries:    u8 kind (0 file, 1 dir, 2 symlink)  u32 key length  f64 size  f64 mtimeMs  f64 ctimeMs
 *               f64 ino  key (UTF-8, keys.ts form)
 *   footer:     u8 0xff  f64 entries  f64 files  f64 dirs  f64 bytes
 *   sha256 of everything before it (32 bytes)
 */
import { mkdirSync, renameSync, rmSync } from 'node:fs'
import { join } from 'node:path'
import { sublevelName } from './keys.ts'

export interface StatCacheFiles {
  /** The cache in force. */
  file: string
  /** Where a scan writes its own, before it commits. */
  temp: string
}

/** The stat cache files of `mirror` for scan `id`, in the database directory `location`. */
export function statCacheFiles(location: string, mirror: string, id: number): StatCacheFiles {
  const dir = join(location, 'statcache')
  mkdirSync(dir, { recursive: true })
  const file = join(dir, sublevelName(mirror))
  return { file, temp: `${file}.${id}.tmp` }
}

/** Puts a scan's finished cache in force (the caller then records its token). */
export function installStatCache(f: StatCacheFiles): void {
  renameSync(f.temp, f.file)
}

export function discardStatCache(f: StatCacheFiles): void {
  rmSync(f.temp, { force: true })
}
