/**
 * The one file that speaks to Filecoin Onchain Cloud's SDK (`@filoz/synapse-sdk` 0.41, its
 * `@filoz/synapse-core` and `viem` 2). Everything else in cidmirror uses `FocService`: a newer SDK is a
 * change here only. The key given here stays inside the viem account; no method returns or logs it.
 */
import {
  dataSetLive,
  findPieceIdsByCid,
  getDataSetStorageProvider,
  getNextChallengeEpoch,
} from '@filoz/synapse-core/pdp-verifier'
import * as Piece from '@filoz/synapse-core/piece'
import { fromSecp256k1 } from '@filoz/synapse-core/session-key'
import { getPDPProvider } from '@filoz/synapse-core/sp-registry'
import { calibration, mainnet, SIZE_CONSTANTS, Synapse } from '@filoz/synapse-sdk'
import { CID } from 'multiformats/cid'
import { sha256 } from 'multiformats/hashes/sha2'
import { type Address, createPublicClient, custom, type Hex, http, parseEventLogs } from 'viem'
import { privateKeyToAccount } from 'viem/accounts'
import type {
  FocCopy,
  FocCopyStatus,
  FocDataSet,
  FocPieceAdded,
  FocQuote,
  FocService,
  FocUploadOptions,
  FocUploadResult,
  FocWallet,
} from './service.ts'

export type FocNetwork = 'mainnet' | 'calibration'

export interface SynapseServiceOptions {
  network: FocNetwork
  /** JSON-RPC endpoint; the network's default when undefined. */
  rpc?: string
  /** The wallet's private key (0x + 64 hex). Kept in the viem account only. */
  privateKey?: string
  /**
   * Or a session key (FOC's session key registry), authorised by `wallet`: the daemon signs uploads with
   * it and never holds the wallet's key (deposits and approvals stay with the wallet's owner).
   */
  sessionKey?: { privateKey: string; wallet: string }
  /** Data set metadata `source` (FOC groups a client's data sets by it). */
  source: string
}

/** FOC epochs are 30 s. */
const EPOCH_MS = 30_000
const MAX_BLOCK = 2 * 1024 * 1024

const str = (v: bigint | number): string => v.toString()

export class SynapseService implements FocService {
  readonly network: FocNetwork
  readonly source: string
  readonly address: string
  readonly maxUploadSize = SIZE_CONSTANTS.MAX_UPLOAD_SIZE
  readonly minUploadSize = SIZE_CONSTANTS.MIN_UPLOAD_SIZE
  readonly #synapse: Synapse
  readonly #chain: typeof calibration
  readonly #client
  #pdpConfig: Promise<{ maxProvingPeriod: bigint; challengeWindowSize: bigint }> | undefined
  readonly #providers = new Map<string, Promise<string | undefined>>()

  /** Opens the service; with a session key, after reading its permissions from the chain. */
  static async open(opts: SynapseServiceOptions): Promise<SynapseService> {
    const chain = opts.network === 'mainnet' ? (mainnet as typeof calibration) : calibration
    const transport = http(opts.rpc)
    if (opts.sessionKey) {
      const wallet = opts.sessionKey.wallet as Address
      const sessionKey = fromSecp256k1({
        privateKey: opts.sessionKey.privateKey as Hex,
        root: wallet,
        chain,
        transport,
      })
      await sessionKey.syncExpirations()
      const reads = createPublicClient({ chain, transport })
      const synapse = Synapse.create({
        // The wallet is an address only here: its key is elsewhere; reads go through a custom transport.
        account: wallet,
        chain,
        transport: custom({ request: (args) => reads.request(args as never) }),
        sessionKey,
        source: opts.source,
        withCDN: false,
      })
      return new SynapseService(opts, chain, transport, synapse, wallet)
    }
    if (!opts.privateKey) throw new TypeError('a private key or a session key is needed')
    const account = privateKeyToAccount(opts.privateKey as Hex)
    const synapse = Synapse.create({ account, chain, transport, source: opts.source, withCDN: false })
    return new SynapseService(opts, chain, transport, synapse, account.address)
  }

  private constructor(
    opts: SynapseServiceOptions,
    chain: typeof calibration,
    transport: ReturnType<typeof http>,
    synapse: Synapse,
    address: string,
  ) {
    this.network = opts.network
    this.source = opts.source
    this.#chain = chain
    this.#synapse = synapse
    this.address = address
    this.#client = createPublicClient({ chain, transport })
  }

