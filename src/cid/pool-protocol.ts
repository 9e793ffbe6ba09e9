/** Messages between HashPool and its workers. */

export type WorkerRequest =
  | {
      t: 'files'
      id: number
      /** The files' paths joined by NUL (one string clones far cheaper than an array of them). */
      paths: string
      /**
       * Per file its size from a stat: a first read of exactly that many bytes ends the file. Or -1: the
       * path was listed as a regular file and not stat'ed; the worker opens it without following a
       * symlink, stats what it opened and replies its stat (`stats`), or NOT_FILE.
       */
      sizes: Float64Array
      /** Reply BIG instead of hashing a file larger than this (0: hash everything). */
      splitAbove: number
      /** Stop after this many bytes and reply DEFERRED for the rest (keeps workers balanced). */
      maxBytes: number
      /**
       * Per file 1: also the whole file's SHA-256 (`whole`), updated chunk by chunk as they are read;
       * such a file is never replied BIG (a digest runs in order, a split file's ranges do not).
       */
      digest: Uint8Array
    }
  | { t: 'range'; id: number; path: string; first: number; count: number; last: boolean }

export const OK = 0
export const FAILED = 1
/** Too big for one worker: the main thread splits it into ranges. */
export const BIG = 2
/** Not attempted: the batch had hashed enough bytes. */
export const DEFERRED = 3
/** Listed as a regular file (size -1), but what was opened is not one now. */
export const NOT_FILE = 4

/** Every file CID here is CIDv1 + sha2-256: 36 bytes. */
export const CID_BYTES = 36
/** Length of such a CID in multibase base32 text: `b` + 58 characters. */
export const CID_TEXT = 59

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
      /** The same CIDs in base32 text, CID_TEXT characters per file (spaces unless OK). */
      text: string
      /** size, tsize per file (size also for BIG). */
      sizes: Float64Array
      /** mtimeMs, ctimeMs, ino per file whose size was -1 (OK or BIG); NaN for the others. */
      stats: Float64Array
      /** 32 bytes per file: the whole file's SHA-256 where `hasWhole` is 1 (a multi-chunk file asked for it). */
      whole: Uint8Array
      hasWhole: Uint8Array
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
