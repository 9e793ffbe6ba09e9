/**
 * Sources that reach the holders the replicator recorded directly, not only as the local node's bitswap
 * peers (README, "Fetching evicted files back"):
 *
 * - a holder's own IPFS RPC API (a `kubo` target's `api`, a `cluster` target's `ipfs_api`): its
 *   `dag export` of the file, offline (the holder answers from its own store, or fails at once rather
 *   than searching the network), every block checked exactly as the local node's CAR export is;
 * - the delegates a pinning service named for a pin: the local node dials them before it is asked, so
 *   its bitswap reaches the service's nodes that hold the blocks.
 *
 * The RPC addresses (and any auth they need) stay in the config: the daemon hands the fetch-back a
 * lookup by copy `target` name, so nothing secret goes into a CopyRecord (the audit shows those).
 */
import type { IpfsNode } from '../../ipfs/index.ts'
import { carBlocks } from './car-blocks.ts'
import { fileBytes } from './file-walk.ts'
import type { FetchSource, FileToFetch, SourceKind } from './sources.ts'

/** A holder's IPFS node as the fetch-back reads it: its CAR export. */
export interface HolderNode {
  /** The source's id in `holder:<id>` (metrics, FetchBackResult.source); default the copy's holder. */
  id?: string
  /** A stable key for the node (its RPC address): one source per node however many copies name it. */
  key: string
  node: Pick<IpfsNode, 'car'>
}

/** The holder nodes reachable for copies recorded by the target `target` (CopyRecord.target). */
export type HolderNodes = (target: string) => readonly HolderNode[] | undefined

/** A holder's `dag export` over its RPC API (Kubo), read offline, verified block by block. */
export class HolderCarSource implements FetchSource {
  readonly name: string
  readonly kind: SourceKind = 'holder'
  readonly #node: Pick<IpfsNode, 'car'>

  constructor(id: string, node: Pick<IpfsNode, 'car'>) {
    this.name = `holder:${id}`
    this.#node = node
  }

  async *bytes(
    file: FileToFetch,
    from: number,
    signal: AbortSignal,
    to = file.size - 1,
  ): AsyncGenerator<Uint8Array> {
    const car = this.#node.car(file.cid.toString(), { scope: 'all', offline: true, signal })
    const blocks = carBlocks(car, { header: true, where: this.name })
    yield* fileBytes(blocks, file.cid, file.size, { start: from, end: to }, this.name, file.seen)
  }
}

/** How long the dials to a pin's delegates may hold up the local node's first read. */
const DIAL_MS = 5_000

/**
 * The local node's source, preceded (once per fetch plan) by dials from the local node to the
 * delegates a pinning service reported: a failed dial is no failure of the source, the node may still
 * find the blocks elsewhere.
 */
export class DelegatesFirstSource implements FetchSource {
  readonly name: string
  readonly kind: SourceKind
  readonly seeks: boolean | undefined
  readonly #inner: FetchSource
  readonly #delegates: string[]
  readonly #connect: (addr: string, opts: { signal: AbortSignal }) => Promise<void>
  #dialed: Promise<void> | undefined

  constructor(
    inner: FetchSource,
    delegates: string[],
    connect: (addr: string, opts: { signal: AbortSignal }) => Promise<void>,
  ) {
    this.name = inner.name
    this.kind = inner.kind
    this.seeks = inner.seeks
    this.#inner = inner
    this.#delegates = delegates
    this.#connect = connect
  }

  async *bytes(
    file: FileToFetch,
    from: number,
    signal: AbortSignal,
    to?: number,
  ): AsyncGenerator<Uint8Array> {
    this.#dialed ??= (async () => {
      const dial = AbortSignal.any([signal, AbortSignal.timeout(DIAL_MS)])
      await Promise.all(this.#delegates.map((d) => this.#connect(d, { signal: dial }).catch(() => {})))
    })()
    await this.#dialed
    yield* this.#inner.bytes(file, from, signal, to)
  }
}
