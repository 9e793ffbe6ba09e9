/**
 * The block map: where each block of a mirror's DAG can be read without a second copy of the data
 * (DESIGN: "a block map in the index"). The embedded IPFS node, the gateway's trustless responses and
 * the Filecoin packer read any block of the mirror through it.
 *
 *   index/leaves/<cid> -> [mirror, path key, offset, length, file cid]   a raw leaf of a multi-chunk file
 *   index/nodes/<cid>  -> base64 of the block                            a dag-pb node: a file's inner
 *                                                                       nodes, a symlink, a directory
 *                                                                       or one of its HAMT shards
 *
 * A one-chunk file needs no entry: its raw CID is the file, found through the path-by-CID index.
 * Leaves and nodes are written after a scan commits (`mapBlocks`); an entry is a hint, so every read
 * hashes what it read against the CID and refuses bytes that do not match (a file changed since).
 */
import { closeSync, openSync, readlinkSync } from 'node:fs'
import { join } from 'node:path'
import {
  type CID,
  type DirEntryLike,
  directoryNode,
  fileBlocks,
  fromBase32,
  profile,
  readFull,
  sha256,
  symlinkNode,
  toBase32,
} from '../cid/index.ts'
import { type Database, type Room, readRange } from '../db.ts'
import { isAncestor, keyOf, pathOf, SEP } from './keys.ts'
import type { StoredRecord } from './records.ts'
import { indexLevel, MirrorStore, mirrorsLevel } from './store.ts'

type LeafEntry = [mirror: string, key: string, offset: number, length: number, fileCid: string]

function leavesLevel(db: Database) {
  return (indexLevel(db) as unknown as Database).sublevel<string, LeafEntry>('leaves', {
    valueEncoding: 'json',
  })
}

function nodesLevel(db: Database) {
  return (indexLevel(db) as unknown as Database).sublevel<string, string>('nodes', { valueEncoding: 'json' })
}

/** index/mapped/<mirror> -> the last scan whose records (and every earlier scan's) are mapped. */
function mappedLevel(db: Database) {
  return (indexLevel(db) as unknown as Database).sublevel<string, number>('mapped', { valueEncoding: 'json' })
}

/**
 * The first scan whose records the block map of `mirror` may lack: pass it as `since` to map only what
 * is new (0 when nothing was mapped, or only by calls that skipped earlier scans).
 */
export async function blockMapSince(db: Database, mirror: string): Promise<number> {
  const at = await mappedLevel(db).get(mirror)
  return at === undefined ? 0 : at + 1
}

export interface MapProgress {
  records: number
  filesMapped: number
  bytesRead: number
}

export interface MapSummary extends MapProgress {
  nodes: number
  leaves: number
  /** Files whose bytes no longer give the recorded CID (changed since the scan): left for the next scan. */
  stale: string[]
}

interface Frame {
  key: string
  rec: StoredRecord
  entries: DirEntryLike[]
}

const RAW_CODE = 0x55

/**
 * Brings the block map of `mirror` up to date with its committed index: every record written by scan
 * `since` or later (every record when `since` is 0) has its blocks mapped. Multi-chunk files are read
 * once; directories are rebuilt from their children's records (evicted ones included, so the tree is
 * the upstream tree) and must give the recorded CID.
 */
