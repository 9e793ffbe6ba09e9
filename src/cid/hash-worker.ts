/**
 * A HashPool worker: hashes whole files (in batches) and chunk ranges of big files, each through one
 * reusable 1 MiB buffer and `readSync`. The DAG builders (hash.ts and through it multiformats, dag-pb,
 * ipfs-unixfs) are loaded on the first file of more than one chunk: a pool that only meets one-chunk
 * files and ranges never pays for them.
 */
import { createHash } from 'node:crypto'
import { closeSync, constants, fstatSync, openSync, readSync } from 'node:fs'
import { createRequire } from 'node:module'
import { parentPort } from 'node:worker_threads'
import { toBase32 } from './base32.ts'
import { chunkBuffer, hashRangeSync, readFull, sha256Into } from './chunks.ts'
import {
  BIG,
  CID_BYTES,
  CID_TEXT,
  DEFERRED,
  FAILED,
  NOT_FILE,
  OK,
  type WorkerError,
  type WorkerReply,
  type WorkerRequest,
} from './pool-protocol.ts'
import { CHUNK_SIZE, RAW_CODEC, SHA2_256 } from './profile.ts'

/** CIDv1, raw, sha2-256, 32-byte digest: the prefix of a one-chunk file's CID. */
const RAW_PREFIX = [1, RAW_CODEC, SHA2_256, 32]
const NO_TEXT = ' '.repeat(CID_TEXT)
/**
 * For a path listed as a regular file and not stat'ed: no following a symlink put there since, and no
 * waiting on a FIFO.
 */
const LISTED_FLAGS = constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK

type HashLib = typeof import('./hash.ts')
let hashLib: HashLib | undefined
/** Loaded synchronously (`require` of an ES module without top-level await), in the middle of a batch. */
function lib(): HashLib {
  hashLib ??= createRequire(import.meta.url)(
    import.meta.url.endsWith('.ts') ? './hash.ts' : './hash.js',
  ) as HashLib
  return hashLib
}

const buf = chunkBuffer()
const probe = Buffer.allocUnsafeSlow(1)

function failure(index: number, err: unknown): WorkerError {
  // Our errors wrap the fs error: send its errno code, the main thread rebuilds the class.
  const e = err as NodeJS.ErrnoException & { cause?: NodeJS.ErrnoException }
  return {
    index,
    code: e?.cause?.code ?? e?.code ?? 'EUNKNOWN',
    message: e?.cause?.message ?? e?.message ?? String(err),
  }
}

function hashFiles(req: Extract<WorkerRequest, { t: 'files' }>): WorkerReply {
  const paths = req.paths.split('\x00')
  const n = paths.length
  const status = new Uint8Array(n)
  // A Buffer of its own (not pooled), so that it can be transferred; digests are written into it.
  const cids = Buffer.allocUnsafeSlow(n * CID_BYTES).fill(0)
  const sizes = new Float64Array(n * 2)
  const stats = new Float64Array(n * 3).fill(Number.NaN)
  const whole = Buffer.allocUnsafeSlow(n * 32).fill(0)
  const hasWhole = new Uint8Array(n)
  const text: string[] = []
  const errors: WorkerError[] = []
  let bytes = 0
  for (let i = 0; i < n; i++) {
    if (bytes >= req.maxBytes) {
      status.fill(DEFERRED, i)
      for (let j = i; j < n; j++) text.push(NO_TEXT)
      break
    }
    let fd = -1
    try {
      let expected = req.sizes[i]!
      const listed = expected < 0
      if (listed) {
        // Listed, not stat'ed: the stat of what is opened is the record's (one path lookup, not two).
        try {
          fd = openSync(paths[i]!, LISTED_FLAGS)
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code !== 'ELOOP') throw err
        }
        const st = fd < 0 ? undefined : fstatSync(fd)
        if (!st?.isFile()) {
          status[i] = NOT_FILE
          text.push(NO_TEXT)
          continue
        }
        expected = st.size
        stats[3 * i] = st.mtimeMs
        stats[3 * i + 1] = st.ctimeMs
        stats[3 * i + 2] = st.ino
      } else fd = openSync(paths[i]!, 'r')
      // A file that fits in one chunk needs one read when its size is known: a first read of exactly
      // that size (short of a chunk) is the whole file. Otherwise read on to the end.
      let first = readSync(fd, buf, 0, CHUNK_SIZE, 0)
      if (first !== expected && first > 0 && first < CHUNK_SIZE)
        first += readFull(fd, buf.subarray(first), first)
      const digest = req.digest[i] === 1
      if (first === CHUNK_SIZE && req.splitAbove > 0 && !digest) {
        const size = listed ? expected : fstatSync(fd).size
        if (size > req.splitAbove) {
          status[i] = BIG
          sizes[2 * i] = size
          text.push(NO_TEXT)
          continue
        }
      }
      const o = i * CID_BYTES
      let size: number
      let tsize: number
      if (first < CHUNK_SIZE && first > 0) {
        // One raw leaf: its CID is the prefix and the digest.
        cids.set(RAW_PREFIX, o)
        sha256Into(buf.subarray(0, first), cids, o + 4)
        size = first
        tsize = first
      } else {
        const h = digest ? createHash('sha256') : undefined
        const r = lib().hashOpenFileSync(fd, buf, first, h)
        // One chunk exactly (or none) is a raw leaf: its CID is its digest already.
        if (h && r.size > CHUNK_SIZE) {
          whole.set(h.digest(), i * 32)
          hasWhole[i] = 1
        }
        const cid = r.cid.bytes
        if (cid.length !== CID_BYTES) throw new Error(`unexpected CID length ${cid.length}`)
        cids.set(cid, o)
        size = r.size
        tsize = r.tsize
      }
      sizes[2 * i] = size
      sizes[2 * i + 1] = tsize
      text.push(toBase32(cids, o, o + CID_BYTES))
      bytes += size
      status[i] = OK
    } catch (err) {
      status[i] = FAILED
      errors.push(failure(i, err))
      text.push(NO_TEXT)
    } finally {
      if (fd >= 0) closeSync(fd)
    }
  }
  return { t: 'files', id: req.id, status, cids, text: text.join(''), sizes, stats, whole, hasWhole, errors }
}

function hashRange(req: Extract<WorkerRequest, { t: 'range' }>): WorkerReply {
  const digests = Buffer.allocUnsafeSlow(req.count * 32)
  let fd = -1
  try {
    fd = openSync(req.path, 'r')
    const bytes = hashRangeSync(fd, buf, req.first, req.count, digests)
    // The last range also checks that the file ends where it should.
    const eofAfter = req.last ? readFull(fd, probe, (req.first + req.count) * CHUNK_SIZE) === 0 : false
    return { t: 'range', id: req.id, digests, bytes, eofAfter }
  } catch (err) {
    return { t: 'range', id: req.id, digests, bytes: 0, eofAfter: false, error: failure(0, err) }
  } finally {
    if (fd >= 0) closeSync(fd)
  }
}

parentPort!.on('message', (req: WorkerRequest) => {
  if (req.t === 'files') {
    const reply = hashFiles(req)
    if (reply.t === 'files')
      parentPort!.postMessage(reply, [
        reply.cids.buffer as ArrayBuffer,
        reply.sizes.buffer as ArrayBuffer,
        reply.stats.buffer as ArrayBuffer,
        reply.whole.buffer as ArrayBuffer,
      ])
  } else {
    const reply = hashRange(req)
    if (reply.t === 'range') parentPort!.postMessage(reply, [reply.digests.buffer as ArrayBuffer])
  }
})
