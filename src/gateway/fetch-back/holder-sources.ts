/**
 * Sources that reach the holders the replicator recorded directly, not only as the local node's bitswap
 * peers (README, "Fetching evicted files back"):
 *
 * - a holder's own IPFS RPC API (a `kubo` target's `api`, a `cluster` target's `ipfs_api`), asked
 *   offline (the holder answers from its own store, or fails at once rather than searching the
 *   network): when the file's leaves are known (leaf-plan.ts), its plain bytes (`cat` with `offset`
 *   and `length`, leaf-aligned), each leaf hashed against its CID (leaf-bytes.ts), several times faster
 *   than a CAR and able to start mid-file; otherwise, or when the holder does not answer `cat`, its
 *   `dag export` of the file, every block checked exactly as the local node's CAR export is;
 * - the delegates a pinning service named for a pin: the local node dials them before it is asked, so
 *   its bitswap reaches the service's nodes that hold the blocks.
 *
 * The RPC addresses (and the credentials a `kubo` target's `token` gives) stay in the config: the daemon hands the fetch-back a
 * lookup by copy `target` name, so nothing secret goes into a CopyRecord (the audit shows those).
 */
import { type Dispatcher, request } from 'undici'
import type { IpfsNode } from '../../ipfs/index.ts'
import { SourceAnswerError } from './errors.ts'
import { leafBytes } from './leaf-bytes.ts'
import { type Leaf, leafSpan } from './leaf-plan.ts'
import { BODY_BUFFER, carFileBytes, type FetchSource, type FileToFetch, type SourceKind } from './sources.ts'

/** A holder's IPFS node as the fetch-back reads it: its CAR export. */
export interface HolderNode {
  /** The source's id in `holder:<id>` (metrics, FetchBackResult.source); default the copy's holder. */
  id?: string
  /** A stable key for the node (its RPC address): one source per node however many copies name it. */
  key: string
  node: Pick<IpfsNode, 'car'>
  /** Its Kubo RPC base URL (`http://host:5001`), for the plain-bytes `cat`; without it, CAR only. */
  rpc?: string
  /** The node's IPFS peer id when known: it then serves only the copies that holder `ipfs:<peer>` has. */
  peer?: string
  /** The `Authorization` header its RPC API needs (from the target's config; `node` sends it too). */
  authorization?: string
}

/** The holder nodes reachable for copies recorded by the target `target` (CopyRecord.target). */
export type HolderNodes = (target: string) => readonly HolderNode[] | undefined

/** A holder's node over its RPC API (Kubo), read offline, verified leaf by leaf or block by block. */
export class HolderCarSource implements FetchSource {
  readonly name: string
  readonly kind: SourceKind = 'holder'
  /** With its RPC URL it starts a read at any leaf (`cat` with an offset), when the leaves are known. */
  readonly seeks: boolean
  readonly #node: Pick<IpfsNode, 'car'>
  readonly #rpc: string | undefined
  readonly #dispatcher: Dispatcher | undefined
  readonly #authorization: string | undefined
  /** It answered `cat` with an error status: only its CAR export is asked from then on. */
  #noPlain = false

  constructor(id: string, holder: HolderNode, dispatcher?: Dispatcher) {
    this.name = `holder:${id}`
    this.#node = holder.node
    this.#rpc = holder.rpc?.replace(/\/+$/, '')
    this.#authorization = holder.authorization
    this.#dispatcher = dispatcher
    this.seeks = this.#rpc !== undefined
  }

  async *bytes(
    file: FileToFetch,
    from: number,
    signal: AbortSignal,
    to = file.size - 1,
  ): AsyncGenerator<Uint8Array> {
    if (file.leaves && this.#rpc && !this.#noPlain) {
      if (yield* this.#plain(file, file.leaves, from, to, signal)) return
      this.#noPlain = true
    }
    const car = this.#node.car(file.cid.toString(), { scope: 'all', offline: true, signal })
    yield* carFileBytes(car, file, from, to, this.name)
  }

  /** `cat` of the leaves covering `from..to`, each checked; false (nothing yielded) on an error status. */
  async *#plain(
    file: FileToFetch,
    leaves: Leaf[],
    from: number,
    to: number,
    signal: AbortSignal,
  ): AsyncGenerator<Uint8Array, boolean> {
    const cid = file.cid.toString()
    const { want, first, last } = leafSpan(leaves, from, to)
    const query = new URLSearchParams({
      arg: cid,
      offset: String(first),
      length: String(last - first + 1),
      offline: 'true',
      progress: 'false',
    })
    const res = await request(`${this.#rpc}/api/v0/cat?${query}`, {
      method: 'POST',
      signal,
      dispatcher: this.#dispatcher,
      highWaterMark: BODY_BUFFER,
      ...(this.#authorization ? { headers: { authorization: this.#authorization } } : {}),
    })
    try {
      if (res.statusCode !== 200) {
        const text = await res.body.text().catch(() => '')
        // A holder without the file's blocks answers 500 ("not found locally"): a failed source.
        if (res.statusCode === 500 && /not found|no link named|offline/i.test(text))
          throw new SourceAnswerError(this.name, `answered HTTP 500 to cat of ${cid}: ${text.slice(0, 200)}`)
        return false
      }
      yield* leafBytes(res.body, want, { start: from, end: to }, this.name)
      return true
    } finally {
      if (!res.body.destroyed) res.body.destroy()
    }
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