export async function mapBlocks(
  db: Database,
  mirror: string,
  root: string,
  opts: {
    since?: number
    onProgress?: (p: MapProgress) => void
    signal?: AbortSignal
    /** Receives each directory, shard and symlink node built (the local IPFS node takes them). */
    onNode?: (cid: CID, bytes: Uint8Array) => void
  } = {},
): Promise<MapSummary> {
  const since = opts.since ?? 0
  const store = new MirrorStore(db, mirror)
  await store.ready()
  // Read before the walk: a scan committing meanwhile is left for the next call to mark.
  const last = await store.lastScan()
  const leaves = leavesLevel(db)
  const nodes = nodesLevel(db)
  const out: MapSummary = {
    records: 0,
    filesMapped: 0,
    bytesRead: 0,
    nodes: 0,
    leaves: 0,
    stale: [],
  }
  let batch = db.batch()
  let pending = 0
  const flush = async (): Promise<void> => {
    if (pending === 0) return
    const b = batch
    batch = db.batch()
    pending = 0
    await b.write()
  }
  const putNode = (cid: CID, bytes: Uint8Array): void => {
    if (cid.code === RAW_CODE) return
    opts.onNode?.(cid, bytes)
    batch.put(toBase32(cid.bytes), Buffer.from(bytes).toString('base64'), { sublevel: nodes })
    pending++
    out.nodes++
  }

  const stack: Frame[] = []
  const close = (f: Frame): void => {
    if (f.rec.scan < since) return
    if (directoryNode(f.entries, putNode).cid.toString() !== f.rec.cid) out.stale.push(pathOf(f.key) || '.')
  }

  const it = store.readPaths()
  try {
    for (;;) {
      opts.signal?.throwIfAborted()
      const entries = await it.nextv(1000)
      if (entries.length === 0) break
      for (const [key, rec] of entries) {
        if (!store.isCommitted(rec) || rec.state === 'deleted') continue
        out.records++
        while (stack.length > 0 && !isAncestor(stack[stack.length - 1]!.key, key)) close(stack.pop()!)
        const parent = stack[stack.length - 1]
        if (parent) {
          const bytes = fromBase32(rec.cid)
          parent.entries.push({
            name: key.slice(key.lastIndexOf(SEP) + 1),
            cid: { bytes, byteLength: bytes.length },
            tsize: rec.tsize,
          })
        }
        if (rec.kind === 'dir') {
          stack.push({ key, rec, entries: [] })
          continue
        }
        if (rec.scan < since || rec.state !== 'present') continue
        const abs = join(root, pathOf(key))
        if (rec.kind === 'symlink') {
          let target: string
          try {
            target = readlinkSync(abs)
          } catch {
            target = rec.target ?? ''
          }
          const n = symlinkNode(target, putNode)
          if (n.cid.toString() !== rec.cid) out.stale.push(pathOf(key))
        } else if (rec.size > profile.CHUNK_SIZE) {
          const gen = fileBlocks(abs)
          let offset = 0
          let r: IteratorResult<{ cid: CID; bytes: Uint8Array }, { cid: CID }>
          const mapped: [string, LeafEntry][] = []
          try {
            for (;;) {
              r = await gen.next()
              if (r.done) break
              const { cid, bytes } = r.value
              if (cid.code === RAW_CODE) {
                mapped.push([toBase32(cid.bytes), [mirror, key, offset, bytes.length, rec.cid]])
                offset += bytes.length
                out.bytesRead += bytes.length
              } else putNode(cid, bytes)
            }
          } catch {
            out.stale.push(pathOf(key))
            continue
          }
          if (r.value.cid.toString() !== rec.cid) {
            out.stale.push(pathOf(key))
            continue
          }
          for (const [cid, loc] of mapped) batch.put(cid, loc, { sublevel: leaves })
          pending += mapped.length
          out.leaves += mapped.length
          out.filesMapped++
        }
        if (pending >= 2000) await flush()
      }
      opts.onProgress?.({ records: out.records, filesMapped: out.filesMapped, bytesRead: out.bytesRead })
      if (pending >= 2000) await flush()
    }
    while (stack.length > 0) close(stack.pop()!)
    await flush()
  } finally {
    await it.close()
  }
  // Marked only when this call left no scan out before `since`.
  if (last && since <= (await blockMapSince(db, mirror))) await mappedLevel(db).put(mirror, last.id)
  return out
}

/** Reads any block of the indexed mirrors from the mirror trees, verified against its CID. */
export class BlockReader {
  readonly #db: Database
  readonly #leaves
  readonly #nodes
  #roots: Map<string, string> | undefined

  constructor(db: Database) {
    this.#db = db
    this.#leaves = leavesLevel(db)
    this.#nodes = nodesLevel(db)
  }

  #mirrors() {
    return readRange(mirrorsLevel(this.#db) as unknown as Room<{ root: string }>)
  }

  async #rootOf(mirror: string): Promise<string | undefined> {
    if (!this.#roots?.has(mirror)) {
      const m = new Map<string, string>()
      for (const [name, info] of await this.#mirrors()) m.set(name, info.root)
      this.#roots = m
    }
    return this.#roots.get(mirror)
  }

  /** The block's bytes, or undefined when no mirror file holds it as recorded. */
  async get(cid: CID): Promise<Uint8Array | undefined> {
    const key = toBase32(cid.bytes)
    if (cid.code !== RAW_CODE) {
      const b64 = await this.#nodes.get(key)
      if (b64 === undefined) return undefined
      const bytes = Buffer.from(b64, 'base64')
      return verified(cid, bytes)
    }
    const leaf = await this.#leaves.get(key)
    if (leaf) {
      const [mirror, pathKey, offset, length] = leaf
      const root = await this.#rootOf(mirror)
      if (root !== undefined) {
        const bytes = readFileRange(join(root, pathOf(pathKey)), offset, length)
        const ok = bytes && verified(cid, bytes)
        if (ok) return ok
      }
    }
    // A one-chunk file: its raw CID is the whole file.
    for (const [mirror, info] of await this.#mirrors()) {
      const store = new MirrorStore(this.#db, mirror)
      for (const path of await store.pathsOf(key)) {
        const rec = await store.getRecord(keyOf(path))
        if (rec?.state !== 'present' || rec.size > profile.CHUNK_SIZE) continue
        const bytes = readFileRange(join(info.root, path), 0, rec.size)
        const ok = bytes && verified(cid, bytes)
        if (ok) return ok
      }
    }
    return undefined
  }

  async has(cid: CID): Promise<boolean> {
    return (await this.get(cid)) !== undefined
  }
}

function readFileRange(path: string, offset: number, length: number): Uint8Array | undefined {
  let fd: number
  try {
    fd = openSync(path, 'r')
  } catch {
    return undefined
  }
  try {
    const buf = Buffer.allocUnsafe(length)
    const n = readFull(fd, buf, offset)
    return n === length ? buf : undefined
  } catch {
    return undefined
  } finally {
    closeSync(fd)
  }
}

function verified(cid: CID, bytes: Uint8Array): Uint8Array | undefined {
  const digest = cid.multihash.digest
  const got = sha256(bytes)
  return Buffer.compare(got, digest) === 0 ? bytes : undefined
}
