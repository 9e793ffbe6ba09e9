/**
 * A CAR of a file whose leaves are on no local store (a file deleted upstream, an old version in a
 * past root, an evicted one): the file's inner nodes are still held (the block map keeps every dag-pb
 * node it wrote), so its leaves and where each lies are known from its root down; the missing leaves
 * are cut from one forward stream of the file's bytes that the fetch-back gives, verified there, and
 * each is hashed against its own CID again here before it goes into the CAR (DESIGN promise 2).
 */
import { createHash } from 'node:crypto'
import type { CID } from 'multiformats/cid'
import { FetchBackShortBodyError } from '../fetch-back/errors.ts'
import { knownLeaves, type Leaf } from '../fetch-back/leaf-plan.ts'
import { walkTo } from '../past/dag-path.ts'
import type { BlockGetter, LeafFill, LoadedNode } from './walk.ts'

const RAW = 0x55
const SHA2_256 = 0x12
const MAX_LEAF = 2 * 1024 * 1024

/** The verified bytes `range` of the file `cid` (`size` bytes): the fetch-back, to the client only. */
export type FetchFile = (
  cid: CID,
  size: number,
  range: { start: number; end: number },
  signal: AbortSignal,
) => Promise<AsyncIterable<Uint8Array>>

class FillingSource implements BlockGetter {
  readonly #inner: BlockGetter
  readonly #leaves: Leaf[]
  readonly #open: (start: number) => Promise<AsyncIterable<Uint8Array>>
  /** The file's size: its fetch is let go once the last leaf is cut (a directory's CAR has many). */
  readonly #size: number
  #next = 0
  #it: AsyncIterator<Uint8Array> | undefined
  /** File offset of `#buf[0]`. */
  #pos = 0
  #buf: Buffer = Buffer.alloc(0)

  constructor(
    inner: BlockGetter,
    leaves: Leaf[],
    size: number,
    open: (start: number) => Promise<AsyncIterable<Uint8Array>>,
  ) {
    this.#inner = inner
    this.#leaves = leaves
    this.#size = size
    this.#open = open
  }

  async get(cid: CID, signal?: AbortSignal): Promise<Uint8Array | undefined> {
    const held = await this.#inner.get(cid, signal)
    if (held || cid.code !== RAW || cid.multihash.code !== SHA2_256) return held
    // The walk asks for leaves in byte order: the next occurrence of this CID from where it is.
    let i = this.#leaves.findIndex((l, k) => k >= this.#next && l.cid.equals(cid))
    if (i < 0) i = this.#leaves.findIndex((l) => l.cid.equals(cid))
    if (i < 0) return undefined
    const leaf = this.#leaves[i]!
    this.#next = i + 1
    const bytes = await this.#read(leaf)
    const digest = createHash('sha256').update(bytes).digest()
    return digest.equals(cid.multihash.digest) ? bytes : undefined
  }

