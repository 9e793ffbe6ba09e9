/**
 * A FAKE Filecoin Onchain Cloud for tests: the chain (JSON-RPC views of FWSS, PDPVerifier, the provider
 * registry, Filecoin Pay) and the PDP storage providers are JavaScript fakes built on
 * `@filoz/synapse-core/mocks`, served through `msw` (`setupServer({ onUnhandledRequest: 'error' })`, so
 * no request can reach a real network). The SDK that talks to them is the real `@filoz/synapse-sdk`.
 * Nothing here proves anything: there are no contracts, no proofs, no payments, no IPNI.
 *
 * State is plain JS: data sets (owner, provider, live, metadata, pieces), the head block, the next
 * challenge epoch per data set (a proof is overdue once the head passes it plus the challenge
 * window), and the bytes each provider received (so `/piece/` and `/ipfs/` serve them back).
 */
import * as Mocks from '@filoz/synapse-core/mocks'
import { calibration } from '@filoz/synapse-sdk'
import { CarBlockIterator } from '@ipld/car'
import { HttpResponse, http, passthrough } from 'msw'
import { setupServer } from 'msw/node'
import { CID } from 'multiformats/cid'
import {
  type Address,
  bytesToHex,
  decodeAbiParameters,
  encodeAbiParameters,
  encodeEventTopics,
  numberToBytes,
  numberToHex,
  stringToHex,
  toHex,
} from 'viem'
import type { Database } from '../../src/db.ts'
import { BlockReader } from '../../src/index/index.ts'
import { SynapseService } from '../../src/replicator/filecoin/synapse.ts'
import { FilecoinTarget, type FilecoinTargetOptions } from '../../src/replicator/index.ts'

export const RPC = 'https://api.calibration.node.glif.io/rpc/v1'
export const CLIENT_KEY = Mocks.PRIVATE_KEYS.key1
/** A session key, and the wallet (the mocks' client) said to have authorised it. */
export const SESSION_KEY = Mocks.PRIVATE_KEYS.key2
export const WALLET = Mocks.ADDRESSES.client1
const CHALLENGE_WINDOW = 60n
const PROVING_PERIOD = 2880n

export interface FakeProvider {
  id: bigint
  address: Address
  url: string
  /** Pulls (secondary copies) this provider refuses before it accepts again. */
  failPulls: number
  /** Uploads (as primary) received. */
  uploads: number
  pulls: number
  /** Bytes by piece CID. */
  pieces: Map<string, Uint8Array>
  /** Uploads received by piece CID. */
  uploadsByPiece: Map<string, number>
}

export interface FakePiece {
  pieceId: bigint
  pieceCid: string
  metadata: Record<string, string>
  live: boolean
}

export interface FakeDataSet {
  id: bigint
  providerId: bigint
  payer: Address
  clientDataSetId: bigint
  live: boolean
  metadata: Record<string, string>
  pieces: FakePiece[]
  nextChallengeEpoch: bigint
}

interface PieceAddedLog {
  block: bigint
  dataSetId: bigint
  pieceId: bigint
  pieceCid: string
  keys: string[]
  values: string[]
}

export class FakeFoc {
  readonly providers: FakeProvider[]
  readonly dataSets = new Map<bigint, FakeDataSet>()
  readonly logs: PieceAddedLog[] = []
  head = 1_000_000n
  /** Session keys (sessionKeyRegistry.authorizationExpiry): when every permission expires, seconds. */
  sessionKeyExpiry = 0n
  /** authorizationExpiry calls: [root, session key]. */
  readonly sessionKeyChecks: [string, string][] = []
  /** Providers refuse new uploads (500) while set. */
  refuseUploads = false
  /** Providers serve `/ipfs/{cid}` (false: their IPFS indexing has not caught up, every such GET is 404). */
  ipfsServing = true
  /** eth_getLogs calls: [from, to]. */
  readonly getLogsCalls: [bigint, bigint][] = []
  #nextDataSet = 1n
  #uploads = new Map<string, Uint8Array>()
  #uuid = 0
  #tx = 0
  readonly #pendingCreate = new Map<string, { dataSetId: bigint; pieceIds: bigint[] }>()
  readonly #pendingAdd = new Map<string, { dataSetId: bigint; pieceIds: bigint[] }>()
  readonly server

