/**
 * Filecoin Onchain Cloud as a storage target and a copy counter (scope `entity`: one item per file
 * CID). Files are packed into CAR pieces (`packer.ts`) when a scan commits; storing a file uploads the
 * pieces that hold it with the copies still missing, on providers that do not hold them yet. A copy
 * counts while its data set is live, the piece is in it and no proof is overdue; a copy that stops
 * proving is dropped, and the replicator stores the file again elsewhere. Copies others made are found
 * through the chain's `PieceAdded` events (their `ipfsRootCID`), checked the same way, and verified by
 * a retrieval probe of the block from the provider; without a probe that succeeds they stay announced.
 */

import { CID } from 'multiformats/cid'
import type { Logger } from 'pino'
import type { Database } from '../../db.ts'
import type { CopyRecord } from '../../index/index.ts'
import { FilecoinBlockUnavailableError, FilecoinUploadError } from '../errors.ts'
import type { ReplicationItem, StorageTarget, TargetCallOptions } from '../target.ts'
import type { FileBytes } from './file-leaves.ts'
import {
  type BlockSource,
  carBytesOfFile,
  type GetBlock,
  type PackOptions,
  type PieceLayout,
  pieceChunks,
  pieceStream,
  planPieces,
} from './packer.ts'
import { FilecoinRecords, type PieceCopy, type PieceRecord, type PlannedFile } from './records.ts'
import type { FocCopy, FocCopyStatus, FocService } from './service.ts'
import { type SpendCap, SpendLedger } from './spend.ts'

export interface FilecoinTargetOptions {
  name: string
  service: FocService
  db: Database
  /** Any block of the mirror (the index's BlockReader). */
  blocks: GetBlock
  /**
   * The bytes of a file no longer on this disk (evicted, or deleted before it was stored), when a
   * reader runs (the daemon's: the gateway's fetch-back, which starts after the replicator).
   */
  fileBytes?: () => FileBytes | undefined
  /** Copies wanted on distinct providers. */
  copies: number
  pack?: Partial<PackOptions>
  cap?: SpendCap
  /** Uploads and checks at once. */
  concurrency?: number
  /** A piece's status read from the chain is reused this long (ms) across the files it holds. */
  statusTtlMs?: number
  /** The `PieceAdded` scan runs at most this often (ms); 0: at every check. */
  scanEveryMs?: number
  /** First block of the first scan; the chain's head when undefined (only what comes after). */
  scanFromBlock?: bigint
  /** Blocks asked of `eth_getLogs` at once. */
  scanBatch?: number
  log?: Logger
  now?: () => number
}

export const DEFAULT_PACK: Omit<PackOptions, 'maxPieceBytes'> = {
  smallFile: 64 * 1024 * 1024,
  pieceTarget: 256 * 1024 * 1024,
}

export interface FilecoinStats {
  pieces: number
  /** Live copies of pieces recorded (one per piece and provider). */
  provenCopies: number
  /** Copies whose proof was overdue at their last check. */
  overdueProofs: number
  /** CAR bytes stored, summed over copies. */
  bytesStored: number
}

const holderOf = (c: { providerId: string; dataSetId: string }): string =>
  `filecoin:${c.providerId}/${c.dataSetId}`

export class FilecoinTarget implements StorageTarget {
  readonly kind = 'filecoin' as const
  readonly scope = 'entity' as const
  readonly local = false
  readonly name: string
  readonly concurrency: number
  readonly copies: number
  readonly records: FilecoinRecords
  readonly spend: SpendLedger
  readonly service: FocService
  readonly #o: FilecoinTargetOptions
  readonly #pack: PackOptions
  readonly #now: () => number
  readonly #uploads = new Map<string, Promise<void>>()
  readonly #status = new Map<string, { at: number; p: Promise<FocCopyStatus> }>()
  #scan: Promise<void> | undefined
  #scannedAt = 0

  constructor(o: FilecoinTargetOptions) {
    this.#o = o
    this.name = o.name
    this.service = o.service
    this.concurrency = o.concurrency ?? 2
    this.copies = o.copies
    this.records = new FilecoinRecords(o.db)
    this.#now = o.now ?? Date.now
    this.spend = new SpendLedger(this.records, o.cap ?? {}, this.#now)
    this.#pack = {
      ...DEFAULT_PACK,
      ...o.pack,
      maxPieceBytes: Math.min(o.pack?.maxPieceBytes ?? o.service.maxUploadSize, o.service.maxUploadSize),
    }
  }

