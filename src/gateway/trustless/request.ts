/**
 * What a trustless request asks for: the response type (`?format=` first, then `Accept` by q), the CAR
 * parameters (`car-version`/`car-order`/`car-dups` over the Accept parameters, IPIP-412 and IPIP-523),
 * `dag-scope` and `entity-bytes`. Unsupported variants are 406, malformed ones 400.
 */
import { base32 } from 'multiformats/bases/base32'
import { base36 } from 'multiformats/bases/base36'
import { base58btc } from 'multiformats/bases/base58'
import { CID } from 'multiformats/cid'
import { TrustlessBadRequestError, TrustlessNotAcceptableError } from './errors.ts'

export type DagScope = 'block' | 'entity' | 'all'

/** `entity-bytes=from:to`: negative values count from the end, `to` may be `*` (the end). */
export interface EntityBytes {
  from: number
  to: number | '*'
}

export type Wanted =
  | { format: 'raw'; negotiated: boolean }
  | {
      format: 'car'
      negotiated: boolean
      /** Duplicate blocks sent each time they occur in the walk (`dups=y`) or once (`dups=n`, the default). */
      dups: boolean
      scope: DagScope
      entityBytes?: EntityBytes
    }

export const RAW_TYPE = 'application/vnd.ipld.raw'
export const CAR_TYPE = 'application/vnd.ipld.car'

type Query = Record<string, string | string[] | undefined>

function one(q: Query, key: string): string | undefined {
  const v = q[key]
  if (Array.isArray(v)) {
    if (v.length > 1) throw new TrustlessBadRequestError(`?${key} given ${v.length} times`)
    return v[0]
  }
  return v
}

interface MediaRange {
  type: string
  params: Map<string, string>
  q: number
  order: number
}

/** RFC 9110 12.5.1 media ranges, best first (by q, then as listed); q=0 ranges dropped. */
export function parseAccept(header: string): MediaRange[] {
  const out: MediaRange[] = []
  let order = 0
  for (const part of header.split(',')) {
    const [typePart, ...paramParts] = part.split(';')
    const type = typePart!.trim().toLowerCase()
    if (type === '') continue
    const params = new Map<string, string>()
    let q = 1
    for (const p of paramParts) {
      const eq = p.indexOf('=')
      if (eq < 0) continue
      const k = p.slice(0, eq).trim().toLowerCase()
      const v = p
        .slice(eq + 1)
        .trim()
        .replace(/^"(.*)"$/, '$1')
      if (k === 'q') {
        const n = Number(v)
        q = Number.isFinite(n) ? n : 0
      } else params.set(k, v.toLowerCase())
    }
    if (q > 0) out.push({ type, params, q, order: order++ })
  }
  return out.sort((a, b) => b.q - a.q || a.order - b.order)
}

interface CarParams {
  version?: string
  order?: string
  dups?: string
}

/** Whether this endpoint can give a CAR with these parameters (CARv1, depth-first, dups either way). */
function carParamsOk(p: CarParams): boolean {
  if (p.version !== undefined && p.version !== '1') return false
  if (p.order !== undefined && p.order !== 'dfs' && p.order !== 'unk') return false
  if (p.dups !== undefined && p.dups !== 'y' && p.dups !== 'n') return false
  return true
}

function carParamsOf(r: MediaRange): CarParams {
  return { version: r.params.get('version'), order: r.params.get('order'), dups: r.params.get('dups') }
}

function parseScope(v: string | undefined): DagScope | undefined {
  if (v === undefined) return undefined
  if (v === 'block' || v === 'entity' || v === 'all') return v
  throw new TrustlessBadRequestError(`dag-scope=${v}: expected block, entity or all`)
}

const INT = /^-?(0|[1-9][0-9]{0,15})$/

export function parseEntityBytes(v: string): EntityBytes {
  const m = /^([^:]+):([^:]+)$/.exec(v)
  if (!m || !INT.test(m[1]!) || (m[2] !== '*' && !INT.test(m[2]!)))
    throw new TrustlessBadRequestError(`entity-bytes=${v}: expected from:to (integers, to may be *)`)
  const from = Number(m[1])
  const to = m[2] === '*' ? '*' : Number(m[2])
  if (from >= 0 && typeof to === 'number' && to >= 0 && to < from)
    throw new TrustlessBadRequestError(`entity-bytes=${v}: to is before from`)
  return { from, to }
}

