/** Messages between the walker threads and the scanner. */
import type { StatCacheLayout } from './statcache.ts'

/** Entries per batch. */
export const BATCH = 1024

/**
 * What an entry is, as a batch carries it, the stat cache stores it (statcache.ts) and the scanner
 * merges it. `Absent`: nothing the index holds is on disk at that key (a stored path the walk did not
 * find; a socket, FIFO or device, which the walk skips).
 */
export const Kind = { Absent: -1, File: 0, Dir: 1, Symlink: 2 } as const
export type Kind = (typeof Kind)[keyof typeof Kind]

/** Numbers per entry in a batch's `nums` (`WalkMessage`): kind, size, mtimeMs, ctimeMs, ino. */
export const NUMS_PER_ENTRY = 5

/**
 * A walker thread, started before its part is known (thread start overlaps reading the stat cache);
 * its part comes as the first message (`WalkPartConfig`).
 */
export interface WalkerData {
  root: string
  index: number
  parts: number
  /**
   * Where this walk's stat cache goes: thread 0 writes `file` (magic and its entries), thread i > 0
   * writes its entries to `file.<i>`; thread 0 then appends those and writes the footer, tagged with
   * the scan id the scanner puts in the control block.
   */
  write?: string
  /**
   * Int32 control block shared by all the threads: [0, parts) batches posted and not consumed per
   * thread; [parts, 2 parts) per thread, 1 when its part of the cache file is complete, 2 when it failed;
   * [2 parts] the scan id to tag the cache with (0: not known yet).
   */
  ctl: SharedArrayBuffer
  /** Float64 per thread: entries written, files, dirs, bytes (read by thread 0 for the footer). */
  stats: SharedArrayBuffer
  maxBatches: number
  batch: number
  /**
   * What the thread shares with the main thread and, running from its source text, cannot import:
   * `Kind`, `NUMS_PER_ENTRY`, `REPLAY`, statcache.ts `STAT_CACHE_LAYOUT`.
   */
  kind: typeof Kind
  numsPerEntry: number
  replay: typeof REPLAY
  layout: StatCacheLayout
}

/**
 * One walker thread's part of the walk. The tree is split over `parts` threads by key (keys.ts: key
 * order is the depth-first walk order): a thread walks the keys in [lo, hi), undefined meaning from
 * the root (included) and to the end. Each part is a contiguous run of the stat cache. `skip`: this
 * thread has no part (the cache could not be split); it only writes an empty part file.
 */
export interface WalkPartConfig {
  lo?: string
  hi?: string
  /** The stat cache (statcache.ts) in shared memory, and this part's run of entries in it [start, end). */
  compare?: { sab: SharedArrayBuffer; start: number; end: number }
  skip?: boolean
  /**
   * Nothing to compare regular files with (a first scan): they are sent as listed (kind 0; size,
   * times and inode NaN) without an lstat, and whoever hashes them stats the open file. No stat cache
   * is written by such a walk.
   */
  listed?: boolean
}

/**
 * A batch: `keys` is the batch's path keys (see keys.ts) joined by `/` (a byte no key holds: names
 * cannot, and keys separate names with `\x00`); `nums[5i..5i+4]` (`NUMS_PER_ENTRY`) are kind (`Kind`),
 * size, mtimeMs, ctimeMs, ino of the i-th key. One string clones far cheaper than a thousand.
 */
export type WalkMessage =
  | { type: 'batch'; keys: string; nums: Float64Array }
  | { type: 'error'; path: string; code: string; message: string }
  /**
   * The thread's part equals its run of the stat cache entry for entry; nothing was sent. The thread
   * then waits: `'replay'` from the scanner makes it send the part as batches after all.
   */
  | { type: 'identical'; counts: WalkCounts }
  /** No more batches from this thread. */
  | { type: 'done' }
  /** Thread 0, after `done`: whether the stat cache of this walk is complete in `write`. */
  | { type: 'cache'; written: boolean }

/** The scanner's word to a thread that reported `identical`. */
export const REPLAY = 'replay'

/** Totals of a walk: regular files and symlinks, directories (the root included), bytes of files. */
export interface WalkCounts {
  files: number
  dirs: number
  bytes: number
}
