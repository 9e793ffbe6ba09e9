/**
 * A worker thread that hashes blocks for the fetch-back's walk (sha256-pool.ts): each message is a
 * block's bytes (transferred), the answer its SHA-256 and the bytes transferred back, so the main
 * thread parses the next blocks while this one hashes.
 */
import { createHash } from 'node:crypto'
import { parentPort } from 'node:worker_threads'

parentPort!.on('message', (m: { id: number; bytes: Uint8Array }) => {
  const digest = createHash('sha256').update(m.bytes).digest()
  parentPort!.postMessage({ id: m.id, bytes: m.bytes, digest }, [m.bytes.buffer as ArrayBuffer])
})
