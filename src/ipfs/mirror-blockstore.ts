import type { Blockstore, InputPair, Pair } from 'interface-blockstore'
import type { CID } from 'multiformats/cid'
import type { BlockReader } from '../index/index.ts'
import { BlockNotFoundError } from './errors.ts'
import type { FetchedBlocks } from './fetched-blocks.ts'
import { verifyBlock } from './verify-block.ts'

type Abort = { signal?: AbortSignal }

/** Blocks read by `has` and not yet taken by the `get` that follows it. */
const HAND_OVER_BLOCKS = 4

/**
 * A block the store does not hold, named as interface-store names it: Helia's bitswap treats a
 * `NotFoundError` as "don't have" (the file changed between its `has` and `get`) and goes on.
 */
function absentBlock(cid: string): BlockNotFoundError {
  const err = new BlockNotFoundError(cid, 'the embedded node')
  err.name = 'NotFoundError'
  return err
}

/**
 * The embedded node's blockstore: the mirror's blocks are read from the mirror tree through the
 * index's block map (DESIGN promise 5: no second copy), each read hashed against its CID, so a file
 * changed on disk since it was indexed serves nothing. Only blocks that are not the mirror's (what the
 * node fetches or is given) go to `extra`, a LevelDB on disk with a cap (src/ipfs/fetched-blocks.ts):
 * memory and disk stay bounded whatever the tree's size (Helia's default in-memory blockstore keeps
 * every block it ever saw).
 */
export class MirrorBlockstore implements Blockstore {
  readonly #reader: BlockReader
  readonly #extra: FetchedBlocks
  readonly #onMissing: ((cid: string) => void) | undefined
  readonly #handOver = new Map<string, Uint8Array>()

  constructor(reader: BlockReader, extra: FetchedBlocks, onMissing?: (cid: string) => void) {
    this.#reader = reader
    this.#extra = extra
    this.#onMissing = onMissing
  }

  /** The mirror's copy of the block, verified, or undefined when no mirror file holds it as indexed. */
  async mirrorBlock(cid: CID): Promise<Uint8Array | undefined> {
    return this.#reader.get(cid)
  }

  /** The block's bytes from the mirror or the extra store, verified; undefined when neither holds it. */
  async read(cid: CID, opts: Abort = {}): Promise<Uint8Array | undefined> {
    opts.signal?.throwIfAborted()
    const own = await this.mirrorBlock(cid)
    if (own) return own
    if (await this.#extra.has(cid)) {
      const bytes = await concat(this.#extra.get(cid, opts))
      try {
        verifyBlock(cid, bytes, 'the embedded node')
        return bytes
      } catch {
        // A damaged block reads as absent.
      }
    }
    this.#onMissing?.(cid.toString())
    return undefined
  }

  /**
   * Whether the block reads, verified. Helia's bitswap asks `has` and then `get` of each block: the
   * bytes `has` read wait for that one `get` (a few blocks at most), so the file is read once. Every
   * `has` reads anew, so a file changed since is noticed at the next request.
   */
  async has(cid: CID, opts: Abort = {}): Promise<boolean> {
    const key = cid.toString()
    this.#handOver.delete(key)
    const bytes = await this.read(cid, opts)
    if (!bytes) return false
    this.#handOver.set(key, bytes)
    if (this.#handOver.size > HAND_OVER_BLOCKS) this.#handOver.delete(this.#handOver.keys().next().value!)
    return true
  }

  /**
   * Stores a block that is not the mirror's: what bitswap fetched goes to the capped cache; `keep`
   * (blocks the node was given, or reached by a pin) keeps it past the cap.
   */
  async put(cid: CID, value: InputPair['bytes'], opts: Abort & { keep?: boolean } = {}): Promise<CID> {
    const bytes = value instanceof Uint8Array ? value : await concat(value)
    verifyBlock(cid, bytes, 'a block given to the embedded node')
    // A block the mirror holds is served from the mirror file: never stored twice.
    if (await this.mirrorBlock(cid)) return cid
    await this.#extra.put(cid, bytes, opts)
    return cid
  }

  /** A fetched block a pin reached: kept past the cache's cap. The mirror's own blocks need nothing. */
  async keep(cid: CID): Promise<void> {
    await this.#extra.keep(cid)
  }

  async *putMany(
    source: Iterable<InputPair> | AsyncIterable<InputPair>,
    opts: Abort = {},
  ): AsyncGenerator<CID> {
    for await (const { cid, bytes } of source) yield await this.put(cid, bytes, opts)
  }

  async *get(cid: CID, opts: Abort = {}): AsyncGenerator<Uint8Array> {
    const key = cid.toString()
    const handed = this.#handOver.get(key)
    this.#handOver.delete(key)
    const bytes = handed ?? (await this.read(cid, opts))
    if (!bytes) throw absentBlock(key)
    yield bytes
  }

  async *getMany(source: Iterable<CID> | AsyncIterable<CID>, opts: Abort = {}): AsyncGenerator<Pair> {
    for await (const cid of source) yield { cid, bytes: this.get(cid, opts) }
  }

  /** Removes a fetched block; the mirror's own blocks go only when their files do. */
  async delete(cid: CID, opts: Abort = {}): Promise<void> {
    this.#handOver.delete(cid.toString())
    await this.#extra.delete(cid, opts)
  }

  async *deleteMany(source: Iterable<CID> | AsyncIterable<CID>, opts: Abort = {}): AsyncGenerator<CID> {
    for await (const cid of source) {
      await this.delete(cid, opts)
      yield cid
    }
  }

  /** The fetched blocks only: the mirror's blocks are listed by the index, not here. */
  async *getAll(opts: Abort = {}): AsyncGenerator<Pair> {
    yield* this.#extra.getAll(opts)
  }
}

async function concat(chunks: Iterable<Uint8Array> | AsyncIterable<Uint8Array>): Promise<Uint8Array> {
  const parts: Uint8Array[] = []
  for await (const c of chunks) parts.push(c)
  return parts.length === 1 ? parts[0]! : Buffer.concat(parts)
}
