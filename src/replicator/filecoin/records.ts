/**
 * What the Filecoin target keeps, in the replicator room's own sublevel (only this file knows the keys):
 *
 *   replicator/fc-pieces/<piece key>           -> PieceRecord   a planned piece, and once uploaded, its
 *                                                               PieceCID, the files' byte ranges, copies
 *   replicator/fc-files/<cid>\x00<piece key>   -> ''            the pieces holding (part of) a file CID
 *   replicator/fc-others/<cid>\x00<ds>\x00<id> -> OtherPiece    someone's piece whose `ipfsRootCID` is cid
 *   replicator/fc-meta/<name>                  -> value         the event scan's next block, the spend
 *
 * A piece record is written once when planned, again before each upload (`uploading`: the intent),
 * once the primary provider has the bytes (its PieceCID and layout, before any commit) and after the
 * upload (its copies). A restart finds the copies of every piece whose upload was recorded; one killed
 * between a provider's commit and that record finds them on chain (`uploading` set: the data sets
 * holding the PieceCID are asked before any upload).
 */
import { type Database, type Room, readKeys, readValues } from '../../db.ts'
import type { FocCopy } from './service.ts'

const SEP = '\x00'

export interface PlannedFile {
  cid: string
  size: number
  mirror: string
  path: string
}

/** A file split across pieces: blocks [from, to) of its DAG (depth first) are in this part. */
export interface PiecePart {
  index: number
  of: number
  from: number
  to: number
}

export interface PieceCopy extends FocCopy {
  /** Epoch ms of the upload. */
  since: number
  /**
   * Its proof was overdue at the last check: not counted, kept (it holds the piece, and may prove
   * again), and its provider is not asked for another copy of this piece.
   */
  overdue?: boolean
}

export interface PieceRecord {
  key: string
  files: PlannedFile[]
  part?: PiecePart
  /** Known once uploaded to a primary provider (or computed from the CAR: the same every time). */
  pieceCid?: string
  /**
   * Epoch ms an upload began whose result is not recorded yet: it may have been committed (a kill,
   * a timeout after the commit), so the chain is asked for the piece before uploading it again.
   */
  uploading?: number
  /** CAR bytes of the piece. */
  size?: number
  /** Per file CID: [offset, length] of its blocks inside the piece's CAR. */
  ranges?: Record<string, [number, number]>
  copies: PieceCopy[]
  /** Providers that failed this piece lately (a failed pull, a data set that ended), for the audit. */
  failed?: { providerId: string; error: string; at: number }[]
}

export interface OtherPiece {
  cid: string
  dataSetId: string
  pieceId: string
  pieceCid: string
  block: string
}

export class FilecoinRecords {
  readonly #db: Database
  readonly #pieces
  readonly #files
  readonly #others
  readonly #meta

  constructor(db: Database) {
    this.#db = db
    const room = db.sublevel<string, unknown>('replicator', { valueEncoding: 'json' })
    this.#pieces = room.sublevel<string, PieceRecord>('fc-pieces', { valueEncoding: 'json' })
    this.#files = room.sublevel<string, string>('fc-files', { valueEncoding: 'json' })
    this.#others = room.sublevel<string, OtherPiece>('fc-others', { valueEncoding: 'json' })
    this.#meta = room.sublevel<string, string>('fc-meta', { valueEncoding: 'json' })
  }

  piece(key: string): Promise<PieceRecord | undefined> {
    return this.#pieces.get(key)
  }

  /** Writes planned pieces and their file index in one batch. */
  async plan(pieces: PieceRecord[]): Promise<void> {
    const batch = this.#db.batch()
    for (const p of pieces) {
      batch.put(p.key, p, { sublevel: this.#pieces as never })
      for (const f of p.files) batch.put(`${f.cid}${SEP}${p.key}`, '', { sublevel: this.#files as never })
    }
    await batch.write()
  }

  /**
   * Takes `file` out of `piece` (on no provider yet) into a piece of its own, `p:<cid>:alone`, in one
   * batch; returns what is left, to be packed again (its PieceCID and layout change).
   */
  async setApart(piece: PieceRecord, file: PlannedFile): Promise<PieceRecord> {
    const rest: PieceRecord = {
      key: piece.key,
      files: piece.files.filter((f) => f.cid !== file.cid),
      copies: [],
      ...(piece.failed ? { failed: piece.failed } : {}),
    }
    const alone: PieceRecord = { key: `p:${file.cid}:alone`, files: [file], copies: [] }
    const batch = this.#db.batch()
    batch.put(rest.key, rest, { sublevel: this.#pieces as never })
    batch.del(`${file.cid}${SEP}${piece.key}`, { sublevel: this.#files as never })
    batch.put(alone.key, alone, { sublevel: this.#pieces as never })
    batch.put(`${file.cid}${SEP}${alone.key}`, '', { sublevel: this.#files as never })
    await batch.write()
    return rest
  }

  async putPiece(p: PieceRecord): Promise<void> {
    await this.#pieces.put(p.key, p)
  }

  /** Keys of the pieces holding (part of) `cid`. */
  async piecesOf(cid: string): Promise<string[]> {
    const keys = await readKeys(this.#files as unknown as Room<string>, {
      gte: `${cid}${SEP}`,
      lt: `${cid}\x01`,
    })
    return keys.map((k) => k.slice(k.indexOf(SEP) + 1))
  }

  async allPieces(): Promise<PieceRecord[]> {
    return readValues(this.#pieces as unknown as Room<PieceRecord>)
  }

  async putOthers(list: OtherPiece[], nextBlock: bigint): Promise<void> {
    const batch = this.#db.batch()
    for (const o of list)
      batch.put(`${o.cid}${SEP}${o.dataSetId}${SEP}${o.pieceId}`, o, { sublevel: this.#others as never })
    batch.put('scan-next-block', nextBlock.toString(), { sublevel: this.#meta as never })
    await batch.write()
  }

  othersOf(cid: string): Promise<OtherPiece[]> {
    return readValues(this.#others as unknown as Room<OtherPiece>, { gte: `${cid}${SEP}`, lt: `${cid}\x01` })
  }

  async scanNextBlock(): Promise<bigint | undefined> {
    const v = await this.#meta.get('scan-next-block')
    return v === undefined ? undefined : BigInt(v)
  }

  async meta(name: string): Promise<string | undefined> {
    return this.#meta.get(name)
  }

  async putMeta(entries: Record<string, string>): Promise<void> {
    const batch = this.#db.batch()
    for (const [k, v] of Object.entries(entries)) batch.put(k, v, { sublevel: this.#meta as never })
    await batch.write()
  }
}