  async #read(leaf: Leaf): Promise<Uint8Array> {
    if (!this.#it || leaf.offset < this.#pos) {
      await this.#it?.return?.()
      this.#it = (await this.#open(leaf.offset))[Symbol.asyncIterator]()
      this.#pos = leaf.offset
      this.#buf = Buffer.alloc(0)
    }
    const end = leaf.offset + leaf.length
    while (this.#pos + this.#buf.length < end) {
      const r = await this.#it.next()
      if (r.done) throw new FetchBackShortBodyError(this.#pos + this.#buf.length, end)
      this.#buf = this.#buf.length === 0 ? Buffer.from(r.value) : Buffer.concat([this.#buf, r.value])
    }
    const from = leaf.offset - this.#pos
    const out = Buffer.from(this.#buf.subarray(from, from + leaf.length))
    this.#buf = this.#buf.subarray(from + leaf.length)
    this.#pos = end
    if (end >= this.#size) {
      const it = this.#it
      this.#it = undefined
      await it.return?.()
    }
    return out
  }
}

/**
 * A source for the CAR of file `terminal` that fetches its missing leaves back through `fetch`; the
 * plain source when the file's inner nodes are not all held (the CAR then fails as before).
 */
export async function fillingSource(
  src: BlockGetter,
  terminal: LoadedNode,
  fetch: FetchFile,
  signal: AbortSignal,
): Promise<BlockGetter> {
  if (terminal.node.kind !== 'file') return src
  // The file's leaves from its inner nodes, as the fetch-back plans them (each node hashed again).
  const leaves = await knownLeaves(terminal.cid, terminal.node.size, { get: (c) => src.get(c, signal) })
  if (!leaves || leaves.length === 0) return src
  const size = terminal.node.size
  return new FillingSource(src, leaves, size, (start) =>
    fetch(terminal.cid, size, { start, end: size - 1 }, signal),
  )
}

async function collect(body: AsyncIterable<Uint8Array>): Promise<Buffer> {
  const parts: Uint8Array[] = []
  for await (const c of body) parts.push(c)
  return Buffer.concat(parts)
}

/**
 * For a path whose end is a one-chunk file (a raw leaf) that no local store holds: its CID and size
 * from the link that names it (the directories are held), its bytes fetched back and hashed against
 * the CID; a source holding that block too. Undefined when the path does not end so.
 */
export async function withFetchedLeaf(
  src: BlockGetter,
  root: CID,
  segments: string[],
  fetch: FetchFile,
  signal: AbortSignal,
): Promise<BlockGetter | undefined> {
  let entry: Awaited<ReturnType<typeof walkTo>>
  try {
    // The trustless walk does not follow symlinks: neither does this, or it would fetch for nothing.
    entry = await walkTo(src, root, segments, signal, { symlinks: 'keep' })
  } catch {
    return undefined
  }
  const { cid, tsize } = entry
  if (tsize === undefined || (await src.get(cid, signal))) return undefined
  const bytes = await fetchedLeaf(cid, tsize, fetch, signal)
  if (!bytes) return undefined
  return {
    get: async (c, s) => (c.equals(cid) ? bytes : src.get(c, s)),
  }
}

/**
 * The block of a one-chunk file (a raw leaf of `tsize` bytes, its link's size) fetched back and hashed
 * against its CID; undefined when it is not such a block or the bytes do not match.
 */
async function fetchedLeaf(
  cid: CID,
  tsize: number,
  fetch: FetchFile,
  signal: AbortSignal,
): Promise<Uint8Array | undefined> {
  // One block, held in memory: a raw leaf of a UnixFS file is one chunk (1 MiB here; 2 MiB at most).
  if (cid.code !== RAW || cid.multihash.code !== SHA2_256 || tsize > MAX_LEAF) return undefined
  const bytes =
    tsize === 0
      ? Buffer.alloc(0)
      : await collect(await fetch(cid, tsize, { start: 0, end: tsize - 1 }, signal))
  return createHash('sha256').update(bytes).digest().equals(cid.multihash.digest) ? bytes : undefined
}

/**
 * The fill of a directory's `dag-scope=all` CAR (walk.ts `LeafFill`): each file below it whose leaves
 * no local store holds gets them from one forward fetch of its bytes, as a file's CAR does, and each
 * one-chunk file its block; every one hashed again. A leaf no source gives ends the CAR unfinished.
 */
export function leafFill(fetch: FetchFile, signal: AbortSignal): LeafFill {
  return {
    // Planned at the file's first missing block only: a file whose blocks are all held costs nothing.
    file: async (src, root) => {
      let filling: Promise<BlockGetter> | undefined
      return {
        get: async (cid, s) => {
          const held = await src.get(cid, s)
          if (held) return held
          filling ??= fillingSource(src, root, fetch, signal)
          return (await filling).get(cid, s)
        },
      }
    },
    leaf: (cid, size) => fetchedLeaf(cid, size, fetch, signal),
  }
}
