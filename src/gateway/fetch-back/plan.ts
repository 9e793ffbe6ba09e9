/**
 * The sources of one file, in the order they are tried (README, "Fetching evicted files back"):
 *
 * 1. the local IPFS node (through its gateway's trustless CAR when its address is known, else its own
 *    CAR export); it asks its peers over bitswap for what it lacks;
 * 2. holders the replicator recorded in the index (CopyStore) with a trustless `/ipfs/` retrieval URL
 *    (other Kubo gateways, pinning services' gateways, providers found by routing), verified copies
 *    first, then announced ones;
 * 3. Filecoin storage providers holding the file: their trustless `/ipfs/{cid}`, then
 *    `/piece/{pieceCid}` with a Range over the file's sections (`detail.carOffset`, `carLength`);
 * 4. the configured trustless HTTP gateways (`[gateway] fetch_from`).
 *
 * Copies on this disk are skipped: they are what was evicted.
 */
import type { Dispatcher } from 'undici'
import type { CopyRecord } from '../../index/index.ts'
import type { IpfsNode } from '../../ipfs/index.ts'
import { type FetchSource, NodeCarSource, PieceSource, TrustlessGatewaySource } from './sources.ts'

export interface PlanOptions {
  node?: IpfsNode
  /** The local node's HTTP gateway (`http://127.0.0.1:8080`): the fast path to it. */
  localGateway?: string
  /** Trustless gateways tried last, in order. */
  gateways?: string[]
  dispatcher?: Dispatcher
}

/** `https://host[:port][/prefix]` of a URL `.../ipfs/<cid>[/...]`, or undefined for another shape. */
function gatewayBase(url: string): string | undefined {
  const i = url.indexOf('/ipfs/')
  if (i <= 0) return undefined
  try {
    new URL(url)
  } catch {
    return undefined
  }
  return url.slice(0, i)
}

function origin(url: string): string {
  try {
    return new URL(url).origin
  } catch {
    return url
  }
}

function num(v: unknown): number | undefined {
  const n = typeof v === 'string' ? Number(v) : v
  return typeof n === 'number' && Number.isSafeInteger(n) && n >= 0 ? n : undefined
}

const statusRank = (c: CopyRecord): number => (c.status === 'verified' ? 0 : c.status === 'announced' ? 1 : 2)

/** The sources for a file whose copies the index records as `copies` (entity and tree copies). */
export function planSources(copies: CopyRecord[], opts: PlanOptions): FetchSource[] {
  const out: FetchSource[] = []
  const seen = new Set<string>()
  const add = (key: string, make: () => FetchSource) => {
    if (seen.has(key)) return
    seen.add(key)
    out.push(make())
  }
  if (opts.localGateway)
    add(
      `gw:${opts.localGateway}`,
      () => new TrustlessGatewaySource('local-node', 'local-node', opts.localGateway!, opts.dispatcher),
    )
  else if (opts.node) add('node', () => new NodeCarSource(opts.node!))

  const usable = copies
    .filter((c) => !c.local && c.status !== 'lost' && c.status !== 'pending')
    .sort((a, b) => statusRank(a) - statusRank(b))
  for (const c of usable) {
    if (c.kind === 'filecoin') continue
    for (const url of c.retrieval ?? []) {
      const base = gatewayBase(url)
      if (base)
        add(
          `gw:${base}`,
          () => new TrustlessGatewaySource(`holder:${c.holder}`, 'holder', base, opts.dispatcher),
        )
    }
  }
  const pieces: FetchSource[] = []
  for (const c of usable) {
    if (c.kind !== 'filecoin') continue
    for (const url of c.retrieval ?? []) {
      const name = `filecoin:${origin(url)}`
      const base = gatewayBase(url)
      if (base) {
        add(`gw:${base}`, () => new TrustlessGatewaySource(name, 'filecoin', base, opts.dispatcher))
        continue
      }
      const offset = num(c.detail?.carOffset)
      const length = num(c.detail?.carLength)
      if (
        url.includes('/piece/') &&
        offset !== undefined &&
        length !== undefined &&
        length > 0 &&
        !seen.has(`piece:${url}`)
      ) {
        seen.add(`piece:${url}`)
        pieces.push(new PieceSource(name, url, offset, length, opts.dispatcher))
      }
    }
  }
  // A provider's trustless /ipfs/ streams root first and takes ranges; its piece is the fallback.
  out.push(...pieces)
  for (const g of opts.gateways ?? [])
    add(
      `gw:${g.replace(/\/+$/, '')}`,
      () => new TrustlessGatewaySource(`gateway:${g}`, 'gateway', g, opts.dispatcher),
    )
  return out
}
