/**
 * Where an evicted file's bytes can come from. Each source yields the file's bytes from an offset to
 * its end, every block checked (file-walk.ts), so a source that failed part-way is followed by the next
 * from where it stopped. Each speaks one way of fetching:
 *
 * - a trustless HTTP gateway (`GET /ipfs/{cid}` with `Accept: application/vnd.ipld.car`, `dag-scope=
 *   entity`, `entity-bytes` for the rest of a file): the local Kubo's gateway (the fastest verified
 *   path: MEASURED.md), holders' and Filecoin providers' `/ipfs/` URLs, configured public gateways;
 * - the local IPFS node's own CAR export (`IpfsNode.car`), when its gateway address is not configured;
 * - a Filecoin provider's `/piece/{pieceCid}` read with a Range over the file's sections in the piece.
 */
import type { CID } from 'multiformats/cid'
import { type Dispatcher, request } from 'undici'
import type { IpfsNode } from '../../ipfs/index.ts'
import { type CarBlock, carBlocks } from './car-blocks.ts'
import { SourceAnswerError } from './errors.ts'
import { fileBytes, type SeenLeaves } from './file-walk.ts'

/** The kinds of source, in the order they are tried; also the `kind` label of the metrics. */
export type SourceKind = 'local-node' | 'holder' | 'filecoin' | 'gateway'

export interface FileToFetch {
  cid: CID
  size: number
  /** The leaves already taken, for sources that send a repeated block once. */
  seen?: SeenLeaves
}

export interface FetchSource {
  /** `local-node`, `holder:<id>`, `filecoin:<provider>`, `gateway:<url>` (FetchBackResult.source). */
  readonly name: string
  readonly kind: SourceKind
  /** The file's verified bytes from `from` (0 <= from < size) to its end, in order. */
  bytes(file: FileToFetch, from: number, signal: AbortSignal): AsyncIterable<Uint8Array>
}

/** Body bytes undici buffers before it pauses the socket: 1 MiB (a leaf) rather than 64 KiB. */
const BODY_BUFFER = 1024 * 1024

const CAR_ACCEPT = 'application/vnd.ipld.car; version=1; order=dfs; dups=y'

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
  readonly #base: string
  readonly #dispatcher: Dispatcher | undefined

  constructor(name: string, kind: SourceKind, base: string, dispatcher?: Dispatcher) {
    this.name = name
    this.kind = kind
    this.#base = base.replace(/\/+$/, '')
    this.#dispatcher = dispatcher
  }

  async *bytes(file: FileToFetch, from: number, signal: AbortSignal): AsyncGenerator<Uint8Array> {
    const cid = file.cid.toString()
    const query = new URLSearchParams({ 'dag-scope': 'entity' })
    if (from > 0) query.set('entity-bytes', `${from}:*`)
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
      const blocks = carBlocks(res.body, { header: true, where: this.name })
      yield* fileBytes(blocks, file.cid, file.size, { start: from, end: file.size - 1 }, this.name, file.seen)
    } finally {
      if (!res.body.destroyed) res.body.destroy()
    }
  }
}

/** The local node's own CAR of the file (Kubo: `dag export`, which asks its peers for what it lacks). */
export class NodeCarSource implements FetchSource {
  readonly name = 'local-node'
  readonly kind: SourceKind = 'local-node'
  readonly #node: IpfsNode

  constructor(node: IpfsNode) {
    this.#node = node
  }

  async *bytes(file: FileToFetch, from: number, signal: AbortSignal): AsyncGenerator<Uint8Array> {
    const car = this.#node.car(file.cid.toString(), { scope: 'all', signal })
    const blocks = carBlocks(car, { header: true, where: this.name })
    yield* fileBytes(blocks, file.cid, file.size, { start: from, end: file.size - 1 }, this.name, file.seen)
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

  async *bytes(file: FileToFetch, from: number, signal: AbortSignal): AsyncGenerator<Uint8Array> {
    const blocks = this.#sections(signal)
    yield* fileBytes(blocks, file.cid, file.size, { start: from, end: file.size - 1 }, this.name, file.seen)
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