/** The response a request wants, or a 400/406 error. */
export function negotiate(query: Query, accept: string | undefined): Wanted {
  const format = one(query, 'format')
  const ranges = accept ? parseAccept(accept) : []
  let kind: 'raw' | 'car' | undefined
  let params: CarParams = {}
  if (format !== undefined) {
    if (format === 'raw') kind = 'raw'
    else if (format === 'car') {
      kind = 'car'
      // With ?format=car, the Accept header's CAR parameters still apply (IPIP-523).
      const car = ranges.find((r) => r.type === CAR_TYPE)
      if (car) params = carParamsOf(car)
    } else
      throw new TrustlessNotAcceptableError(
        `format=${format}: this gateway is trustless and gives only format=raw and format=car`,
      )
  } else {
    if (ranges.length === 0)
      throw new TrustlessBadRequestError(
        `a trustless request needs ?format=raw or ?format=car, or Accept: ${RAW_TYPE} or ${CAR_TYPE}`,
      )
    for (const r of ranges) {
      if (r.type === RAW_TYPE) {
        kind = 'raw'
        break
      }
      if (r.type === CAR_TYPE && carParamsOk(carParamsOf(r))) {
        kind = 'car'
        params = carParamsOf(r)
        break
      }
    }
    if (kind === undefined)
      throw new TrustlessNotAcceptableError(
        `Accept: ${accept}: this gateway gives only ${RAW_TYPE} and ${CAR_TYPE}; version=1; order=dfs`,
      )
  }
  const negotiated = format === undefined
  if (kind === 'raw') return { format: 'raw', negotiated }

  const qVersion = one(query, 'car-version')
  const qOrder = one(query, 'car-order')
  const qDups = one(query, 'car-dups')
  const merged: CarParams = {
    version: qVersion ?? params.version,
    order: qOrder ?? params.order,
    dups: qDups ?? params.dups,
  }
  if (!carParamsOk(merged))
    throw new TrustlessNotAcceptableError(
      `a CAR with version=${merged.version ?? '1'}, order=${merged.order ?? 'dfs'}, dups=${merged.dups ?? 'n'}: ` +
        'this gateway gives CARv1, order=dfs, dups=y or dups=n',
    )
  const eb = one(query, 'entity-bytes')
  const entityBytes = eb === undefined ? undefined : parseEntityBytes(eb)
  const scope = parseScope(one(query, 'dag-scope')) ?? (entityBytes ? 'entity' : 'all')
  return {
    format: 'car',
    negotiated,
    dups: merged.dups === 'y',
    scope,
    ...(entityBytes && scope === 'entity' ? { entityBytes } : {}),
  }
}

/** `Content-Disposition: attachment` with `filename`, in RFC 6266 form (an ASCII fallback, and UTF-8 when needed). */
export function contentDisposition(filename: string): string {
  if (/[\0-\x1f\x7f/\\]/.test(filename) || filename === '')
    throw new TrustlessBadRequestError(`filename=${JSON.stringify(filename)}: not a file name`)
  const ascii = filename.replace(/[^\x20-\x7e]/g, '_').replace(/["%]/g, '_')
  let out = `attachment; filename="${ascii}"`
  if (ascii !== filename) out += `; filename*=UTF-8''${encodeURIComponent(filename)}`
  return out
}

export function filenameOf(query: Query): string | undefined {
  return one(query, 'filename')
}

const CID_DECODERS = base32.decoder.or(base36.decoder).or(base58btc.decoder)

/** A CID as a path segment names it (CIDv0 `Qm…`, or v1 in base32, base36 or base58btc); undefined when it is none. */
export function parseCidText(s: string): CID | undefined {
  try {
    return s.startsWith('Qm') || s.startsWith('1') ? CID.parse(s) : CID.parse(s, CID_DECODERS)
  } catch {
    return undefined
  }
}
