/**
 * The embedded node's store of blocks that are not the mirror's (what it fetched from peers, or was
 * given), with a cap: fetched blocks are a cache, the oldest evicted first once the cap is passed.
 * Blocks kept on purpose (those of a DAG the node pinned, those it was given) are not the cache's:
 * they are never evicted and not counted against the cap. The bytes live in a LevelDB of the node's
 * own (blockstore-level); which block came when, and its size, in a second small LevelDB beside it
 * (`index`, so the node's folder holds all of its state; range reads through src/db.ts):
 *
 *   q:<seq>  -> { cid, size }   cache blocks in the order they came (eviction order)
 *   c:<cid>  -> { q, size }     the same, by CID
 *   k:<cid>  -> { size }        kept blocks
 */
import type { LevelBlockstore } from 'blockstore-level'
import { Level } from 'level'
import type { CID } from 'multiformats/cid'
import pLimit from 'p-limit'
import { type Database, readRange, readValues, sublevelOf } from '../db.ts'
import { parseCid } from './verify-block.ts'

type Abort = { signal?: AbortSignal }

interface Queued {
  cid: string
  size: number
}
interface Cached {
  q: string
  size: number
}

const SEQ_WIDTH = 12

type Value = Queued | Cached | { size: number }
type BatchOp = { type: 'put'; key: string; value: Value } | { type: 'del'; key: string }

export class FetchedBlocks {
  readonly maxBytes: number
  readonly #store: LevelBlockstore
  readonly #room
  readonly #one = pLimit(1)
  #bytes = 0
  #kept = 0
  #seq = 0

  readonly #db: Database

  constructor(store: LevelBlockstore, indexDir: string, maxBytes: number) {
    this.#store = store
    this.#db = new Level<string, unknown>(indexDir, { valueEncoding: 'json' })
    this.#room = sublevelOf<Value>(this.#db, 'fetched')
    this.maxBytes = maxBytes
  }

  async close(): Promise<void> {
    await this.#db.close()
  }

  /** Reads what the store holds; a block in the store but in no record (a crash between) is dropped. */
  async open(): Promise<void> {
    await this.#db.open()
    for (const v of (await readValues(this.#room, { gte: 'c:', lt: 'c;' })) as Cached[]) this.#bytes += v.size
    for (const v of (await readValues(this.#room, { gte: 'k:', lt: 'k;' })) as { size: number }[])
      this.#kept += v.size
    const last = await readRange(this.#room, { gte: 'q:', lt: 'q;', reverse: true, limit: 1 })
    if (last[0]) this.#seq = Number.parseInt(last[0][0].slice(2), 36) + 1
    await this.#evict()
  }

  /** Bytes of cache blocks held (at most `maxBytes`), and of kept blocks. */
  get bytes(): { cache: number; kept: number } {
    return { cache: this.#bytes, kept: this.#kept }
  }

  has(cid: CID, opts: Abort = {}): Promise<boolean> {
    return this.#store.has(cid, opts)
  }

  get(cid: CID, opts: Abort = {}) {
    return this.#store.get(cid, opts)
  }

  getAll(opts: Abort = {}) {
    return this.#store.getAll(opts)
  }

  /** Stores a block: kept, or as cache (evicting the oldest past the cap; one above the cap is not cached). */
  put(cid: CID, bytes: Uint8Array, opts: Abort & { keep?: boolean } = {}): Promise<void> {
    return this.#one(async () => {
      const key = cid.toString()
      if (opts.keep) return this.#keep(cid, bytes.byteLength, bytes)
      if (await this.#room.get(`k:${key}`)) return
      if ((await this.#room.get(`c:${key}`)) !== undefined) return
      if (bytes.byteLength > this.maxBytes) return
      await this.#store.put(cid, bytes, opts)
      const q = `q:${(this.#seq++).toString(36).padStart(SEQ_WIDTH, '0')}`
      await this.#room.batch([
        { type: 'put', key: q, value: { cid: key, size: bytes.byteLength } },
        { type: 'put', key: `c:${key}`, value: { q, size: bytes.byteLength } },
      ])
      this.#bytes += bytes.byteLength
      await this.#evict()
    })
  }

  /** Makes a held cache block a kept one (a pin reached it). False when the store does not hold it. */
  keep(cid: CID): Promise<boolean> {
    return this.#one(async () => {
      const key = cid.toString()
      if (await this.#room.get(`k:${key}`)) return true
      const c = (await this.#room.get(`c:${key}`)) as Cached | undefined
      if (!c) return false
      await this.#keep(cid, c.size)
      return true
    })
  }

  async #keep(cid: CID, size: number, bytes?: Uint8Array): Promise<void> {
    const key = cid.toString()
    if (await this.#room.get(`k:${key}`)) return
    if (bytes) await this.#store.put(cid, bytes)
    const c = (await this.#room.get(`c:${key}`)) as Cached | undefined
    const ops: BatchOp[] = [{ type: 'put', key: `k:${key}`, value: { size } }]
    if (c) {
      ops.push({ type: 'del', key: c.q }, { type: 'del', key: `c:${key}` })
      this.#bytes -= c.size
    }
    await this.#room.batch(ops)
    this.#kept += size
  }

  delete(cid: CID, opts: Abort = {}): Promise<void> {
    return this.#one(async () => {
      const key = cid.toString()
      const c = (await this.#room.get(`c:${key}`)) as Cached | undefined
      const k = (await this.#room.get(`k:${key}`)) as { size: number } | undefined
      await this.#store.delete(cid, opts)
      const ops: BatchOp[] = []
      if (c) {
        ops.push({ type: 'del', key: c.q }, { type: 'del', key: `c:${key}` })
        this.#bytes -= c.size
      }
      if (k) {
        ops.push({ type: 'del', key: `k:${key}` })
        this.#kept -= k.size
      }
      if (ops.length) await this.#room.batch(ops)
    })
  }

  /** Oldest cache blocks out until the cache is within its cap. */
  async #evict(): Promise<void> {
    while (this.#bytes > this.maxBytes) {
      const oldest = (await readRange(this.#room, { gte: 'q:', lt: 'q;', limit: 16 })) as [string, Queued][]
      if (oldest.length === 0) {
        this.#bytes = 0
        return
      }
      for (const [q, { cid, size }] of oldest) {
        if (this.#bytes <= this.maxBytes) return
        await this.#store.delete(parseCid(cid))
        await this.#room.batch([
          { type: 'del', key: q },
          { type: 'del', key: `c:${cid}` },
        ])
        this.#bytes -= size
      }
    }
  }
}
