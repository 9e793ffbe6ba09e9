/**
 * A HashPool worker: hashes whole files (in batches) and chunk ranges of big files, each through one
 * reusable 1 MiB buffer and `readSync`.
 */
import { closeSync, fstatSync, openSync } from 'node:fs'
import { parentPort } from 'node:worker_threads'
import { hashOpenFileSync, hashRangeSync, readFull } from './hash.ts'
import {
  BIG,
  CID_BYTES,
  DEFERRED,
  FAILED,
  OK,
  type WorkerError,
  type WorkerReply,
  type WorkerRequest,
} from './pool-protocol.ts'
import { CHUNK_SIZE } from './profile.ts'

const buf = Buffer.allocUnsafeSlow(CHUNK_SIZE)
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
  const n = req.paths.length
  const status = new Uint8Array(n)
  const cids = new Uint8Array(n * CID_BYTES)
  const sizes = new Float64Array(n * 2)
  const errors: WorkerError[] = []
  let bytes = 0
  for (let i = 0; i < n; i++) {
    if (bytes >= req.maxBytes) {
      status.fill(DEFERRED, i)
      break
    }
    let fd = -1
    try {
      fd = openSync(req.paths[i]!, 'r')
      // A file that fits in one chunk needs no stat: one read says it all (EISDIR for a directory).
      const first = readFull(fd, buf, 0)
      if (first === CHUNK_SIZE && req.splitAbove > 0) {
        const size = fstatSync(fd).size
        if (size > req.splitAbove) {
          status[i] = BIG
          sizes[2 * i] = size
          continue
        }
      }
      const r = hashOpenFileSync(fd, buf, first)
      const cid = r.cid.bytes
      if (cid.length !== CID_BYTES) throw new Error(`unexpected CID length ${cid.length}`)
      cids.set(cid, i * CID_BYTES)
      sizes[2 * i] = r.size
      sizes[2 * i + 1] = r.tsize
      bytes += r.size
      status[i] = OK
    } catch (err) {
      status[i] = FAILED
      errors.push(failure(i, err))
    } finally {
      if (fd >= 0) closeSync(fd)
    }
  }
  return { t: 'files', id: req.id, status, cids, sizes, errors }
}

function hashRange(req: Extract<WorkerRequest, { t: 'range' }>): WorkerReply {
  const digests = new Uint8Array(req.count * 32)
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
      parentPort!.postMessage(reply, [reply.cids.buffer as ArrayBuffer, reply.sizes.buffer as ArrayBuffer])
  } else {
    const reply = hashRange(req)
    if (reply.t === 'range') parentPort!.postMessage(reply, [reply.digests.buffer as ArrayBuffer])
  }
})
