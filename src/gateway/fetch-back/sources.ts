/**
 * Where an evicted file's bytes can come from. Each source yields the file's bytes from an offset to
 * its end, every block checked (file-walk.ts), so a source that failed part-way is followed by the next
 * from where it stopped. Each speaks one way of fetching:
 *
 * - a trustless HTTP gateway (`GET /ipfs/{cid}` with `Accept: application/vnd.ipld.car`, `dag-scope=
 *   entity`, `entity-bytes` for the rest of a file): the local Kubo's gateway, holders' and Filecoin
 *   providers' `/ipfs/` URLs, configured public gateways. When the file's leaves are known beforehand
 *   (leaf-plan.ts: the index holds its inner nodes), the gateway is first asked for the file's plain
 *   bytes (`Range` for a part), each leaf hashed against its CID (leaf-bytes.ts): Kubo's gateway sends
 *   those several times faster than its CAR (README, "Fetching evicted files back"); a gateway that
 *   does not serve plain bytes (a trustless-only one: 400, 406) is asked for each leaf's raw block
 *   (raw-leaves.ts), and one that serves neither for its CAR;
 * - the local IPFS node's own CAR export (`IpfsNode.car`), when its gateway address is not configured;
 * - a Filecoin provider's `/piece/{pieceCid}` read with a Range over the file's sections in the piece.
 */
import type { CID } from 'multiformats/cid'
import { type Dispatcher, request } from 'undici'
import { BlockNotFoundError, type IpfsNode } from '../../ipfs/index.ts'
import { type CarBlock, carBlocks } from './car-blocks.ts'
import { SourceAnswerError, SourceNotHeldError } from './errors.ts'
import { fileBytes, type SeenLeaves } from './file-walk.ts'
import { leafBytes } from './leaf-bytes.ts'
import { type Leaf, leafSpan } from './leaf-plan.ts'
import { rawLeaves } from './raw-leaves.ts'

/** The kinds of source, in the order they are tried; also the `kind` label of the metrics. */
export type SourceKind = 'local-node' | 'holder' | 'filecoin' | 'gateway'

export interface FileToFetch {
  cid: CID
  size: number
  /** The leaves already taken, for sources that send a repeated block once. */
  seen?: SeenLeaves
  /** The file's raw leaves in order, when known locally: a source may then send plain bytes. */
  leaves?: Leaf[]
}

export interface FetchSource {
  /** `local-node`, `holder:<id>`, `filecoin:<provider>`, `gateway:<url>` (FetchBackResult.source). */
  readonly name: string
  readonly kind: SourceKind
  /**
   * Whether it starts a read at any byte without sending the bytes before it (a gateway's Range or
   * `entity-bytes`): only such sources serve a ranged read far ahead of the shared fetch.
   */
  readonly seeks?: boolean
  /** The file's verified bytes from `from` (0 <= from < size) to `to` (inclusive, default its end), in order. */
  bytes(file: FileToFetch, from: number, signal: AbortSignal, to?: number): AsyncIterable<Uint8Array>
}

/** Body bytes undici buffers before it pauses the socket: 1 MiB (a leaf) rather than 64 KiB. */
export const BODY_BUFFER = 1024 * 1024

const CAR_ACCEPT = 'application/vnd.ipld.car; version=1; order=dfs; dups=y'

/** The file's verified bytes `from..to` out of a CAR of it (header first), as `where` sent it. */
export function carFileBytes(
  car: AsyncIterable<Uint8Array>,
  file: FileToFetch,
  from: number,
  to: number,
  where: string,
): AsyncGenerator<Uint8Array> {
  const blocks = carBlocks(car, { header: true, where })
  return fileBytes(blocks, file.cid, file.size, { start: from, end: to }, where, file.seen)
}

/** Read and drop a body we will not use, so the connection can be reused. */
async function discard(body: Dispatcher.ResponseData['body']): Promise<void> {
  try {
    await body.dump({ limit: 64 * 1024 })
  } catch {}
}

