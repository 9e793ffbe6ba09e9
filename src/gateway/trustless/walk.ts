/**
 * The blocks of a trustless CAR: those that prove the path from the CID to its last segment (basic
 * directories, HAMT shards on the way, IPLD links), then the terminal entity's blocks by `dag-scope`,
 * depth first. The path is resolved before any byte is sent (so a missing segment is a clean 404);
 * the scope is walked lazily, one block at a time, as the client reads.
 */
import type { CID } from 'multiformats/cid'
import { type DagNode, decodeNode, hamtLookup, hamtShards, ipldStep, isIdentity, linksOfNode } from './dag.ts'
import { TrustlessDupsLimitError, TrustlessNoSuchPathError, TrustlessNotHeldError } from './errors.ts'
import type { DagScope, EntityBytes } from './request.ts'

export interface Block {
  cid: CID
  bytes: Uint8Array
}

/** Where the walk reads blocks (a BlockSource, or one that fetches a file's missing leaves back). */
export interface BlockGetter {
  get(cid: CID, signal?: AbortSignal): Promise<Uint8Array | undefined>
}

export interface LoadedNode extends Block {
  node: DagNode
}

export interface ResolvedPath {
  /** Blocks that prove the path, the terminal's own block last. */
  pathBlocks: LoadedNode[]
  terminal: LoadedNode
  /** The CID of each segment reached (the request's CID first), for `X-Ipfs-Roots`. */
  roots: CID[]
}

async function load(src: BlockGetter, cid: CID, signal?: AbortSignal): Promise<LoadedNode | undefined> {
  const bytes = await src.get(cid, signal)
  return bytes ? loaded(cid, bytes) : undefined
}

function loaded(cid: CID, bytes: Uint8Array): LoadedNode {
  // Decoded on first use: a raw-block request never needs it.
  let node: DagNode | undefined
  return {
    cid,
    bytes,
    get node(): DagNode {
      node ??= decodeNode(cid, bytes)
      return node
    },
  }
}

/** Loads `cid` and follows `segments` (already percent-decoded); TrustlessNotHeld / NoSuchPath errors. */
export async function resolvePath(
  src: BlockGetter,
  cid: CID,
  segments: string[],
  signal?: AbortSignal,
): Promise<ResolvedPath> {
  const root = await load(src, cid, signal)
  if (!root) throw new TrustlessNotHeldError(cid.toString())
  const pathBlocks: LoadedNode[] = [root]
  const roots: CID[] = [cid]
  let cur = root
  let rest = segments
  const where = (): string => `/ipfs/${cid}/${segments.join('/')}`
  const need = async (next: CID, seg: string): Promise<LoadedNode> => {
    const n = await load(src, next, signal)
    // A block the path needs that is not here: the path cannot be proven, so it is not served.
    if (!n) throw new TrustlessNoSuchPathError(where(), seg)
    return n
  }
  while (rest.length > 0) {
    const seg = rest[0]!
    const node = cur.node
    let next: CID | undefined
    if (node.kind === 'dir') {
      next = node.links.find((l) => l.name === seg)?.cid
      rest = rest.slice(1)
    } else if (node.kind === 'hamt') {
      next = await hamtLookup(node, seg, async (shard) => {
        const child = await need(shard, seg)
        if (child.node.kind !== 'hamt') return undefined
        pathBlocks.push(child)
        return child.node
      })
      rest = rest.slice(1)
    } else if (node.kind === 'ipld') {
      const step = ipldStep(node.value, rest)
      if (step && 'inside' in step) {
        rest = []
        break
      }
      next = step?.cid
      rest = step ? step.rest : rest
    }
    if (!next) throw new TrustlessNoSuchPathError(where(), seg)
    cur = await need(next, seg)
    pathBlocks.push(cur)
    roots.push(next)
  }
  return { pathBlocks, terminal: cur, roots }
}

/** An inclusive byte range of the terminal file, resolved against its size. */
interface Span {
  from: number
  to: number
}

/** entity-bytes against a size: the span, or undefined when it holds no byte (then only the root block goes). */
export function spanOf(eb: EntityBytes, size: number): Span | undefined {
  const from = eb.from < 0 ? Math.max(0, size + eb.from) : eb.from
  let to = eb.to === '*' ? size - 1 : eb.to < 0 ? size + eb.to : eb.to
  to = Math.min(to, size - 1)
  if (from > to || from >= size) return undefined
  return { from, to }
}

