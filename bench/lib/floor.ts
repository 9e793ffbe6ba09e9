/**
 * The floor of a cold index on this machine: every regular file under a directory opened, fstat'ed,
 * read whole and SHA-256'd in 1 MiB pieces (into a page-aligned buffer, as the hash workers do), on
 * one thread per core, and nothing else (no CID layout, no directory node). No indexer that reads what it hashes can beat it here, so it shows how much of
 * the gap to a goal is the machine's and how much is ours.
 *
 *   node bench/lib/floor.ts DIR            prints the seconds it took (listing included)
 *   node bench/lib/floor.ts DIR --index    also writes what the index must hold for each file (its
 *                                          path record and its CID's reverse entry) into a fresh
 *                                          LevelDB through the scanner's own writer
 *
 * With `--index`, the CID of a file is its first chunk's raw-leaf CID (the right length, not the right
 * value for a file of more than one chunk): the figure is about the cost of the writes, not CIDs.
 */
import { hash } from 'node:crypto'
import { closeSync, fstatSync, mkdtempSync, openSync, readdirSync, readSync, rmSync } from 'node:fs'
import { availableParallelism, tmpdir } from 'node:os'
import { join, relative } from 'node:path'
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads'
import { toBase32 } from '../../src/cid/base32.ts'
import { chunkBuffer } from '../../src/cid/chunks.ts'
import { CID_BYTES, CID_TEXT } from '../../src/cid/pool-protocol.ts'
import { RAW_CODEC, SHA2_256 } from '../../src/cid/profile.ts'
import { openDatabase } from '../../src/db.ts'
import { keyOf } from '../../src/index/keys.ts'
import { encodeRecord } from '../../src/index/records.ts'
import { cidKey, MirrorStore } from '../../src/index/store.ts'

interface Job {
  files: string
  next: SharedArrayBuffer
  index: boolean
}

/** Per file of a batch (with `--index`): its number in the list, CID, size, mtimeMs, ctimeMs, ino. */
interface Done {
  at: Float64Array
  cids: string
}

const BATCH = 256
/** CIDv1, raw, sha2-256, 32-byte digest: the prefix of a one-chunk file's CID. */
const RAW_PREFIX = [1, RAW_CODEC, SHA2_256, 32]

function list(dir: string, out: string[]): void {
  for (const d of readdirSync(dir, { withFileTypes: true })) {
    const path = `${dir}/${d.name}`
    if (d.isDirectory()) list(path, out)
    else if (d.isFile()) out.push(path)
  }
}

function work(job: Job): void {
  const files = job.files.split('\x00')
  const next = new Int32Array(job.next)
  // Page-aligned, as the hash workers' (a malloc'd buffer makes each read's copy several times slower).
  const buf = chunkBuffer()
  const cid = Buffer.alloc(CID_BYTES)
  cid.set(RAW_PREFIX)
  let at = new Float64Array(BATCH * 5)
  let cids = ''
  let n = 0
  const send = (): void => {
    parentPort!.postMessage({ at: at.subarray(0, n * 5), cids } satisfies Done, [at.buffer])
    at = new Float64Array(BATCH * 5)
    cids = ''
    n = 0
  }
  for (;;) {
    const i = Atomics.add(next, 0, 1)
    if (i >= files.length) break
    const fd = openSync(files[i]!, 'r')
    try {
      const st = fstatSync(fd)
      let pos = 0
      for (;;) {
        const got = readSync(fd, buf, 0, buf.length, pos)
        if (got === 0) break
        const digest = hash('sha256', buf.subarray(0, got), 'binary')
        if (pos === 0 && job.index) cid.write(digest, 4, 32, 'latin1')
        pos += got
        if (got < buf.length) break
      }
      if (job.index) {
        at.set([i, st.size, st.mtimeMs, st.ctimeMs, st.ino], n * 5)
        cids += toBase32(cid)
        if (++n === BATCH) send()
      }
    } finally {
      closeSync(fd)
    }
  }
  if (n > 0) send()
}

if (isMainThread) {
  const root = process.argv[2]!
  const withIndex = process.argv.includes('--index')
  const dbDir = withIndex ? mkdtempSync(join(tmpdir(), 'cidmirror-floor-db-')) : undefined
  const start = process.hrtime.bigint()
  const store = dbDir ? new MirrorStore(await openDatabase(dbDir), 'floor') : undefined
  await store?.ready()
  const out = store?.rawWriter()
  const files: string[] = []
  list(root, files)
  // Files are taken one at a time from a shared counter: the threads stay busy to the end.
  const job: Job = { files: files.join('\x00'), next: new SharedArrayBuffer(4), index: withIndex }
  const now = Date.now()
  let sending: Promise<void> | undefined
  const onDone = (d: Done): void => {
    if (!store || !out) return
    for (let j = 0; j < d.at.length / 5; j++) {
      const o = j * 5
      const rel = relative(root, files[d.at[o]!]!)
      const cid = d.cids.slice(j * CID_TEXT, (j + 1) * CID_TEXT)
      const size = d.at[o + 1]!
      const rec = encodeRecord({
        kind: 'file',
        cid,
        tsize: size,
        size,
        mtimeMs: d.at[o + 2]!,
        ctimeMs: d.at[o + 3]!,
        ino: d.at[o + 4]!,
        firstSeen: now,
        lastSynced: now,
        state: 'present',
        scan: 1,
      })
      out.put(store.pPrefix + keyOf(rel), rec)
      out.put(store.cPrefix + cidKey(cid, rel), '1')
    }
    // One batch in flight while the next fills, as the scanner does.
    if (out.length >= 4096 && !sending)
      sending = out.send().finally(() => {
        sending = undefined
      })
  }
  await Promise.all(
    Array.from(
      { length: availableParallelism() },
      () =>
        new Promise<void>((resolve, reject) => {
          const w = new Worker(new URL(import.meta.url), { workerData: job })
          w.on('message', onDone)
          w.once('exit', () => resolve())
          w.once('error', reject)
        }),
    ),
  )
  await sending
  await out?.flush()
  await store?.db.close()
  console.log((Number(process.hrtime.bigint() - start) / 1e9).toFixed(3))
  if (dbDir) rmSync(dbDir, { recursive: true, force: true })
  process.exit(0)
} else {
  work(workerData as Job)
}