/** A trustless gateway at `base` (scheme, host, port, optional path prefix before `/ipfs/`). */
export class TrustlessGatewaySource implements FetchSource {
  readonly name: string
  readonly kind: SourceKind
  readonly seeks = true
  readonly #base: string
  readonly #dispatcher: Dispatcher | undefined

  constructor(name: string, kind: SourceKind, base: string, dispatcher?: Dispatcher) {
    this.name = name
    this.kind = kind
    this.#base = base.replace(/\/+$/, '')
    this.#dispatcher = dispatcher
  }

  /** Whether it answered a plain-bytes request with something else (then only its CAR is asked for). */
  #noPlain = false
  /** Whether it answered a raw-block request with something else. */
  #noRaw = false

  async *bytes(
    file: FileToFetch,
    from: number,
    signal: AbortSignal,
    to = file.size - 1,
  ): AsyncGenerator<Uint8Array> {
    if (file.leaves && !this.#noPlain) {
      const served = yield* this.#plain(file, file.leaves, from, to, signal)
      if (served) return
      this.#noPlain = true
    }
    if (file.leaves && !this.#noRaw) {
      const leaves = leafSpan(file.leaves, from, to).want
      const range = { start: from, end: to }
      const served = yield* rawLeaves(this.#base, this.name, leaves, range, signal, this.#dispatcher)
      if (served) return
      this.#noRaw = true
    }
    yield* this.#car(file, from, to, signal)
  }

  /**
   * The file's plain bytes, leaf-aligned (`Range` unless the whole file is asked), each leaf checked;
   * false when the gateway does not serve plain bytes (another status, a raw block or a CAR, which a
   * server that reads no Accept sends anyway): nothing yielded, its CAR is asked for next.
   */
  async *#plain(
    file: FileToFetch,
    leaves: Leaf[],
    from: number,
    to: number,
    signal: AbortSignal,
  ): AsyncGenerator<Uint8Array, boolean> {
    const cid = file.cid.toString()
    const { want, first, last } = leafSpan(leaves, from, to)
    const whole = first === 0 && last === file.size - 1
    const res = await request(`${this.#base}/ipfs/${cid}`, {
      headers: whole ? { accept: '*/*' } : { accept: '*/*', range: `bytes=${first}-${last}` },
      signal,
      dispatcher: this.#dispatcher,
      highWaterMark: BODY_BUFFER,
    })
    try {
      const type = String(res.headers['content-type'] ?? '')
      const encoding = String(res.headers['content-encoding'] ?? 'identity')
      if (
        (res.statusCode !== 200 && res.statusCode !== 206) ||
        type.startsWith('application/vnd.ipld.') ||
        encoding !== 'identity'
      ) {
        await discard(res.body)
        return false
      }
      let skip = 0
      if (res.statusCode === 206) {
        const range = String(res.headers['content-range'] ?? '')
        if (range !== `bytes ${first}-${last}/${file.size}`)
          throw new SourceAnswerError(
            this.name,
            `answered Content-Range "${range}" for bytes ${first}-${last} of ${cid}`,
          )
      } else skip = first // The whole file for a Range: its first bytes are not needed.
      const length = Number(res.headers['content-length'] ?? Number.NaN)
      const expected = res.statusCode === 206 ? last - first + 1 : file.size
      if (Number.isFinite(length) && length !== expected)
        throw new SourceAnswerError(
          this.name,
          `answered ${length} bytes of ${cid} where ${expected} were asked for (the index says ${file.size})`,
        )
      yield* leafBytes(res.body, want, { start: from, end: to, skip }, this.name)
      return true
    } finally {
      if (!res.body.destroyed) res.body.destroy()
    }
  }