  /** Plans pieces for the files not in any piece yet; returns how many pieces were planned. */
  async plan(files: PlannedFile[]): Promise<number> {
    const fresh: PlannedFile[] = []
    for (const f of files) if ((await this.records.piecesOf(f.cid)).length === 0) fresh.push(f)
    const pieces = planPieces(fresh, this.#pack)
    await this.records.plan(pieces)
    return pieces.length
  }

  async #pieces(cid: string): Promise<PieceRecord[]> {
    const out: PieceRecord[] = []
    for (const k of await this.records.piecesOf(cid)) {
      const p = await this.records.piece(k)
      if (p) out.push(p)
    }
    // Parts in order.
    return out.sort((a, b) => (a.part?.index ?? 0) - (b.part?.index ?? 0))
  }

  #copyStatus(dataSetId: string, pieceCid: string): Promise<FocCopyStatus> {
    const key = `${dataSetId}/${pieceCid}`
    const ttl = this.#o.statusTtlMs ?? 60_000
    const hit = this.#status.get(key)
    if (hit && this.#now() - hit.at < ttl) return hit.p
    const p = this.service.copyStatus(dataSetId, pieceCid)
    this.#status.set(key, { at: this.#now(), p })
    p.catch(() => this.#status.delete(key))
    return p
  }

  /**
   * Checks each recorded copy of a piece on chain: one whose data set ended or whose piece was removed
   * is dropped from the record; one whose proof is overdue is marked (not counted) until it proves again.
   */
  async #checkPiece(piece: PieceRecord): Promise<{ live: PieceCopy[]; status: Map<string, FocCopyStatus> }> {
    const status = new Map<string, FocCopyStatus>()
    if (!piece.pieceCid) return { live: [], status }
    const live: PieceCopy[] = []
    const dropped: { copy: PieceCopy; why: string }[] = []
    const overdue = new Map<string, boolean>()
    for (const c of piece.copies) {
      const s = await this.#copyStatus(c.dataSetId, piece.pieceCid)
      status.set(c.dataSetId, s)
      const why = !s.dataSetLive
        ? 'data set terminated or not live'
        : !s.pieceLive
          ? 'piece no longer in the data set'
          : undefined
      if (why) dropped.push({ copy: c, why })
      else {
        if (s.proofOverdue !== (c.overdue ?? false)) overdue.set(c.dataSetId, s.proofOverdue)
        if (!s.proofOverdue) live.push(c)
      }
    }
    if (dropped.length > 0 || overdue.size > 0) {
      const fresh = (await this.records.piece(piece.key)) ?? piece
      const gone = new Set(dropped.map((d) => d.copy.dataSetId))
      fresh.copies = fresh.copies.filter((c) => !gone.has(c.dataSetId))
      for (const c of fresh.copies) {
        const o = overdue.get(c.dataSetId)
        if (o === true) c.overdue = true
        else if (o === false) delete c.overdue
      }
      fresh.failed = [
        ...(fresh.failed ?? []),
        ...dropped.map((d) => ({ providerId: d.copy.providerId, error: d.why, at: this.#now() })),
      ].slice(-16)
      await this.records.putPiece(fresh)
      for (const d of dropped)
        this.#o.log?.warn(
          {
            target: this.name,
            piece: piece.pieceCid,
            dataSetId: d.copy.dataSetId,
            provider: d.copy.providerId,
          },
          `filecoin copy dropped: ${d.why}`,
        )
      for (const [dataSetId, o] of overdue)
        this.#o.log?.warn(
          { target: this.name, piece: piece.pieceCid, dataSetId },
          o ? 'filecoin copy not counted: proof overdue' : 'filecoin copy proving again',
        )
      piece.copies = fresh.copies
    }
    return { live, status }
  }

  async #maybeScan(): Promise<void> {
    const every = this.#o.scanEveryMs ?? 10 * 60_000
    if (this.#scan) return this.#scan
    if (this.#scannedAt !== 0 && this.#now() - this.#scannedAt < every) return
    this.#scan = this.scanEvents()
      .then(() => {
        this.#scannedAt = this.#now()
      })
      .finally(() => {
        this.#scan = undefined
      })
    return this.#scan
  }

  /**
   * Reads `PieceAdded` events from the saved block to the chain's head (nothing on chain maps a CID to
   * all data sets, so the events are the index) and keeps those carrying an `ipfsRootCID`.
   */
  async scanEvents(): Promise<number> {
    const head = await this.service.blockNumber()
    let from = (await this.records.scanNextBlock()) ?? this.#o.scanFromBlock ?? head
    const batch = BigInt(this.#o.scanBatch ?? 2000)
    let found = 0
    while (from <= head) {
      const to = from + batch - 1n < head ? from + batch - 1n : head
      const events = await this.service.piecesAdded(from, to)
      const others = events
        .filter((e) => e.metadata.ipfsRootCID)
        .map((e) => ({
          cid: canonical(e.metadata.ipfsRootCID!),
          dataSetId: e.dataSetId,
          pieceId: e.pieceId,
          pieceCid: e.pieceCid,
          block: e.block.toString(),
        }))
      await this.records.putOthers(others, to + 1n)
      found += others.length
      from = to + 1n
    }
    return found
  }

  async check(item: ReplicationItem, opts: TargetCallOptions): Promise<CopyRecord[]> {
    const pieces = await this.#pieces(item.cid)
    const now = this.#now()
    // Holder -> the pieces (parts) it holds live, with their status.
    const held = new Map<string, { piece: PieceRecord; copy: PieceCopy; status: FocCopyStatus }[]>()
    const own = new Set<string>()
    for (let piece of pieces) {
      opts.signal.throwIfAborted()
      // Not while this process uploads it (its own record is on the way).
      if (!this.#uploads.has(piece.key))
        piece = await this.#recover(piece, opts).catch((err: unknown) => {
          // Its bytes cannot be read to compute its PieceCID: the store says so (the item waits).
          if (err instanceof FilecoinBlockUnavailableError) return piece
          throw err
        })
      const { live, status } = await this.#checkPiece(piece)
      for (const c of live) {
        own.add(`${c.dataSetId}/${c.pieceId}`)
        const h = holderOf(c)
        const list = held.get(h) ?? []
        list.push({ piece, copy: c, status: status.get(c.dataSetId)! })
        held.set(h, list)
      }
    }
    const out: CopyRecord[] = []
    const parts = pieces.length
    for (const [holder, list] of held) {
      // A split file counts at a holder only when every part is there.
      if (list.length < parts) continue
      const first = list[0]!
      const range = first.piece.ranges?.[item.cid]
      const base = first.copy.serviceURL.replace(/\/+$/, '')
      const detail: Record<string, string | number | boolean> = {
        dataSetId: first.copy.dataSetId,
        pieceId: first.copy.pieceId,
        pieceCid: first.piece.pieceCid!,
        provider: first.copy.providerId,
      }
      if (first.status.lastProven) detail.lastProven = new Date(first.status.lastProven).toISOString()
      if (first.status.nextProofDue) detail.nextProofDue = new Date(first.status.nextProofDue).toISOString()
      // A file in one piece: its byte range there, for a ranged read of `/piece/` (the gateway's
      // fetch-back). A split file's ranges are per part (`partRanges`); its readers use `/ipfs/`.
      if (range && parts === 1) {
        detail.carOffset = range[0]
        detail.carLength = range[1]
      }
      if (parts > 1) {
        detail.partRanges = list.map((l) => (l.piece.ranges?.[item.cid] ?? []).join('+')).join(',')
        detail.parts = parts
        detail.pieceCids = list.map((l) => l.piece.pieceCid).join(',')
        detail.pieceIds = list.map((l) => l.copy.pieceId).join(',')
      }
      out.push({
        cid: item.cid,
        holder,
        kind: 'filecoin',
        how: 'pdp',
        status: 'verified',
        scope: 'entity',
        local: false,
        checkedAt: now,
        since: Math.min(...list.map((l) => l.copy.since)),
        retrieval: [...list.map((l) => `${base}/piece/${l.piece.pieceCid}`), `${base}/ipfs/${item.cid}`],
        detail,
      })
    }
    out.push(...(await this.#others(item, own, opts)))
    return out
  }

  async #others(item: ReplicationItem, own: Set<string>, opts: TargetCallOptions): Promise<CopyRecord[]> {
    try {
      await this.#maybeScan()
    } catch (err) {
      this.#o.log?.warn({ target: this.name, err: (err as Error).message }, 'filecoin PieceAdded scan failed')
    }
    const out: CopyRecord[] = []
    const now = this.#now()
    for (const o of await this.records.othersOf(canonical(item.cid))) {
      if (own.has(`${o.dataSetId}/${o.pieceId}`)) continue
      const s = await this.#copyStatus(o.dataSetId, o.pieceCid)
      if (!s.dataSetLive || !s.pieceLive || s.proofOverdue || !s.providerId) continue
      const base = (s.serviceURL ?? '').replace(/\/+$/, '')
      const probe = base
        ? await this.service.probe(base, item.cid, opts.signal)
        : { ok: false, reason: 'no service URL' }
      const detail: Record<string, string | number | boolean> = {
        dataSetId: o.dataSetId,
        pieceId: o.pieceId,
        pieceCid: o.pieceCid,
        provider: s.providerId,
        foundInBlock: o.block,
      }
      if (s.lastProven) detail.lastProven = new Date(s.lastProven).toISOString()
      if (s.nextProofDue) detail.nextProofDue = new Date(s.nextProofDue).toISOString()
      const rec: CopyRecord = {
        cid: item.cid,
        holder: holderOf({ providerId: s.providerId, dataSetId: o.dataSetId }),
        kind: 'filecoin',
        how: probe.ok ? 'pdp+retrieval-probe' : 'piece-added',
        status: probe.ok ? 'verified' : 'announced',
        scope: 'entity',
        local: false,
        checkedAt: now,
        since: now,
        detail,
        ...(base ? { retrieval: [`${base}/piece/${o.pieceCid}`, `${base}/ipfs/${item.cid}`] } : {}),
        ...(probe.ok ? {} : { error: `retrieval probe: ${probe.reason}` }),
      }
      out.push(rec)
    }
    return out
  }

  async store(item: ReplicationItem, opts: TargetCallOptions): Promise<CopyRecord[]> {
    let pieces = await this.#pieces(item.cid)
    if (pieces.length === 0) {
      await this.plan([{ cid: item.cid, size: item.bytes ?? 0, mirror: item.mirror ?? '', path: item.key }])
      pieces = await this.#pieces(item.cid)
    }
    const short: string[] = []
    let part0: PieceRecord | undefined
    const done = new Set<string>()
    // Twice at most: a concurrent upload of a shared piece may have set this file apart (setApart).
    for (let round = 0; round < 2 && pieces.some((p) => !done.has(p.key)); round++) {
      for (const piece of pieces) {
        if (done.has(piece.key)) continue
        opts.signal.throwIfAborted()
        const r = await this.#uploadOnce(piece, part0, opts)
        done.add(piece.key)
        if (r) short.push(r)
        if ((piece.part?.index ?? 0) === 0) part0 = (await this.records.piece(piece.key)) ?? piece
      }
      pieces = await this.#pieces(item.cid)
    }
    const got = await this.check(item, opts)
    if (short.length > 0) throw new FilecoinUploadError(`${this.name}: ${short.join('; ')}`)
    return got
  }

  /** One upload of a piece at a time, shared by the files it holds. */
  async #uploadOnce(
    piece: PieceRecord,
    part0: PieceRecord | undefined,
    opts: TargetCallOptions,
  ): Promise<string | undefined> {
    let short: string | undefined
    for (;;) {
      const running = this.#uploads.get(piece.key)
      if (!running) break
      await running.catch(() => undefined)
    }
    const run = (async () => {
      const fresh = (await this.records.piece(piece.key)) ?? piece
      short = await this.#upload(fresh, part0, opts)
    })()
    this.#uploads.set(piece.key, run)
    try {
      await run
    } finally {
      this.#uploads.delete(piece.key)
    }
    return short
  }

  /**
   * Uploads `piece`. A file of it whose bytes cannot be read (`FilecoinBlockUnavailableError`) makes
   * its item wait; while the piece is on no provider, that file is
   * set apart in a piece of its own and the rest goes on without it.
   */
  async #upload(
    piece: PieceRecord,
    part0: PieceRecord | undefined,
    opts: TargetCallOptions,
  ): Promise<string | undefined> {
    try {
      return await this.#uploadPiece(piece, part0, opts)
    } catch (err) {
      if (!(err instanceof FilecoinBlockUnavailableError)) throw err
      const gone = err
      const fresh = (await this.records.piece(piece.key)) ?? piece
      const file = fresh.files.find((f) => f.cid === gone.fileCid)
      if (!file || fresh.copies.length > 0 || fresh.files.length < 2 || fresh.part) throw gone
      const rest = await this.records.setApart(fresh, file)
      this.#o.log?.warn(
        { target: this.name, piece: piece.key, file: `${file.mirror}/${file.path}`, err: gone.message },
        'filecoin piece packed again without a file whose bytes cannot be read',
      )
      return this.#upload(rest, part0, opts)
    }
  }