  constructor(nProviders = 3) {
    this.providers = Array.from({ length: nProviders }, (_, i) => ({
      id: BigInt(i + 1),
      address: `0x${(i + 1).toString(16).padStart(40, '0')}` as Address,
      url: `https://pdp${i + 1}.example.com`,
      failPulls: 0,
      uploads: 0,
      pulls: 0,
      pieces: new Map(),
      uploadsByPiece: new Map(),
    }))
    this.server = setupServer(...this.handlers())
  }

  start(): void {
    this.server.listen({ onUnhandledRequest: 'error' })
  }

  stop(): void {
    this.server.close()
  }

  provider(id: bigint): FakeProvider {
    const p = this.providers.find((x) => x.id === id)
    if (!p) throw new Error(`fake provider ${id} not found`)
    return p
  }

  /** A data set someone else owns, holding a piece whose metadata says `ipfsRootCID = cid`. */
  addOthersPiece(providerId: bigint, cid: string, car: Uint8Array, pieceCid: string): FakeDataSet {
    const ds = this.#newDataSet(providerId, '0x00000000000000000000000000000000000000aa', {
      withIPFSIndexing: '',
      source: 'someone-else',
    })
    this.provider(providerId).pieces.set(pieceCid, car)
    this.#addPieces(ds, [{ pieceCid, metadata: { ipfsRootCID: cid } }])
    return ds
  }

  /** Uploads of `pieceCid` received by all providers. */
  uploadsOf(pieceCid: string): number {
    return this.providers.reduce((a, p) => a + (p.uploadsByPiece.get(pieceCid) ?? 0), 0)
  }

  /** Data sets holding a live piece `pieceCid`. */
  holders(pieceCid: string): FakeDataSet[] {
    return [...this.dataSets.values()].filter(
      (d) => d.live && d.pieces.some((p) => p.live && p.pieceCid === pieceCid),
    )
  }

  /** Moves the head past every data set's proving deadline; those named prove in time (their next challenge moves on). */
  overdue(dataSetIds: bigint[]): void {
    this.head += PROVING_PERIOD * 2n
    for (const ds of this.dataSets.values())
      if (dataSetIds.includes(ds.id)) ds.nextChallengeEpoch = this.head + PROVING_PERIOD
  }

  #newDataSet(providerId: bigint, payer: Address, metadata: Record<string, string>): FakeDataSet {
    const ds: FakeDataSet = {
      id: this.#nextDataSet++,
      providerId,
      payer,
      clientDataSetId: BigInt(this.dataSets.size + 1),
      live: true,
      metadata,
      pieces: [],
      nextChallengeEpoch: this.head + PROVING_PERIOD,
    }
    this.dataSets.set(ds.id, ds)
    return ds
  }

  #addPieces(ds: FakeDataSet, pieces: { pieceCid: string; metadata: Record<string, string> }[]): bigint[] {
    this.head += 1n
    return pieces.map((p) => {
      const pieceId = BigInt(ds.pieces.length)
      ds.pieces.push({ pieceId, pieceCid: p.pieceCid, metadata: p.metadata, live: true })
      this.logs.push({
        block: this.head,
        dataSetId: ds.id,
        pieceId,
        pieceCid: p.pieceCid,
        keys: Object.keys(p.metadata),
        values: Object.values(p.metadata),
      })
      return pieceId
    })
  }

  #txHash(): `0x${string}` {
    return `0x${(++this.#tx).toString(16).padStart(64, '0')}`
  }

  #providerByUrl(url: string): FakeProvider {
    const origin = new URL(url).origin
    const p = this.providers.find((x) => x.url === origin)
    if (!p) throw new Error(`no fake provider at ${origin}`)
    return p
  }

  #dataSetInfo(ds: FakeDataSet) {
    const p = this.provider(ds.providerId)
    return {
      pdpRailId: ds.id,
      cacheMissRailId: 0n,
      cdnRailId: 0n,
      payer: ds.payer,
      payee: p.address,
      serviceProvider: p.address,
      commissionBps: 100n,
      clientDataSetId: ds.clientDataSetId,
      pdpEndEpoch: ds.live ? 0n : this.head,
      providerId: ds.providerId,
      cdnEndEpoch: 0n,
      dataSetId: ds.id,
    }
  }

  #productOf(_p: FakeProvider) {
    return {
      productType: 0,
      capabilityKeys: [
        'serviceURL',
        'minPieceSizeInBytes',
        'maxPieceSizeInBytes',
        'storagePricePerTibPerDay',
        'minProvingPeriodInEpochs',
        'location',
        'paymentTokenAddress',
      ],
      isActive: true,
    }
  }

  #capabilities(p: FakeProvider) {
    return [
      stringToHex(p.url),
      bytesToHex(numberToBytes(127n)),
      bytesToHex(numberToBytes(1073741824n)),
      bytesToHex(numberToBytes(1000000n)),
      bytesToHex(numberToBytes(2880n)),
      stringToHex('US'),
      Mocks.ADDRESSES.calibration.usdfcToken,
    ]
  }

  #providerInfo(p: FakeProvider) {
    return {
      serviceProvider: p.address,
      payee: Mocks.ADDRESSES.payee1,
      name: `Fake provider ${p.id}`,
      description: 'a JS fake of a PDP storage provider',
      isActive: true,
    }
  }

  #rpcOptions() {
    const basic = Mocks.presets.basic
    const dsOf = (id: bigint) => this.dataSets.get(id)
    const mine = (address: string) =>
      [...this.dataSets.values()].filter((d) => d.payer.toLowerCase() === address.toLowerCase())
    return {
      ...basic,
      eth_blockNumber: numberToHex(this.head),
      warmStorageView: {
        ...basic.warmStorageView,
        getApprovedProviders: () => [this.providers.map((p) => p.id)],
        getClientDataSets: (args: readonly unknown[]) => {
          const [address, offset] = args as [string, bigint]
          return [
            mine(address)
              .slice(Number(offset ?? 0n))
              .map((d) => this.#dataSetInfo(d)),
          ]
        },
        clientDataSets: (args: readonly unknown[]) => [mine(args[0] as string).map((d) => d.id)],
        getClientDataSetsLength: (args: readonly unknown[]) => [BigInt(mine(args[0] as string).length)],
        railToDataSet: (args: readonly unknown[]) => [args[0] as bigint],
        getDataSet: (args: readonly unknown[]) => {
          const ds = dsOf(args[0] as bigint)
          if (ds) return [this.#dataSetInfo(ds)]
          return basic.warmStorageView.getDataSet([999999n] as never)
        },
        getAllDataSetMetadata: (args: readonly unknown[]) => {
          const ds = dsOf(args[0] as bigint)
          return ds ? [Object.keys(ds.metadata), Object.values(ds.metadata)] : [[], []]
        },
        getDataSetMetadata: (args: readonly unknown[]) => {
          const [id, key] = args as [bigint, string]
          const v = dsOf(id)?.metadata[key]
          return v === undefined ? [false, ''] : [true, v]
        },
        getAllPieceMetadata: (args: readonly unknown[]) => {
          const [id, pieceId] = args as [bigint, bigint]
          const p = dsOf(id)?.pieces.find((x) => x.pieceId === pieceId)
          return p ? [Object.keys(p.metadata), Object.values(p.metadata)] : [[], []]
        },
        getPieceMetadata: (args: readonly unknown[]) => {
          const [id, pieceId, key] = args as [bigint, bigint, string]
          const v = dsOf(id)?.pieces.find((x) => x.pieceId === pieceId)?.metadata[key]
          return v === undefined ? [false, ''] : [true, v]
        },
        getPDPConfig: () => [PROVING_PERIOD, CHALLENGE_WINDOW, 1n, 0n],
      },
      pdpVerifier: {
        ...basic.pdpVerifier,
        dataSetLive: (args: readonly unknown[]) => [dsOf(args[0] as bigint)?.live ?? false],
        getNextPieceId: (args: readonly unknown[]) => [BigInt(dsOf(args[0] as bigint)?.pieces.length ?? 0)],
        getActivePieceCount: (args: readonly unknown[]) => [
          BigInt(dsOf(args[0] as bigint)?.pieces.filter((p) => p.live).length ?? 0),
        ],
        getActivePieces: (args: readonly unknown[]) => {
          const live = dsOf(args[0] as bigint)?.pieces.filter((p) => p.live) ?? []
          return [
            live.map((p) => ({ data: toHex(CID.parse(p.pieceCid).bytes) })),
            live.map((p) => p.pieceId),
            false,
          ]
        },
        getDataSetStorageProvider: (args: readonly unknown[]) => {
          const ds = dsOf(args[0] as bigint)
          return [ds ? this.provider(ds.providerId).address : Mocks.ADDRESSES.zero, Mocks.ADDRESSES.zero]
        },
        getNextChallengeEpoch: (args: readonly unknown[]) => [
          dsOf(args[0] as bigint)?.nextChallengeEpoch ?? 0n,
        ],
        findPieceIdsByCid: (args: readonly unknown[]) => {
          const [id, piece] = args as [bigint, { data: `0x${string}` }]
          const cid = CID.decode(Buffer.from(piece.data.slice(2), 'hex')).toString()
          return [
            dsOf(id)
              ?.pieces.filter((p) => p.live && p.pieceCid === cid)
              .map((p) => p.pieceId) ?? [],
          ]
        },
      },
      sessionKeyRegistry: {
        authorizationExpiry: (args: readonly unknown[]) => {
          this.sessionKeyChecks.push([String(args[0]), String(args[1])])
          return [this.sessionKeyExpiry]
        },
      },
      serviceRegistry: {
        ...basic.serviceRegistry,
        getProviderIdByAddress: (args: readonly unknown[]) => {
          const p = this.providers.find((x) => x.address.toLowerCase() === (args[0] as string).toLowerCase())
          return [p?.id ?? 0n]
        },
        getProvider: (args: readonly unknown[]) => {
          const p = this.providers.find((x) => x.id === args[0])
          if (!p) return basic.serviceRegistry.getProvider([0n] as never)
          return [{ providerId: p.id, info: this.#providerInfo(p) }]
        },
        getAllActiveProviders: () => [this.providers.map((p) => p.id), false],
        getProviderCount: () => [BigInt(this.providers.length)],
        activeProviderCount: () => [BigInt(this.providers.length)],
        isProviderActive: (args: readonly unknown[]) => [this.providers.some((p) => p.id === args[0])],
        getProvidersByProductType: () => [
          {
            providers: this.providers.map((p) => ({
              providerId: p.id,
              providerInfo: this.#providerInfo(p),
              product: this.#productOf(p),
              productCapabilityValues: this.#capabilities(p),
            })),
            hasMore: false,
          },
        ],
        getProviderWithProduct: (args: readonly unknown[]) => {
          const [providerId, productType] = args as [bigint, number]
          const p = this.providers.find((x) => x.id === providerId)
          if (!p) throw new Error('Provider not found')
          return [
            {
              providerId,
              providerInfo: this.#providerInfo(p),
              product: { ...this.#productOf(p), productType },
              productCapabilityValues: this.#capabilities(p),
            },
          ]
        },
      },
    }
  }

  #eventTopics(l: PieceAddedLog) {
    const abi = calibration.contracts.fwss.abi
    return encodeEventTopics({
      abi,
      eventName: 'PieceAdded',
      args: { dataSetId: l.dataSetId, pieceId: l.pieceId },
    } as never)
  }

  #getLogs(filter: { fromBlock?: string; toBlock?: string; address?: string }) {
    const from = BigInt(filter.fromBlock ?? '0x0')
    const to = filter.toBlock && filter.toBlock !== 'latest' ? BigInt(filter.toBlock) : this.head
    this.getLogsCalls.push([from, to])
    const ev = calibration.contracts.fwss.abi.find((e) => e.type === 'event' && e.name === 'PieceAdded') as {
      inputs: readonly { name: string; type: string; indexed?: boolean; components?: unknown }[]
    }
    const dataInputs = ev.inputs.filter((i) => !i.indexed)
    return this.logs
      .filter((l) => l.block >= from && l.block <= to)
      .map((l, i) => ({
        address: calibration.contracts.fwss.address,
        topics: this.#eventTopics(l),
        data: encodeAbiParameters(
          dataInputs as never,
          [{ data: toHex(CID.parse(l.pieceCid).bytes) }, l.keys, l.values] as never,
        ),
        blockNumber: numberToHex(l.block),
        blockHash: `0x${'11'.repeat(32)}`,
        transactionHash: `0x${l.block.toString(16).padStart(64, '0')}`,
        transactionIndex: '0x0',
        logIndex: numberToHex(i),
        removed: false,
      }))
  }

  handlers() {
    const rpc = Mocks.JSONRPC(this.#rpcOptions() as never)
    return [
      // Loopback servers of a test (the IPNI stand-in) are real: let them through.
      http.all(/^http:\/\/127\.0\.0\.1(:\d+)?\//, () => passthrough()),
      // The mocks have no eth_getLogs (nor a live head): answered here, the rest by the mocks' handler.
      http.post(RPC, async ({ request }) => {
        const body = (await request.clone().json()) as { method: string; params: unknown[]; id: number }
        if (Array.isArray(body)) return undefined
        if (body.method === 'eth_getLogs')
          return HttpResponse.json({
            jsonrpc: '2.0',
            id: body.id,
            result: this.#getLogs(body.params[0] as never),
          })
        if (body.method === 'eth_blockNumber')
          return HttpResponse.json({ jsonrpc: '2.0', id: body.id, result: numberToHex(this.head) })
        // Everything else: the mocks' handler, whose views read this state.
        return undefined
      }),
      rpc,
      ...this.providers.flatMap((p) => this.#providerHandlers(p)),
    ]
  }

  #providerHandlers(p: FakeProvider) {
    const base = p.url
    return [
      http.get(`${base}/pdp/ping`, () => new HttpResponse(null, { status: 200 })),
      http.post(`${base}/pdp/piece/uploads`, () => {
        if (this.refuseUploads) return HttpResponse.text('uploads refused (fake)', { status: 500 })
        const uuid = `${(++this.#uuid).toString(16).padStart(8, '0')}-0000-0000-0000-000000000000`
        return HttpResponse.text('Created', {
          status: 201,
          headers: { Location: `/pdp/piece/uploads/${uuid}` },
        })
      }),
      http.put(`${base}/pdp/piece/uploads/:uuid`, async ({ request, params }) => {
        this.#uploads.set(String(params.uuid), new Uint8Array(await request.arrayBuffer()))
        return new HttpResponse(null, { status: 204 })
      }),
      http.post(`${base}/pdp/piece/uploads/:uuid`, async ({ request, params }) => {
        const body = (await request.json()) as { pieceCid: string }
        const bytes = this.#uploads.get(String(params.uuid))
        if (!bytes) return HttpResponse.text('no such upload', { status: 404 })
        this.#uploads.delete(String(params.uuid))
        p.uploads++
        p.uploadsByPiece.set(body.pieceCid, (p.uploadsByPiece.get(body.pieceCid) ?? 0) + 1)
        p.pieces.set(body.pieceCid, bytes)
        return HttpResponse.json({ pieceCid: body.pieceCid })
      }),
      http.get(`${base}/pdp/piece`, ({ request }) => {
        const cid = new URL(request.url).searchParams.get('pieceCid') ?? ''
        return p.pieces.has(cid)
          ? HttpResponse.json({ pieceCid: cid })
          : HttpResponse.text(null, { status: 404 })
      }),
      http.post(`${base}/pdp/piece/pull`, async ({ request }) => {
        const body = (await request.json()) as { pieces: { pieceCid: string; sourceUrl: string }[] }
        p.pulls++
        if (p.failPulls > 0) {
          p.failPulls--
          return HttpResponse.json({
            status: 'failed',
            pieces: body.pieces.map((x) => ({ pieceCid: x.pieceCid, status: 'failed' })),
          })
        }
        for (const x of body.pieces) {
          const src = this.#providerByUrl(x.sourceUrl).pieces.get(x.pieceCid)
          if (src) p.pieces.set(x.pieceCid, src)
        }
        return HttpResponse.json({
          status: 'complete',
          pieces: body.pieces.map((x) => ({ pieceCid: x.pieceCid, status: 'complete' })),
        })
      }),
      http.post(`${base}/pdp/data-sets/create-and-add`, async ({ request }) => {
        const body = (await request.json()) as { extraData: `0x${string}`; pieces: { pieceCid: string }[] }
        const [dsExtra, addExtra] = decodeAbiParameters(
          [{ type: 'bytes' }, { type: 'bytes' }],
          body.extraData,
        )
        const created = Mocks.pdp.decodeMetadataFromCreateDataSetExtraData(dsExtra)
        const [payer] = decodeAbiParameters([{ type: 'address' }], dsExtra)
        const md: Record<string, string> = {}
        created.keys.forEach((k: string, i: number) => {
          md[k] = created.values[i] ?? ''
        })
        const ds = this.#newDataSet(p.id, payer as Address, md)
        const pieceIds = this.#addPieces(ds, this.#piecesOf(body.pieces, addExtra))
        const tx = this.#txHash()
        this.#pendingCreate.set(tx, { dataSetId: ds.id, pieceIds })
        return new HttpResponse(null, { status: 201, headers: { Location: `/pdp/data-sets/created/${tx}` } })
      }),
      http.get(`${base}/pdp/data-sets/created/:tx`, ({ params }) => {
        const c = this.#pendingCreate.get(String(params.tx))
        if (!c) return new HttpResponse(null, { status: 404 })
        this.#pendingAdd.set(String(params.tx), c)
        return HttpResponse.json({
          createMessageHash: params.tx,
          dataSetCreated: true,
          service: 'fake',
          txStatus: 'confirmed',
          ok: true,
          dataSetId: Number(c.dataSetId),
        })
      }),
      http.post(`${base}/pdp/data-sets/:id/pieces`, async ({ request, params }) => {
        const ds = this.dataSets.get(BigInt(String(params.id)))
        if (!ds?.live || ds.providerId !== p.id) return HttpResponse.text('no such data set', { status: 404 })
        const body = (await request.json()) as { extraData: `0x${string}`; pieces: { pieceCid: string }[] }
        const pieceIds = this.#addPieces(ds, this.#piecesOf(body.pieces, body.extraData))
        const tx = this.#txHash()
        this.#pendingAdd.set(tx, { dataSetId: ds.id, pieceIds })
        return new HttpResponse(null, {
          status: 201,
          headers: { Location: `/pdp/data-sets/${ds.id}/pieces/added/${tx}` },
        })
      }),
      http.get(`${base}/pdp/data-sets/:id/pieces/added/:tx`, ({ params }) => {
        const a = this.#pendingAdd.get(String(params.tx))
        if (!a) return new HttpResponse(null, { status: 404 })
        return HttpResponse.json({
          txHash: params.tx,
          txStatus: 'confirmed',
          dataSetId: Number(a.dataSetId),
          pieceCount: a.pieceIds.length,
          addMessageOk: true,
          piecesAdded: true,
          confirmedPieceIds: a.pieceIds.map(Number),
        })
      }),
      http.get(`${base}/piece/:pieceCid`, ({ params, request }) => {
        const bytes = p.pieces.get(String(params.pieceCid))
        if (!bytes) return new HttpResponse(null, { status: 404 })
        const range = /^bytes=(\d+)-(\d+)$/.exec(request.headers.get('range') ?? '')
        if (range) {
          const [a, b] = [Number(range[1]), Number(range[2])]
          return new HttpResponse(bytes.slice(a, b + 1), {
            status: 206,
            headers: { 'content-range': `bytes ${a}-${b}/${bytes.length}` },
          })
        }
        return new HttpResponse(bytes, { status: 200 })
      }),
      http.get(`${base}/ipfs/:cid`, async ({ params }) => {
        if (!this.ipfsServing) return new HttpResponse(null, { status: 404 })
        const want = String(params.cid)
        for (const car of p.pieces.values()) {
          const it = await CarBlockIterator.fromBytes(car)
          for await (const b of it)
            if (b.cid.toString() === want) return new HttpResponse(b.bytes, { status: 200 })
        }
        return new HttpResponse(null, { status: 404 })
      }),
    ]
  }

  #piecesOf(pieces: { pieceCid: string }[], addExtra: `0x${string}`) {
    const md = Mocks.pdp.decodePieceMetadataFromExtraData(addExtra)
    return pieces.map((x, i) => {
      const m: Record<string, string> = {}
      ;(md.keys[i] ?? []).forEach((k: string, j: number) => {
        m[k] = md.values[i]?.[j] ?? ''
      })
      return { pieceCid: x.pieceCid, metadata: m }
    })
  }
}

/**
 * A Filecoin target `foc` with the real SDK, signed with the mocks' client key (so it talks to this
 * fake once `start()`ed, or through foc-relay.ts), reading the mirror's blocks through the index's
 * block map; `copies` 2, status and event scan at every check, unless `extra` says otherwise.
 */
export async function focTarget(
  db: Database,
  extra: Partial<FilecoinTargetOptions> & { source?: string } = {},
): Promise<FilecoinTarget> {
  const { source = 'cidmirror-test', ...rest } = extra
  const service = await SynapseService.open({ network: 'calibration', privateKey: CLIENT_KEY, source })
  const reader = new BlockReader(db)
  return new FilecoinTarget({
    name: 'foc',
    service,
    db,
    blocks: (cid) => reader.get(cid),
    copies: 2,
    statusTtlMs: 0,
    scanEveryMs: 0,
    ...rest,
  })
}
