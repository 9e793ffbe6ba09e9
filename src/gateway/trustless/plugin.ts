/**
 * `GET|HEAD /ipfs/{cid}[/{path}]`, the IPFS trustless gateway (specs.ipfs.tech/http-gateways/
 * trustless-gateway): raw blocks and CARv1 streams a client verifies itself, never deserialized
 * files. A fastify plugin: `app.register(trustlessGateway, { blocks, node })`.
 */
import { createHash } from 'node:crypto'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import type { CID } from 'multiformats/cid'
import { errorKeyOf, httpStatusOf, isHttpErrorKey } from '../../error-codes.ts'
import { isCidmirrorError } from '../../errors.ts'
import type { BlockReader } from '../../index/index.ts'
import type { IpfsNode } from '../../ipfs/index.ts'
import { BlockSource } from './blocks.ts'
import { carStream } from './car.ts'
import {
  TrustlessBadRequestError,
  TrustlessNoSuchPathError,
  TrustlessNotCachedError,
  TrustlessNotHeldError,
  TrustlessRangeError,
} from './errors.ts'
import { type FetchFile, fillingSource, leafFill, withFetchedLeaf } from './fill.ts'
import {
  CAR_TYPE,
  contentDisposition,
  filenameOf,
  negotiate,
  parseCidText,
  RAW_TYPE,
  type Wanted,
} from './request.ts'
import { type BlockGetter, carBlocks, type ResolvedPath, resolvePath } from './walk.ts'

export interface TrustlessGatewayOptions {
  /** The index's block map: mirror blocks are read from the mirror tree through it. */
  blocks: BlockReader
  /** The local IPFS node, asked (offline, verified) for blocks that are not the mirror's. */
  node?: IpfsNode
  /** Blocks remembered per `dups=n` CAR (about 100 bytes each); a CAR with more distinct blocks fails. */
  maxDistinct?: number
  /**
   * A file's verified bytes by CID (the fetch-back, to the client only): a CAR of a file whose inner
   * nodes are held but whose leaves are not (deleted upstream, a past version, evicted) gets them from it,
   * as does each such file below a directory in a `dag-scope=all` CAR.
   */
  fetchFile?: FetchFile
}

/** 29030400 s (48 weeks): the spec's and Kubo's value for content that cannot change. */
const IMMUTABLE = 'public, max-age=29030400, immutable'
const DEFAULT_MAX_DISTINCT = 1_000_000

function parseCidSegment(s: string): CID {
  const cid = parseCidText(s)
  if (!cid) throw new TrustlessBadRequestError(`/ipfs/${s}: not a CID`)
  return cid
}

interface Target {
  /** The path as asked, without the query (X-Ipfs-Path). */
  rawPath: string
  cidText: string
  cid: CID
  segments: string[]
}

/** The CID and path segments of a request, each segment percent-decoded once. */
function targetOf(url: string): Target {
  const rawPath = url.split('?', 1)[0]!
  const at = rawPath.indexOf('/ipfs/')
  const parts = rawPath
    .slice(at + '/ipfs/'.length)
    .split('/')
    .filter((p) => p !== '')
  let decoded: string[]
  try {
    decoded = parts.map((p) => decodeURIComponent(p))
  } catch (err) {
    throw new TrustlessBadRequestError(`${rawPath}: a malformed percent-encoding`, { cause: err })
  }
  const cidText = decoded[0]
  if (cidText === undefined) throw new TrustlessBadRequestError('/ipfs/ needs a CID')
  const segments = decoded.slice(1)
  if (segments.some((s) => s === '.' || s === '..' || s.includes('\0')))
    throw new TrustlessBadRequestError(`${rawPath}: a path segment that is . or .. or holds NUL`)
  return { rawPath, cidText, cid: parseCidSegment(cidText), segments }
}