  async #uploadPiece(
    piece: PieceRecord,
    part0: PieceRecord | undefined,
    opts: TargetCallOptions,
  ): Promise<string | undefined> {
    if (this.copies - piece.copies.filter((c) => !c.overdue).length <= 0) return undefined
    piece = await this.#recover(piece, opts)
    const missing = this.copies - piece.copies.filter((c) => !c.overdue).length
    if (missing <= 0) return undefined
    const what = pieceName(piece)
    // Later parts of a split file go to the data sets that hold its first part.
    let dataSetIds: string[] | undefined
    if (piece.part && piece.part.index > 0 && part0) {
      const holders = new Set(piece.copies.map((c) => c.providerId))
      dataSetIds = part0.copies
        .filter((c) => !c.overdue && !holders.has(c.providerId))
        .map((c) => c.dataSetId)
      if (dataSetIds.length === 0) return `${what}: its first part has no copy to join`
    }
    const bytes = piece.part
      ? Math.min(this.#pack.maxPieceBytes, carBytesOfFile(piece.files[0]!.size))
      : piece.files.reduce((a, f) => a + carBytesOfFile(f.size), 0)
    const copies = dataSetIds?.length ?? missing
    const cost = (await this.service.quote(bytes, copies)).perMonth
    await this.spend.reserve(cost, `${what} (${copies} ${copies === 1 ? 'copy' : 'copies'})`)
    let made = 0
    try {
      const started = this.#now()
      // The intent, before the first byte goes: after a kill from here on, the piece is looked up on
      // chain (`#recover`) before it is uploaded again.
      await this.records.putPiece({ ...piece, uploading: started })
      let unreadable: FilecoinBlockUnavailableError | undefined
      let noted: Promise<unknown> = Promise.resolve()
      const layout: PieceLayout = { size: 0, ranges: {} }
      const data = pieceStream(
        piece,
        this.#source(opts.signal),
        layout,
        this.service.minUploadSize,
        (err) => {
          if (err instanceof FilecoinBlockUnavailableError) unreadable = err
        },
      )
      const r = await this.service
        .upload(data, {
          copies,
          excludeProviderIds: [...new Set(piece.copies.map((c) => c.providerId))],
          ...(dataSetIds ? { dataSetIds } : {}),
          metadata: { withIPFSIndexing: '', source: this.service.source },
          pieceMetadata: { ipfsRootCID: piece.files[0]!.cid },
          // Known after a restart's lookup; else the service computes it as the bytes go.
          ...(piece.pieceCid ? { pieceCid: piece.pieceCid } : {}),
          // Kept at once (before the commits), so a restart need not compute it again.
          onPieceCid: (pieceCid) => {
            // The stream is read through by then: the layout is whole.
            const known = { pieceCid, size: layout.size, ranges: layout.ranges, uploading: started }
            noted = (async () => {
              const now = (await this.records.piece(piece.key)) ?? piece
              await this.records.putPiece({ ...now, ...known })
            })().catch(() => undefined)
          },
          signal: opts.signal,
        })
        .catch((err: unknown) => {
          // Ours, not the SDK's wrapping of it (its text, with our stack in it).
          throw unreadable ?? err
        })
        .finally(() => noted)
      made = r.copies.length
      const fresh = await this.#addCopies(
        { ...piece, pieceCid: r.pieceCid, size: layout.size, ranges: layout.ranges },
        r.copies,
        r.failed,
      )
      this.#o.log?.info(
        {
          target: this.name,
          piece: r.pieceCid,
          files: piece.files.length,
          bytes: fresh.size,
          copies: r.copies.map((c) => holderOf(c)),
          failed: r.failed,
          ms: this.#now() - started,
        },
        'filecoin piece stored',
      )
      if (!r.complete)
        return `${what}: ${r.copies.length} of ${copies} copies (${r.failed.map((f) => `provider ${f.providerId}: ${f.error}`).join(', ') || 'no provider answered'})`
      return undefined
    } finally {
      await this.spend.settle(cost, copies > 0 ? (cost * BigInt(made)) / BigInt(copies) : 0n)
    }
  }

  /**
   * An upload of `piece` began and its result was never recorded (a kill, or a timeout after a
   * provider's commit): its PieceCID (computed now from its blocks, a read of the CAR that sends
   * nothing, when that upload did not get to record it) is looked up in the wallet's data sets, and
   * the copies they hold are recorded as ours instead of paid for twice.
   */
  async #recover(piece: PieceRecord, opts: TargetCallOptions): Promise<PieceRecord> {
    if (piece.uploading === undefined) return piece
    opts.signal.throwIfAborted()
    if (!piece.pieceCid || !piece.ranges) {
      const layout: PieceLayout = { size: 0, ranges: {} }
      const chunks = pieceChunks(piece, this.#source(opts.signal), layout, this.service.minUploadSize)
      let pieceCid = piece.pieceCid
      if (pieceCid) for await (const _ of chunks);
      else pieceCid = await this.service.pieceCid(chunks)
      piece = { ...piece, pieceCid, size: layout.size, ranges: layout.ranges }
      await this.records.putPiece(piece)
    }
    const found = await this.service.findCopies(piece.pieceCid!)
    const fresh = await this.#addCopies(piece, found, [])
    if (fresh.copies.length > piece.copies.length)
      this.#o.log?.info(
        { target: this.name, piece: piece.pieceCid, copies: found.map((c) => holderOf(c)) },
        'filecoin piece found on chain from an upload not recorded: not uploaded again',
      )
    return fresh
  }

  /** Records `copies` (those not recorded yet) and `failed` in the piece, and ends its intent. */
  async #addCopies(
    piece: PieceRecord,
    copies: FocCopy[],
    failed: { providerId: string; error: string }[],
  ): Promise<PieceRecord> {
    const fresh = (await this.records.piece(piece.key)) ?? piece
    fresh.pieceCid = piece.pieceCid
    fresh.size = piece.size
    fresh.ranges = piece.ranges
    const now = this.#now()
    const have = new Set(fresh.copies.map((c) => c.dataSetId))
    for (const c of copies) if (!have.has(c.dataSetId)) fresh.copies.push({ ...c, since: now })
    if (failed.length > 0)
      fresh.failed = [...(fresh.failed ?? []), ...failed.map((f) => ({ ...f, at: now }))].slice(-16)
    delete fresh.uploading
    await this.records.putPiece(fresh)
    return fresh
  }

  #source(signal: AbortSignal): BlockSource {
    const bytes = this.#o.fileBytes?.()
    return { get: this.#o.blocks, ...(bytes ? { elsewhere: { bytes, signal } } : {}) }
  }

  /** Counts for `/metrics`. */
  async stats(): Promise<FilecoinStats> {
    const out: FilecoinStats = { pieces: 0, provenCopies: 0, overdueProofs: 0, bytesStored: 0 }
    for (const p of await this.records.allPieces()) {
      if (p.copies.length === 0) continue
      out.pieces++
      for (const c of p.copies) {
        if (c.overdue) out.overdueProofs++
        else out.provenCopies++
        out.bytesStored += p.size ?? 0
      }
    }
    return out
  }
}

function pieceName(p: PieceRecord): string {
  const f = p.files[0]!
  const name = `${f.mirror}/${f.path}`
  if (p.part) return `part ${p.part.index + 1} of ${p.part.of} of ${name}`
  return p.files.length === 1 ? name : `${name} and ${p.files.length - 1} more files`
}

/** CIDs compared in their CIDv1 base32 form (what the index keeps). */
function canonical(cid: string): string {
  try {
    return CID.parse(cid).toV1().toString()
  } catch {
    return cid
  }
}
