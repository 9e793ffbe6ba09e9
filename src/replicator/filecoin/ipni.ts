/**
 * IPNI records of a file CID as a Filecoin copy counter (cid.contact-style `/routing/v1/providers/{cid}`
 * through `@helia/delegated-routing-v1-http-api-client`). Two transports matter: `gateway-http`
 * (PDP providers serve `/ipfs/{cid}` and announce every block) and `graphsync-filecoinv1` (legacy
 * deals; its metadata names the PieceCID and whether the deal is verified). Both are "announced"
 * only: IPNI mixes calibration and mainnet and keeps a vanished provider's records for 7 days, so a
 * record counts after a retrieval probe of the block over HTTP hashed right, and never alone. A
 * graphsync record has no HTTP address to probe: it stays announced, its metadata shown.
 */
import type { DelegatedRoutingV1HttpApiClient } from '@helia/delegated-routing-v1-http-api-client'
import { decode as decodeCbor } from '@ipld/dag-cbor'
import { varint } from 'multiformats'
import { base58btc } from 'multiformats/bases/base58'
import { CID } from 'multiformats/cid'
import type { CopyRecord } from '../../index/index.ts'
import { TargetUnreachableError } from '../errors.ts'
import { httpGateways } from '../http-gateways.ts'
import type { CopyCounter, ReplicationItem, TargetCallOptions } from '../target.ts'
import { probeBlock } from '../targets/probe.ts'

const GATEWAY_HTTP = 'transport-ipfs-gateway-http'
const GRAPHSYNC = 'transport-graphsync-filecoinv1'
const CODE_GATEWAY_HTTP = 0x0920
const CODE_GRAPHSYNC = 0x0910

/** What a record's metadata (base64 of the transport's multicodec varint, then its payload) says. */
export interface IpniMetadata {
  transport: string
  pieceCid?: string
  verifiedDeal?: boolean
  fastRetrieval?: boolean
}

/** Decodes an IPNI metadata field; undefined when it is not one of the two transports read here. */
export function decodeIpniMetadata(b64: string): IpniMetadata | undefined {
  let bytes: Uint8Array
  try {
    bytes = Buffer.from(b64, 'base64')
  } catch {
    return undefined
  }
  if (bytes.length === 0) return undefined
  const [code, n] = varint.decode(bytes)
  if (code === CODE_GATEWAY_HTTP) return { transport: GATEWAY_HTTP }
  if (code !== CODE_GRAPHSYNC) return undefined
  const out: IpniMetadata = { transport: GRAPHSYNC }
  try {
    const m = decodeCbor<{ PieceCID?: CID; VerifiedDeal?: boolean; FastRetrieval?: boolean }>(
      bytes.subarray(n),
    )
    if (m.PieceCID) out.pieceCid = CID.asCID(m.PieceCID)?.toString() ?? String(m.PieceCID)
    if (typeof m.VerifiedDeal === 'boolean') out.verifiedDeal = m.VerifiedDeal
    if (typeof m.FastRetrieval === 'boolean') out.fastRetrieval = m.FastRetrieval
  } catch {
    // A payload we cannot read: the transport is still known.
  }
  return out
}

export interface IpniCounterOptions {
  name: string
  /** Delegated Routing V1 endpoints backed by IPNI (`https://cid.contact`). */
  endpoints: string[]
  /** Records read per endpoint (default 20). */
  limit?: number
}

export class IpniCounter implements CopyCounter {
  readonly name: string
  readonly scope = 'entity' as const
  readonly #o: IpniCounterOptions
  #clients: DelegatedRoutingV1HttpApiClient[] = []
  #started: Promise<void> | undefined

  constructor(o: IpniCounterOptions) {
    this.#o = o
    this.name = o.name
  }

  /** The clients, made at the first check (loaded then, not by every importer of the face). */
  async #start(): Promise<void> {
    const [{ delegatedRoutingV1HttpApiClient }, { defaultLogger }] = await Promise.all([
      import('@helia/delegated-routing-v1-http-api-client'),
      import('@libp2p/logger'),
    ])
    const logger = defaultLogger()
    this.#clients = this.#o.endpoints.map((url) =>
      delegatedRoutingV1HttpApiClient({ url, cacheTTL: 0 })({ logger }),
    )
    await Promise.all(this.#clients.map((c) => c.start()))
  }

  async check(item: ReplicationItem, { signal }: TargetCallOptions): Promise<CopyRecord[]> {
    this.#started ??= this.#start()
    await this.#started
    const cid = CID.parse(item.cid)
    const out = new Map<string, CopyRecord>()
    for (const client of this.#clients) {
      const source = client.url.toString()
      let n = 0
      try {
        for await (const r of client.getProviders(cid, { signal })) {
          if (++n > (this.#o.limit ?? 20)) break
          const rec = r as unknown as Record<string, unknown> & {
            ID: CID
            Addrs: { toString(): string }[]
            Protocols: string[]
          }
          const metas: IpniMetadata[] = []
          for (const p of rec.Protocols) {
            if (p !== GATEWAY_HTTP && p !== GRAPHSYNC) continue
            const raw = rec[p]
            const m = typeof raw === 'string' ? decodeIpniMetadata(raw) : undefined
            metas.push(m ?? { transport: p })
          }
          if (metas.length === 0) continue
          const peerId = base58btc.baseEncode(rec.ID.multihash.bytes)
          const holder = `ipni:${peerId}`
          if (out.has(holder)) continue
          out.set(holder, await this.#record(item, holder, rec.Addrs.map(String), metas, source, signal))
        }
      } catch (err) {
        if (signal.aborted) throw err
        throw new TargetUnreachableError(this.name, source, (err as Error).message)
      }
    }
    return [...out.values()]
  }

  async #record(
    item: ReplicationItem,
    holder: string,
    addrs: string[],
    metas: IpniMetadata[],
    source: string,
    signal: AbortSignal,
  ): Promise<CopyRecord> {
    const now = Date.now()
    const detail: Record<string, string | number | boolean> = {
      protocols: metas.map((m) => m.transport).join(','),
      source,
    }
    const gs = metas.find((m) => m.transport === GRAPHSYNC)
    if (gs?.pieceCid) detail.pieceCid = gs.pieceCid
    if (gs?.verifiedDeal !== undefined) detail.verifiedDeal = gs.verifiedDeal
    if (gs?.fastRetrieval !== undefined) detail.fastRetrieval = gs.fastRetrieval
    const rec: CopyRecord = {
      cid: item.cid,
      holder,
      kind: 'filecoin',
      how: 'ipni',
      status: 'announced',
      scope: 'entity',
      local: false,
      checkedAt: now,
      since: now,
      detail,
    }
    if (!metas.some((m) => m.transport === GATEWAY_HTTP)) {
      rec.error = 'no HTTP gateway to probe (graphsync only): announced'
      return rec
    }
    const failures: string[] = []
    for (const gw of httpGateways(addrs)) {
      const r = await probeBlock(gw, item.cid, signal)
      if (r.ok) {
        rec.status = 'verified'
        rec.how = 'ipni+retrieval-probe'
        rec.retrieval = [`${gw}/ipfs/${item.cid}`]
        return rec
      }
      failures.push(`${gw}: ${r.reason}`)
    }
    rec.error =
      failures.length > 0 ? `retrieval probe failed: ${failures.join('; ')}` : 'no HTTP address to probe'
    return rec
  }

  async close(): Promise<void> {
    if (this.#started) await Promise.all(this.#clients.map((c) => c.stop()))
  }
}
