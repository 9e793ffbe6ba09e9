/** Messages between the walker thread and the scanner. */

/** Entries per batch. */
export const BATCH = 1024

export interface WalkerData {
  root: string
  /** SharedArrayBuffer of one Int32: batches posted and not yet consumed. */
  credits: SharedArrayBuffer
  maxBatches: number
}

/**
 * A batch: `keys[i]` is the path key (see keys.ts), `nums[5i..5i+4]` are kind (0 file, 1 dir,
 * 2 symlink), size, mtimeMs, ctimeMs, ino.
 */
export type WalkMessage =
  | { type: 'batch'; keys: string[]; nums: Float64Array }
  | { type: 'error'; path: string; code: string; message: string }
  | { type: 'done' }