  async upload(data: ReadableStream<Uint8Array>, o: FocUploadOptions): Promise<FocUploadResult> {
    const dataSets = o.dataSetIds?.map(BigInt)
    const r = await this.#synapse.storage.upload(data, {
      ...(dataSets && dataSets.length > 0
        ? { dataSetIds: dataSets }
        : {
            copies: o.copies,
            ...(o.excludeProviderIds?.length ? { excludeProviderIds: o.excludeProviderIds.map(BigInt) } : {}),
          }),
      metadata: o.metadata,
      pieceMetadata: o.pieceMetadata,
      ...(o.pieceCid ? { pieceCid: Piece.parse(o.pieceCid) } : {}),
      ...(o.onPieceCid
        ? {
            callbacks: {
              onStored: (_: bigint, pieceCid: { toString(): string }) => o.onPieceCid!(pieceCid.toString()),
            },
          }
        : {}),
      ...(o.signal ? { signal: o.signal } : {}),
    })
    return {
      pieceCid: r.pieceCid.toString(),
      size: r.size,
      complete: r.complete,
      copies: r.copies.map((c) => ({
        providerId: str(c.providerId),
        // The SDK gives `<serviceURL>/piece/<pieceCid>`.
        serviceURL: c.retrievalUrl.replace(/\/piece\/[^/]+$/, ''),
        dataSetId: str(c.dataSetId),
        pieceId: str(c.pieceId),
      })),
      failed: r.failedAttempts.map((f) => ({ providerId: str(f.providerId), error: f.error })),
    }
  }

  async pieceCid(data: AsyncIterable<Uint8Array>): Promise<string> {
    return (await Piece.calculateFromIterable(data)).toString()
  }

  async findCopies(pieceCid: string): Promise<FocCopy[]> {
    const piece = CID.parse(pieceCid) as unknown as Parameters<typeof findPieceIdsByCid>[1]['pieceCid']
    const out: FocCopy[] = []
    for (const d of await this.#synapse.storage.findDataSets()) {
      if (!d.isLive || d.metadata.source !== this.source) continue
      const dataSetId = d.pdpVerifierDataSetId
      const [id] = await findPieceIdsByCid(this.#client, {
        dataSetId,
        pieceCid: piece,
        startPieceId: 0n,
        limit: 1n,
      })
      if (id === undefined) continue
      out.push({
        providerId: str(d.providerId),
        serviceURL: (await this.#serviceURL(d.providerId)) ?? '',
        dataSetId: str(dataSetId),
        pieceId: str(id),
      })
    }
    return out
  }

  async quote(bytes: number, copies: number): Promise<FocQuote> {
    const c = await this.#synapse.storage.getUploadCosts({ dataSize: BigInt(bytes), withCDN: false })
    const n = BigInt(Math.max(1, copies))
    return { perMonth: c.rate.perMonth * n, depositNeeded: c.depositNeeded * n }
  }

  #config(): Promise<{ maxProvingPeriod: bigint; challengeWindowSize: bigint }> {
    this.#pdpConfig ??= this.#client
      .readContract({
        address: this.#chain.contracts.fwssView.address,
        abi: this.#chain.contracts.fwssView.abi,
        functionName: 'getPDPConfig',
      })
      .then(([maxProvingPeriod, challengeWindowSize]) => ({ maxProvingPeriod, challengeWindowSize }))
      .catch((err) => {
        this.#pdpConfig = undefined
        throw err
      })
    return this.#pdpConfig
  }

  #serviceURL(providerId: bigint): Promise<string | undefined> {
    const key = str(providerId)
    let p = this.#providers.get(key)
    if (!p) {
      p = getPDPProvider(this.#client, { providerId })
        .then((info) => info?.pdp.serviceURL)
        .catch((err) => {
          this.#providers.delete(key)
          throw err
        })
      this.#providers.set(key, p)
    }
    return p
  }

  async copyStatus(dataSetId: string, pieceCid: string): Promise<FocCopyStatus> {
    const id = BigInt(dataSetId)
    const live = await dataSetLive(this.#client, { dataSetId: id })
    if (!live) return { dataSetLive: false, pieceLive: false, proofOverdue: false }
    const piece = CID.parse(pieceCid) as unknown as Parameters<typeof findPieceIdsByCid>[1]['pieceCid']
    const [ids, next, epoch, config, sp] = await Promise.all([
      findPieceIdsByCid(this.#client, { dataSetId: id, pieceCid: piece, startPieceId: 0n, limit: 1n }),
      getNextChallengeEpoch(this.#client, { dataSetId: id }),
      this.#client.getBlockNumber({ cacheTime: 0 }),
      this.#config(),
      getDataSetStorageProvider(this.#client, { dataSetId: id }),
    ])
    const out: FocCopyStatus = { dataSetLive: true, pieceLive: ids.length > 0, proofOverdue: false }
    if (ids[0] !== undefined) out.pieceId = str(ids[0])
    const genesis = this.#chain.genesisTimestamp * 1000
    if (next !== null) {
      const deadline = next + config.challengeWindowSize
      out.nextProofDue = genesis + Number(deadline) * EPOCH_MS
      out.proofOverdue = epoch >= deadline
      const last = Number(next) - Number(config.maxProvingPeriod)
      if (last > 0) out.lastProven = genesis + last * EPOCH_MS
    }
    const address = sp?.[0]
    if (address) {
      const registry =
        (await this.#synapse.providers.getProviderIdByAddress({ address }).catch(() => 0n)) ?? 0n
      if (registry > 0n) {
        out.providerId = str(registry)
        const url = await this.#serviceURL(registry)
        if (url) out.serviceURL = url
      }
    }
    return out
  }

  blockNumber(): Promise<bigint> {
    return this.#client.getBlockNumber({ cacheTime: 0 })
  }

  async piecesAdded(fromBlock: bigint, toBlock: bigint): Promise<FocPieceAdded[]> {
    const abi = this.#chain.contracts.fwss.abi
    const logs = await this.#client.getLogs({
      address: this.#chain.contracts.fwss.address,
      event: abi.find((e) => e.type === 'event' && e.name === 'PieceAdded') as Extract<
        (typeof abi)[number],
        { type: 'event'; name: 'PieceAdded' }
      >,
      fromBlock,
      toBlock,
    })
    const parsed = parseEventLogs({ abi, logs, eventName: 'PieceAdded' })
    return parsed.map((l) => {
      const a = l.args as {
        dataSetId: bigint
        pieceId: bigint
        pieceCid: { data: Hex }
        keys: readonly string[]
        values: readonly string[]
      }
      const metadata: Record<string, string> = {}
      a.keys.forEach((k, i) => {
        metadata[k] = a.values[i] ?? ''
      })
      return {
        block: l.blockNumber ?? 0n,
        dataSetId: str(a.dataSetId),
        pieceId: str(a.pieceId),
        pieceCid: CID.decode(Buffer.from(a.pieceCid.data.slice(2), 'hex')).toString(),
        metadata,
      }
    })
  }

  async probe(
    serviceURL: string,
    cid: string,
    signal?: AbortSignal,
  ): Promise<{ ok: boolean; reason?: string }> {
    let parsed: CID
    try {
      parsed = CID.parse(cid)
    } catch {
      return { ok: false, reason: 'not a CID' }
    }
    if (parsed.multihash.code !== sha256.code) return { ok: false, reason: 'only sha2-256 blocks are probed' }
    try {
      const res = await fetch(`${serviceURL.replace(/\/+$/, '')}/ipfs/${cid}?format=raw`, {
        headers: { accept: 'application/vnd.ipld.raw' },
        signal: AbortSignal.any([...(signal ? [signal] : []), AbortSignal.timeout(30_000)]),
      })
      if (res.status !== 200) return { ok: false, reason: `HTTP ${res.status}` }
      const bytes = new Uint8Array(await res.arrayBuffer())
      if (bytes.length > MAX_BLOCK) return { ok: false, reason: 'block too large' }
      const digest = await sha256.digest(bytes)
      return Buffer.compare(digest.digest, parsed.multihash.digest) === 0
        ? { ok: true }
        : { ok: false, reason: 'bytes do not hash to the CID' }
    } catch (err) {
      return { ok: false, reason: (err as Error).message }
    }
  }

  async wallet(): Promise<FocWallet> {
    const p = this.#synapse.payments
    const [fil, usdfc, info] = await Promise.all([
      p.walletBalance({ token: 'FIL' }),
      p.walletBalance(),
      p.accountInfo(),
    ])
    return {
      address: this.address,
      network: this.network,
      fil,
      usdfc,
      deposited: info.funds,
      available: info.availableFunds,
    }
  }

  async dataSets(): Promise<FocDataSet[]> {
    const sets = await this.#synapse.storage.findDataSets()
    return sets.map((d) => ({
      dataSetId: str(d.pdpVerifierDataSetId),
      providerId: str(d.providerId),
      live: d.isLive,
      activePieces: Number(d.activePieceCount),
      metadata: d.metadata,
    }))
  }
}
