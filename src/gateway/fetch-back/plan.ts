/**
 * The sources of one file, in the order they are tried (README, "Fetching evicted files back"):
 *
 * 1. the local IPFS node (through its gateway's trustless CAR when its address is known, else its own
 *    CAR export); it asks its peers over bitswap for what it lacks, after dialling the delegates a
 *    pinning service reported for the pin (`detail.delegates`);
 * 2. holders the replicator recorded in the index (CopyStore), verified copies first, then announced
 *    ones; each through its trustless `/ipfs/` retrieval URL (a Kubo target's gateway, a pinning
 *    service's gateway), then its IPFS RPC API when the config names one for the copy's target (a Kubo
 *    target's `api`, a cluster's `ipfs_api`: holder-sources.ts);
 * 3. Filecoin storage providers holding the file: their trustless `/ipfs/{cid}`, then
 *    `/piece/{pieceCid}` with a Range over the file's sections (`detail.carOffset`, `carLength`);
 * 4. the configured trustless HTTP gateways (`[gateway] fetch_from`).
 *
 * Copies on this disk are skipped: they are what was evicted.
 */
import type { Dispatcher } from 'undici'
import type { CopyRecord } from '../../index/index.ts'
import type { IpfsNode } from '../../ipfs/index.ts'
import { DelegatesFirstSource, HolderCarSource, type HolderNodes } from './holder-sources.ts'
import {
  type FetchSource,
  NodeCarSource,
  type PiecePart,
  PieceSource,
  TrustlessGatewaySource,
} from './sources.ts'

export interface PlanOptions {
  node?: IpfsNode
  /** The local node's HTTP gateway (`http://127.0.0.1:8080`): the fast path to it. */
  localGateway?: string
  /** Trustless gateways tried last, in order. */
  gateways?: string[]
  dispatcher?: Dispatcher
  /** The RPC APIs of the holders recorded by each target, by CopyRecord.target (from the config). */
  holders?: HolderNodes
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

/**
 * The file's parts in its pieces, from a Filecoin copy's record: one piece (`carOffset`, `carLength`),
 * or a file split across pieces (`pieceCids` in order, `partRanges` "offset+length,..."), each matched
 * with its `/piece/` retrieval URL. Undefined when the record does not say enough.
 */
function pieceParts(c: CopyRecord): PiecePart[] | undefined {
  const urls = (c.retrieval ?? []).filter((u) => u.includes('/piece/'))
  const d = c.detail ?? {}
  const offset = num(d.carOffset)
  const length = num(d.carLength)
  if (offset !== undefined && length !== undefined && length > 0 && urls.length > 0) {
    const url =
      typeof d.pieceCid === 'string'
        ? (urls.find((u) => u.endsWith(`/piece/${d.pieceCid}`)) ?? urls[0]!)
        : urls[0]!
    return [{ url, offset, length }]
  }
  if (typeof d.pieceCids !== 'string' || typeof d.partRanges !== 'string') return undefined
  const cids = d.pieceCids.split(',')
  const ranges = d.partRanges.split(',')
  if (cids.length !== ranges.length || cids.length === 0) return undefined
  const parts: PiecePart[] = []
  for (const [i, pc] of cids.entries()) {
    const url = urls.find((u) => u.endsWith(`/piece/${pc}`))
    const [o, l] = ranges[i]!.split('+').map(Number)
    if (!url || num(o) === undefined || num(l) === undefined || l! <= 0) return undefined
    parts.push({ url, offset: o!, length: l! })
  }
  return parts
}

/** The multiaddrs pinning services reported as their delegates for the file's pins (space-separated). */
function delegates(copies: CopyRecord[]): string[] {
  const out = new Set<string>()
  for (const c of copies) {
    const d = c.detail?.delegates
    if (c.kind === 'pinning-service' && typeof d === 'string')
      for (const a of d.split(/\s+/)) if (a.startsWith('/')) out.add(a)
  }
  return [...out]
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
  const usable = copies
    .filter((c) => !c.local && c.status !== 'lost' && c.status !== 'pending')
    .sort((a, b) => statusRank(a) - statusRank(b))
  const local = opts.localGateway
    ? new TrustlessGatewaySource('local-node', 'local-node', opts.localGateway, opts.dispatcher)
    : opts.node
      ? new NodeCarSource(opts.node)
      : undefined
  if (local) {
    const node = opts.node
    const ds = delegates(usable)
    add(opts.localGateway ? `gw:${opts.localGateway}` : 'node', () =>
      node && ds.length > 0 ? new DelegatesFirstSource(local, ds, (a, o) => node.connect(a, o)) : local,
    )
  }

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
    for (const h of (c.target !== undefined ? opts.holders?.(c.target) : undefined) ?? [])
      if (h.peer === undefined || c.holder === `ipfs:${h.peer}`)
        add(`rpc:${h.key}`, () => new HolderCarSource(h.id ?? c.holder, h, opts.dispatcher))
  }
  const pieces: FetchSource[] = []
  for (const c of usable) {
    if (c.kind !== 'filecoin') continue
    const urls = c.retrieval ?? []
    const name = `filecoin:${origin(urls[0] ?? c.holder)}`
    for (const url of urls) {
      const base = gatewayBase(url)
      if (base) add(`gw:${base}`, () => new TrustlessGatewaySource(name, 'filecoin', base, opts.dispatcher))
    }
    const parts = pieceParts(c)
    const key = `piece:${parts?.map((p) => `${p.url}@${p.offset}`).join(',')}`
    if (parts && !seen.has(key)) {
      seen.add(key)
      pieces.push(new PieceSource(name, parts, opts.dispatcher))
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
