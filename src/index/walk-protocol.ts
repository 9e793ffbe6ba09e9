/** Messages between the walker thread and the scanner. */

/** Entries per batch. */
export const BATCH = 1024

export interface WalkerData {
  root: string
  /** A stat cache to compare the walk with (statcache.ts), and the token the database expects in it. */
  compare?: { file: string; token: number }
  /** Where to write the stat cache of this walk (a temp file), tagged with `token`. */
  write?: { file: string; token: number }
  /** SharedArrayBuffer of one Int32: batches posted and not yet consumed. */
  credits: SharedArrayBuffer
  maxBatches: number
  batch: number
}

/**
 * A batch: `keys` is the batch's path keys (see keys.ts) joined by `/` (a byte no key holds: names
 * cannot, and keys separate names with `\x00`); `nums[5i..5i+4]` are kind (0 file, 1 dir, 2 symlink),
 * size, mtimeMs, ctimeMs, ino of the i-th key. One string clones far cheaper than a thousand.
 */
export type WalkMessage =
  | { type: 'batch'; keys: string; nums: Float64Array }
  | { type: 'error'; path: string; code: string; message: string }
  /** The walk equals the stat cache entry for entry: no batch was or will be sent. */
  | { type: 'identical'; counts: WalkCounts }
  /** `cacheWritten`: the stat cache of this walk is complete in `write.file`. */
  | { type: 'done'; cacheWritten: boolean }

/** Totals of a walk: regular files and symlinks, directories (the root included), bytes of files. */
export interface WalkCounts {
  files: number
  dirs: number
  bytes: number
}