/** Remembers the blocks sent, for `dups=n`: by multihash, so a CIDv0 and v1 of one block count once. */
class Sent {
  readonly #set = new Set<string>()
  readonly #max: number
  constructor(max: number) {
    this.#max = max
  }
  has(cid: CID): boolean {
    return this.#set.has(key(cid))
  }
  add(cid: CID): void {
    if (this.#set.size >= this.#max) throw new TrustlessDupsLimitError(this.#max)
    this.#set.add(key(cid))
  }
}

function key(cid: CID): string {
  return Buffer.from(cid.multihash.bytes).toString('latin1')
}

export interface WalkOptions {
  scope: DagScope
  entityBytes?: EntityBytes
  dups: boolean
  /** Bound on the blocks remembered for `dups=n` (memory stays bounded; the stream fails beyond it). */
  maxDistinct: number
  signal?: AbortSignal
  /** For `dag-scope=all`: the files below the terminal whose leaves no local store holds, filled. */
  fill?: LeafFill
}

/**
 * How `dag-scope=all` gets the files below a directory whose leaves left every local store (fill.ts):
 * a source for one file's blocks with its missing leaves fetched back, and a one-chunk file's block
 * fetched back by its CID and its link's size. Each block either gives is hashed against its CID.
 */
export interface LeafFill {
  file(src: BlockGetter, root: LoadedNode): Promise<BlockGetter>
  leaf(cid: CID, size: number): Promise<Uint8Array | undefined>
}

/**
 * Every block of the CAR in order: the path blocks, then the terminal's scope depth first. A block the
 * walk needs and cannot get ends the stream with an error (the status is sent by then: the spec's
 * "terminate the stream"); identity blocks are never written.
 */
export async function* carBlocks(
  src: BlockGetter,
  resolved: ResolvedPath,
  opts: WalkOptions,
): AsyncGenerator<Block> {
  const sent = opts.dups ? undefined : new Sent(opts.maxDistinct)
  /** Whether `b` goes out now (it is not an identity block, and not a duplicate under dups=n). */
  const fresh = (cid: CID): boolean => {
    if (isIdentity(cid)) return false
    if (!sent) return true
    if (sent.has(cid)) return false
    sent.add(cid)
    return true
  }
  const { terminal } = resolved
  for (const b of resolved.pathBlocks.slice(0, -1)) if (fresh(b.cid)) yield b

  const child = async (cid: CID, from: BlockGetter = src): Promise<LoadedNode> => {
    const n = await load(from, cid, opts.signal)
    if (!n) throw new TrustlessNotHeldError(cid.toString())
    return n
  }

  // A child of a directory that no store holds: a one-chunk file's block, fetched back (opts.fill).
  const dirChild = async (from: BlockGetter, cid: CID, tsize: number | undefined): Promise<LoadedNode> => {
    const n = await load(from, cid, opts.signal)
    if (n) return n
    const bytes = tsize !== undefined ? await opts.fill?.leaf(cid, tsize) : undefined
    if (!bytes) throw new TrustlessNotHeldError(cid.toString())
    return loaded(cid, bytes)
  }

  // dag-scope=all: the whole DAG below the terminal. Under dups=n a block already sent had its
  // subtree sent with it, so the subtree is skipped. A file's root below it reads its leaves through
  // opts.fill (once per file: its inner nodes are read through the same source).
  async function* all(n: LoadedNode, from: BlockGetter, inFile: boolean): AsyncGenerator<Block> {
    if (fresh(n.cid)) yield n
    else if (sent && !isIdentity(n.cid)) return
    const node = n.node
    if (node.kind === 'dir' || node.kind === 'hamt') {
      for (const l of node.links) yield* all(await dirChild(from, l.cid, l.tsize), from, false)
      return
    }
    const file = node.kind === 'file'
    const via = file && !inFile && opts.fill ? await opts.fill.file(from, n) : from
    for (const c of linksOfNode(node)) yield* all(await child(c, via), via, inFile || file)
  }

  // A file's blocks that hold bytes of `span` (all of them without one), by its block sizes.
  async function* file(n: LoadedNode, span: Span | undefined): AsyncGenerator<Block> {
    if (fresh(n.cid)) yield n
    if (n.node.kind !== 'file') return
    let off = n.node.inline
    const { links, blockSizes } = n.node
    for (let i = 0; i < links.length; i++) {
      const size = blockSizes[i] ?? 0
      const start = off
      off += size
      if (span && (start + size - 1 < span.from || start > span.to)) continue
      const sub = span && { from: Math.max(0, span.from - start), to: Math.min(size - 1, span.to - start) }
      yield* file(await child(links[i]!.cid), sub)
    }
  }

  if (opts.scope === 'all') {
    // A terminal file's leaves are the caller's source's to fill (plugin.ts `fillingSource`).
    yield* all(terminal, src, terminal.node.kind === 'file')
    return
  }
  if (opts.scope === 'block') {
    if (fresh(terminal.cid)) yield terminal
    return
  }
  // dag-scope=entity
  const node = terminal.node
  if (node.kind === 'file') {
    const span = opts.entityBytes ? spanOf(opts.entityBytes, node.size) : undefined
    if (opts.entityBytes && !span) {
      // A range holding no byte of the file: the root block alone lets the client see why.
      if (fresh(terminal.cid)) yield terminal
      return
    }
    yield* file(terminal, span)
    return
  }
  if (fresh(terminal.cid)) yield terminal
  if (node.kind === 'hamt') {
    // Every shard of the HAMT (to list it), none of its entries.
    const shards = async function* (h: Extract<DagNode, { kind: 'hamt' }>): AsyncGenerator<Block> {
      for (const s of hamtShards(h)) {
        const n = await child(s)
        if (fresh(n.cid)) yield n
        if (n.node.kind === 'hamt') yield* shards(n.node)
      }
    }
    yield* shards(node)
  }
}