  async *#car(file: FileToFetch, from: number, to: number, signal: AbortSignal): AsyncGenerator<Uint8Array> {
    const cid = file.cid.toString()
    const query = new URLSearchParams({ 'dag-scope': 'entity' })
    if (from > 0 || to < file.size - 1) query.set('entity-bytes', `${from}:${to < file.size - 1 ? to : '*'}`)
    const res = await request(`${this.#base}/ipfs/${cid}?${query}`, {
      headers: { accept: CAR_ACCEPT },
      signal,
      dispatcher: this.#dispatcher,
      highWaterMark: BODY_BUFFER,
    })
    try {
      if (res.statusCode !== 200) {
        await discard(res.body)
        throw new SourceAnswerError(this.name, `answered HTTP ${res.statusCode} for ${cid}`)
      }
      const type = String(res.headers['content-type'] ?? '')
      if (!type.startsWith('application/vnd.ipld.car'))
        throw new SourceAnswerError(
          this.name,
          `answered ${type || 'no Content-Type'} where a CAR was asked for`,
        )
      yield* carFileBytes(res.body, file, from, to, this.name)
    } finally {
      if (!res.body.destroyed) res.body.destroy()
    }
  }
}

/**
 * The local node's own CAR of the file (Kubo: `dag export`, which asks its peers for what it lacks).
 * A node that can ask no one (`canAskPeers`: the embedded node with no peer and no routing) is read
 * offline: a block it lacks fails the source at once (SourceNotHeldError), and the next is tried,
 * rather than bitswap waiting out the first-byte limit for a peer that cannot come.
 */
export class NodeCarSource implements FetchSource {
  readonly name = 'local-node'
  readonly kind: SourceKind = 'local-node'
  readonly #node: IpfsNode

  constructor(node: IpfsNode) {
    this.#node = node
  }

  async *bytes(
    file: FileToFetch,
    from: number,
    signal: AbortSignal,
    to = file.size - 1,
  ): AsyncGenerator<Uint8Array> {
    const offline = !this.#node.canAskPeers()
    const car = this.#node.car(file.cid.toString(), { scope: 'all', signal, offline })
    try {
      yield* carFileBytes(car, file, from, to, this.name)
    } catch (err) {
      if (offline && err instanceof BlockNotFoundError)
        throw new SourceNotHeldError(this.name, this.#node.label)
      throw err
    }
  }
}

/** One piece holding (a part of) the file: its `/piece/` URL and the file's sections' range in it. */
export interface PiecePart {
  url: string
  offset: number
  length: number
}

/**
 * A Filecoin provider's pieces: `GET <provider>/piece/<pieceCid>` with a `Range` over the file's CAR
 * sections (`offset`, `length` inside the piece, as the Filecoin target recorded them); a file split
 * across pieces is read part after part (its DAG's blocks depth first, cut into parts), one stream.
 * The sections come root first, as a trustless CAR orders them, each repeated leaf once (read back
 * from the cache file when the DAG names it again).
 */
export class PieceSource implements FetchSource {
  readonly name: string
  readonly kind: SourceKind = 'filecoin'
  readonly #parts: PiecePart[]
  readonly #dispatcher: Dispatcher | undefined

  constructor(name: string, parts: PiecePart[], dispatcher?: Dispatcher) {
    this.name = name
    this.#parts = parts
    this.#dispatcher = dispatcher
  }

  async *bytes(
    file: FileToFetch,
    from: number,
    signal: AbortSignal,
    to = file.size - 1,
  ): AsyncGenerator<Uint8Array> {
    const blocks = this.#sections(signal)
    yield* fileBytes(blocks, file.cid, file.size, { start: from, end: to }, this.name, file.seen)
  }

  async *#sections(signal: AbortSignal): AsyncGenerator<CarBlock> {
    for (const part of this.#parts) {
      const last = part.offset + part.length - 1
      const res = await request(part.url, {
        headers: { range: `bytes=${part.offset}-${last}` },
        signal,
        dispatcher: this.#dispatcher,
        highWaterMark: BODY_BUFFER,
      })
      try {
        if (res.statusCode !== 206) {
          await discard(res.body)
          throw new SourceAnswerError(
            this.name,
            `answered HTTP ${res.statusCode} to a Range of its piece (206 expected)`,
          )
        }
        const range = String(res.headers['content-range'] ?? '')
        if (!range.startsWith(`bytes ${part.offset}-${last}/`))
          throw new SourceAnswerError(
            this.name,
            `answered Content-Range "${range}" for bytes ${part.offset}-${last}`,
          )
        yield* carBlocks(res.body, { header: false, where: this.name })
      } finally {
        if (!res.body.destroyed) res.body.destroy()
      }
    }
  }
}
