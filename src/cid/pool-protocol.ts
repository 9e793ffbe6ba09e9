/** Messages between HashPool and its workers. */

export type WorkerRequest =
  | {
      t: 'files'
      id: number
      paths: string[]
      /** Reply BIG instead of hashing a file larger than this (0: hash everything). */
      splitAbove: number
      /** Stop after this many bytes and reply DEFERRED for the rest (keeps workers balanced). */
      maxBytes: number
    }
  | { t: 'range'; id: number; path: string; first: number; count: number; last: boolean }

export const OK = 0
export const FAILED = 1
/** Too big for one worker: the main thread splits it into ranges. */
export const BIG = 2
/** Not attempted: the batch had hashed enough bytes. */
export const DEFERRED = 3

/** Every file CID here is CIDv1 + sha2-256: 36 bytes. */
export const CID_BYTES = 36

export interface WorkerError {
  index: number
  code: string
  message: string
}

export type WorkerReply =
  | {
      t: 'files'
      id: number
      /** Per file: OK, FAILED, BIG or DEFERRED. */
      status: Uint8Array
      /** CID bytes, CID_BYTES per file (zeros unless OK). */
      cids: Uint8Array
      /** size, tsize per file (size also for BIG). */
      sizes: Float64Array
      errors: WorkerError[]
    }
  | {
      t: 'range'
      id: number
      digests: Uint8Array
      bytes: number
      /** For the last range: the file ended right after it. */
      eofAfter: boolean
      error?: WorkerError
    }
