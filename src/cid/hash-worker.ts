/**
 * A HashPool worker: hashes whole files (in batches) and chunk ranges of big files, each through one
 * reusable 1 MiB buffer and `readSync`.
 */
import { closeSync } from 'node:fs'
import { parentPort } from 'node:worker_threads'
import { hashFileSync, hashRangeSync, openForRead, readFull } from './hash.ts'
import { CHUNK_SIZE } from './profile.ts'
import type { WorkerReply, WorkerRequest, WorkerResult } from './pool-protocol.ts'

const buf = Buffer.allocUnsafeSlow(CHUNK_SIZE)
const probe = Buffer.allocUnsafeSlow(1)

function failure(err: unknown): WorkerResult {
  // Our errors wrap the fs error: send its errno code, the main thread rebuilds the class.
  const e = err as NodeJS.ErrnoException & { cause?: NodeJS.ErrnoException }
  const code = e?.cause?.code ?? e?.code ?? 'EUNKNOWN'
  return { ok: false, code, message: e?.cause?.message ?? e?.message ?? String(err), name: e?.name ?? 'Error' }
}

function handle(req: WorkerRequest): WorkerReply {
  if (req.t === 'files') {
    const cids: Uint8Array[] = []
    const sizes = new Float64Array(req.paths.length * 2)
    const errors: (WorkerResult | null)[] = []
    let anyError = false
    for (let i = 0; i < req.paths.length; i++) {
      try {
        const r = hashFileSync(req.paths[i]!, buf)
        cids.push(r.cid.bytes)
        sizes[2 * i] = r.size
        sizes[2 * i + 1] = r.tsize
        errors.push(null)
      } catch (err) {
        cids.push(new Uint8Array(0))
        errors.push(failure(err))
        anyError = true
      }
    }
    return { t: 'files', id: req.id, cids, sizes, errors: anyError ? errors : undefined }
  }
  const digests = new Uint8Array(req.count * 32)
  let fd: number
  try {
    fd = openForRead(req.path)
  } catch (err) {
    return { t: 'range', id: req.id, digests, bytes: 0, eofAfter: false, error: failure(err) }
  }
  try {
    const bytes = hashRangeSync(fd, buf, req.first, req.count, digests)
    // The last range also checks that the file ends where it should.
    const eofAfter = req.last ? readFull(fd, probe, (req.first + req.count) * CHUNK_SIZE) === 0 : false
    return { t: 'range', id: req.id, digests, bytes, eofAfter }
  } catch (err) {
    return { t: 'range', id: req.id, digests, bytes: 0, eofAfter: false, error: failure(err) }
  } finally {
    closeSync(fd)
  }
}

parentPort!.on('message', (req: WorkerRequest) => {
  const reply = handle(req)
  if (reply.t === 'range') parentPort!.postMessage(reply, [reply.digests.buffer as ArrayBuffer])
  else parentPort!.postMessage(reply)
})