/** Whether `If-None-Match` names `etag` (weak comparison, RFC 9110 13.1.2). */
function matches(ifNoneMatch: string | undefined, etag: string): boolean {
  if (!ifNoneMatch) return false
  const bare = etag.replace(/^W\//, '')
  return ifNoneMatch
    .split(',')
    .map((t) => t.trim())
    .some((t) => t === '*' || t.replace(/^W\//, '') === bare)
}

function carEtag(t: Target, wanted: Extract<Wanted, { format: 'car' }>, terminal: CID): string {
  const eb = wanted.entityBytes ? `${wanted.entityBytes.from}:${wanted.entityBytes.to}` : ''
  const h = createHash('sha256')
    .update(`${t.cid}\0${t.segments.join('/')}\0${wanted.scope}\0${eb}\0${wanted.dups ? 'y' : 'n'}\0dfs`)
    .digest('hex')
    .slice(0, 16)
  return `"${terminal}.car.${wanted.scope}.${h}"`
}

/** A single `bytes=a-b`, `bytes=a-` or `bytes=-n` range of `size` bytes; undefined for none or several. */
function singleRange(header: string | undefined, size: number): { start: number; end: number } | undefined {
  if (!header) return undefined
  const m = /^bytes=(\d*)-(\d*)$/.exec(header.trim())
  if (!m || (m[1] === '' && m[2] === '')) return undefined
  if (m[1] === '') {
    const n = Number(m[2])
    if (n === 0) throw new TrustlessRangeError(header, size)
    return { start: Math.max(0, size - n), end: size - 1 }
  }
  const start = Number(m[1])
  const end = m[2] === '' ? size - 1 : Math.min(Number(m[2]), size - 1)
  if (start >= size) throw new TrustlessRangeError(header, size)
  if (end < start) return undefined
  return { start, end }
}

function sendError(reply: FastifyReply, err: unknown): FastifyReply | undefined {
  if (!isCidmirrorError(err)) return undefined
  const key = errorKeyOf(err.code)
  if (!isHttpErrorKey(key)) return undefined
  if (err instanceof TrustlessRangeError) reply.header('content-range', `bytes */${err.size}`)
  return reply
    .code(httpStatusOf(key))
    .header('cache-control', 'no-store')
    .type('application/json; charset=utf-8')
    .send({ error: err.message, code: err.code })
}

export async function trustlessGateway(app: FastifyInstance, opts: TrustlessGatewayOptions): Promise<void> {
  const source = new BlockSource(opts.blocks, opts.node)
  const maxDistinct = opts.maxDistinct ?? DEFAULT_MAX_DISTINCT

  const handle = async (request: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> => {
    const abort = new AbortController()
    request.raw.once('close', () => abort.abort())
    reply.raw.once('close', () => abort.abort())
    const head = request.method === 'HEAD'
    try {
      const t = targetOf(request.url)
      const query = request.query as Record<string, string | string[] | undefined>
      const wanted = negotiate(query, request.headers.accept)
      const filename = filenameOf(query)
      const onlyIfCached = /(^|,)\s*only-if-cached\s*(,|$)/i.test(request.headers['cache-control'] ?? '')
      if (wanted.format === 'raw' && t.segments.length > 0)
        throw new TrustlessBadRequestError(
          `${t.rawPath}: a raw block is asked by CID alone; a path needs format=car`,
        )
      let resolved: ResolvedPath
      let held: BlockGetter = source
      try {
        resolved = await resolvePath(source, t.cid, t.segments, abort.signal)
      } catch (err) {
        if (onlyIfCached && err instanceof TrustlessNotHeldError) throw new TrustlessNotCachedError(err.cid)
        // A one-chunk file at the path's end that left this disk: its block fetched back, verified.
        const filled =
          err instanceof TrustlessNoSuchPathError && opts.fetchFile && wanted.format === 'car'
            ? await withFetchedLeaf(source, t.cid, t.segments, opts.fetchFile, abort.signal)
            : undefined
        if (!filled) throw err
        held = filled
        resolved = await resolvePath(held, t.cid, t.segments, abort.signal)
      }
      reply
        .header('cache-control', IMMUTABLE)
        .header('x-ipfs-path', t.rawPath)
        .header('x-ipfs-roots', resolved.roots.map((c) => c.toString()).join(','))
        .header('x-content-type-options', 'nosniff')
        .header('vary', 'Accept')
      if (wanted.negotiated)
        reply.header('content-location', `${t.rawPath}?format=${wanted.format}${queryTail(request.url)}`)

      if (wanted.format === 'raw') {
        const bytes = resolved.terminal.bytes
        const etag = `"${t.cidText}.raw"`
        reply
          .header('etag', etag)
          .header('content-disposition', contentDisposition(filename ?? `${t.cidText}.bin`))
          .header('accept-ranges', 'bytes')
          .type(RAW_TYPE)
        if (matches(request.headers['if-none-match'], etag)) return reply.code(304).send()
        const range = singleRange(request.headers.range, bytes.length)
        const body = range ? Buffer.from(bytes).subarray(range.start, range.end + 1) : Buffer.from(bytes)
        if (range)
          reply.code(206).header('content-range', `bytes ${range.start}-${range.end}/${bytes.length}`)
        reply.header('content-length', body.length)
        return head ? reply.send() : reply.send(body)
      }

      const terminal = resolved.terminal.cid
      const etag = carEtag(t, wanted, terminal)
      reply
        .header('etag', etag)
        .header('content-disposition', contentDisposition(filename ?? `${t.cidText}.car`))
        .header('accept-ranges', 'none')
        .type(`${CAR_TYPE}; version=1; order=dfs; dups=${wanted.dups ? 'y' : 'n'}`)
      if (matches(request.headers['if-none-match'], etag)) return reply.code(304).send()
      if (head) return reply.send()
      const src =
        opts.fetchFile && wanted.scope !== 'block'
          ? await fillingSource(held, resolved.terminal, opts.fetchFile, abort.signal)
          : held
      const blocks = carBlocks(src, resolved, {
        scope: wanted.scope,
        entityBytes: wanted.entityBytes,
        dups: wanted.dups,
        maxDistinct,
        signal: abort.signal,
        ...(opts.fetchFile && wanted.scope === 'all' ? { fill: leafFill(opts.fetchFile, abort.signal) } : {}),
      })
      return reply.send(carStream([t.cid], blocks))
    } catch (err) {
      const sent = sendError(reply, err)
      if (sent) return sent
      throw err
    }
  }

  app.route({ method: 'GET', url: '/ipfs/*', exposeHeadRoute: false, handler: handle })
  app.route({ method: 'HEAD', url: '/ipfs/*', handler: handle })
}

/** The request's query minus `format`, as `&...` (for Content-Location). */
function queryTail(url: string): string {
  const q = url.indexOf('?')
  if (q < 0) return ''
  const params = new URLSearchParams(url.slice(q + 1))
  params.delete('format')
  const s = params.toString()
  return s ? `&${s}` : ''
}
