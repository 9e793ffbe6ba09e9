/**
 * What the Filecoin target, counter, packer and commands need of Filecoin Onchain Cloud: a small
 * interface of our own, so the SDK (`@filoz/synapse-sdk`) is behind one adapter (`synapse.ts`) and a
 * newer SDK is a one-file change. Amounts are USDFC in base units (18 decimals), ids are decimal strings.
 */

/** One provider's copy of a piece: its data set and the piece's id in it. */
export interface FocCopy {
  providerId: string
  /** The provider's service URL (`/piece/{pieceCid}`, `/ipfs/{cid}`). */
  serviceURL: string
  dataSetId: string
  pieceId: string
}

export interface FocUploadResult {
  pieceCid: string
  size: number
  /** Every requested copy was committed. */
  complete: boolean
  copies: FocCopy[]
  /** Providers that were tried and failed (the SDK's `failedAttempts`). */
  failed: { providerId: string; error: string }[]
}

export interface FocUploadOptions {
  /** Copies wanted, each on a distinct provider. */
  copies: number
  /** Providers that already hold the piece (or failed it): not asked again. */
  excludeProviderIds?: string[]
  /** Put the copies in these data sets (the other pieces of a split file): one per provider. */
  dataSetIds?: string[]
  /** Data set metadata (a new data set gets it; an existing one is chosen by it). */
  metadata: Record<string, string>
  pieceMetadata: Record<string, string>
  /** The piece CID, computed before (`pieceCid`): the service does not compute it again. */
  pieceCid?: string
  /** Told the piece CID once the primary provider has the bytes, before any copy is committed. */
  onPieceCid?: (pieceCid: string) => void
  signal?: AbortSignal
}

/** Whether one copy is live and proving (PDPVerifier and FWSS views, the SDK's `pieceStatus` rules). */
export interface FocCopyStatus {
  /** The data set exists and is live (not terminated, not deleted). */
  dataSetLive: boolean
  /** The piece is in the data set (not removed). */
  pieceLive: boolean
  pieceId?: string
  /** The proving deadline has passed without a proof. */
  proofOverdue: boolean
  /** Epoch ms, when known. */
  lastProven?: number
  nextProofDue?: number
  /** The data set's storage provider id (0 when unknown). */
  providerId?: string
  serviceURL?: string
}

/** A piece added to some data set (FWSS `PieceAdded`), with its metadata. */
export interface FocPieceAdded {
  block: bigint
  dataSetId: string
  pieceId: string
  pieceCid: string
  metadata: Record<string, string>
}

export interface FocQuote {
  /** Storage rate of the bytes for the copies asked, per month. */
  perMonth: bigint
  /** Deposit the account still needs before storing (0 when funded). */
  depositNeeded: bigint
}

export interface FocDataSet {
  dataSetId: string
  providerId: string
  live: boolean
  activePieces: number
  metadata: Record<string, string>
}

export interface FocWallet {
  address: string
  network: string
  /** FIL (gas) in attoFIL. */
  fil: bigint
  /** USDFC in the wallet. */
  usdfc: bigint
  /** USDFC deposited in Filecoin Pay and still available. */
  deposited: bigint
  available: bigint
}

export interface FocService {
  readonly network: string
  /** Data set metadata `source`: FOC keeps a client's data sets apart by it. */
  readonly source: string
  /** The wallet's address (never its key). */
  readonly address: string
  /** Largest and smallest piece the service takes (bytes). */
  readonly maxUploadSize: number
  readonly minUploadSize: number
  upload(data: ReadableStream<Uint8Array>, opts: FocUploadOptions): Promise<FocUploadResult>
  /** The piece CID (CommP) of a piece's bytes, computed here without sending them. */
  pieceCid(data: AsyncIterable<Uint8Array>): Promise<string>
  /**
   * The copies of `pieceCid` in this wallet's live data sets of this `source`, read from the chain:
   * asked before uploading a piece whose earlier upload may have been committed without our record.
   */
  findCopies(pieceCid: string): Promise<FocCopy[]>
  quote(bytes: number, copies: number): Promise<FocQuote>
  copyStatus(dataSetId: string, pieceCid: string): Promise<FocCopyStatus>
  /** The latest block number. */
  blockNumber(): Promise<bigint>
  /** `PieceAdded` events of the FWSS contract in [fromBlock, toBlock]. */
  piecesAdded(fromBlock: bigint, toBlock: bigint): Promise<FocPieceAdded[]>
  /** The block `cid` from a provider's trustless gateway, checked against the CID. */
  probe(serviceURL: string, cid: string, signal?: AbortSignal): Promise<{ ok: boolean; reason?: string }>
  wallet(): Promise<FocWallet>
  dataSets(): Promise<FocDataSet[]>
}
