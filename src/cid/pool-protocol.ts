/** Messages between HashPool and its workers. */

export type WorkerRequest =
  | { t: 'files'; id: number; paths: string[] }
  | { t: 'range'; id: number; path: string; first: number; count: number; last: boolean }

export type WorkerResult = { ok: false; code: string; message: string; name: string }

export type WorkerReply =
  | {
      t: 'files'
      id: number
      /** CID bytes per file (empty on error). */
      cids: Uint8Array[]
      /** size, tsize per file. */
      sizes: Float64Array
      errors?: (WorkerResult | null)[] | undefined
    }
  | {
      t: 'range'
      id: number
      digests: Uint8Array
      bytes: number
      /** For the last range: the file ended right after it. */
      eofAfter: boolean
      error?: WorkerResult
    }
