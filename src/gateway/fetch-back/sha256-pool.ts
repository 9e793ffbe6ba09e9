/**
 * SHA-256 of fetched blocks off the main thread: one worker (sha256-worker.ts), created on first use
 * and unref'd while idle, so the walk's hashing overlaps the network reads and CAR parsing of the
 * next blocks instead of adding to the main thread's time.
 */
import { Worker } from 'node:worker_threads'

const WORKER_URL = new URL(
  import.meta.url.endsWith('.ts') ? './sha256-worker.ts' : './sha256-worker.js',
  import.meta.url,
)

interface Pending {
  resolve: (r: { bytes: Uint8Array; digest: Uint8Array }) => void
  reject: (err: Error) => void
}

let worker: Worker | undefined
const pending = new Map<number, Pending>()
let nextId = 0

function theWorker(): Worker {
  if (worker) return worker
  const w = new Worker(WORKER_URL)
  w.on('message', (m: { id: number; bytes: Uint8Array; digest: Uint8Array }) => {
    const p = pending.get(m.id)
    pending.delete(m.id)
    if (pending.size === 0) w.unref()
    p?.resolve({
      bytes: new Uint8Array(m.bytes.buffer, m.bytes.byteOffset, m.bytes.byteLength),
      digest: m.digest,
    })
  })
  const fail = (err: Error) => {
    worker = undefined
    for (const p of pending.values()) p.reject(err)
    pending.clear()
  }
  w.on('error', fail)
  w.on('exit', (code) => fail(new Error(`the SHA-256 worker exited with ${code}`)))
  w.unref()
  worker = w
  return w
}

/**
 * The SHA-256 of `bytes`, computed in the worker. `bytes` must own its whole ArrayBuffer (it is
 * transferred, and comes back in the result); the caller uses the returned bytes from then on.
 */
export function sha256Off(bytes: Uint8Array): Promise<{ bytes: Uint8Array; digest: Uint8Array }> {
  const w = theWorker()
  const id = nextId++
  return new Promise((resolve, reject) => {
    pending.set(id, { resolve, reject })
    if (pending.size === 1) w.ref()
    w.postMessage({ id, bytes }, [bytes.buffer as ArrayBuffer])
  })
}
