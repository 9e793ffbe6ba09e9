/**
 * The gateway's HTTP server: fastify for its routes and plugins (the root page, `/metrics`, the
 * trustless `/ipfs/` routes, the status page), and, in front of fastify's router, a request handler of
 * its own for the mirror paths: a GET of a cached file is a map lookup and one `res.end()` with
 * precomputed headers, no plugin chain, no per-request allocation of header objects. DESIGN's figures
 * say why: `@fastify/static` serves at 0.15x nginx here.
 *
 * Node's HTTP/1.1 server keeps connections alive and answers pipelined requests in order.
 */
import { close as closeFd, fstat, open, realpathSync, statSync } from 'node:fs'
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo, Socket } from 'node:net'
import { sep } from 'node:path'
import Fastify, {
  type FastifyInstance,
  type FastifyPluginAsync,
  type FastifyPluginCallback,
  LogController,
} from 'fastify'
import type { Logger } from 'pino'
import type { Registry } from 'prom-client'
import { errorInfo } from '../error-codes.ts'
import { isCidmirrorError } from '../errors.ts'
import type { BlockReader, CopyRecord, IndexReader, PathRecord } from '../index/index.ts'
import type { IpfsNode } from '../ipfs/index.ts'
import { AccessLog, type AccessLogOptions } from './access-log.ts'
import { evaluate } from './conditional.ts'
import { GatewayPathError, NoFetchBackError } from './errors.ts'
import { FetchBackShortBodyError } from './fetch-back/errors.ts'
import type { ByteRange, EvictedFile, FetchBack } from './index.ts'
import { listEntries, sendListing } from './listing.ts'
import { metalinkOf } from './metalink.ts'
import { GatewayMetrics } from './metrics.ts'
import { contentTypes, type MimeMap } from './mime.ts'
import { type FileMeta, MirrorFiles, type ServedMirror } from './mirror-files.ts'
import { type BodySource, PastRoutes, type PastVersions, type Representation } from './past/routes.ts'
import type { RecentRequests } from './recent.ts'
import { parseTarget } from './request-path.ts'
import { RequestTimes } from './request-times.ts'
import { BufferPool, sendRange } from './send-file.ts'
import { BlockSource } from './trustless/blocks.ts'

/** A fastify plugin the gateway registers, with the options it is given (the trustless routes, the status page). */
export interface GatewayPlugin {
  name: string
  // biome-ignore lint/suspicious/noExplicitAny: each plugin has options of its own type
  plugin: FastifyPluginAsync<any> | FastifyPluginCallback<any>
  options: Record<string, unknown>
}

export interface GatewayLimits {
  /** Open client connections at most; more are refused (closed at once). Default 4096. */
  maxConnections: number
  /** Time to receive a request's headers (slowloris). Default 20 s. */
  headersTimeoutMs: number
  /** Time to receive a whole request. Default 30 s. */
  requestTimeoutMs: number
  /** Idle keep-alive connections are closed after this. Default 75 s. */
  idleTimeoutMs: number
  /** A response whose client takes nothing for this long is dropped. Default 60 s. */
  sendTimeoutMs: number
  /** Longest request target (path and query). Default 8 KiB: a longer one gets 414. */
  maxUrlBytes: number
  /** Request line and headers at most (Node's `maxHeaderSize`). Default 16 KiB: more gets 431. */
  maxHeaderBytes: number
}

export const DEFAULT_LIMITS: GatewayLimits = {
  maxConnections: 4096,
  headersTimeoutMs: 20_000,
  requestTimeoutMs: 30_000,
  idleTimeoutMs: 75_000,
  sendTimeoutMs: 60_000,
  maxUrlBytes: 8192,
  maxHeaderBytes: 16_384,
}

export interface GatewayMirrorOptions {
  name: string
  /** URL path, default `/<name>/`. */
  path?: string
  root: string
  duplicates?: string[]
}

export interface GatewayOptions {
  host: string
  port: number
  mirrors: GatewayMirrorOptions[]
  reader: IndexReader
  /** A path's copies, for `Link: rel=duplicate` to their retrieval URLs. */
  copiesOf?: (mirror: string, record: PathRecord) => Promise<CopyRecord[]>
  /** Calls back on each committed scan; the gateway drops its cache then. Returns an unsubscribe. */
  onScanCommitted?: (fn: () => void) => () => void
  fetchBack?: FetchBack
  log: Logger
  limits?: Partial<GatewayLimits>
  cache?: { bytes?: number; fileBytes?: number; entries?: number; statTtlMs?: number }
  /** Read size for large files (default 1 MiB) and buffers in all (default 64). */
  readBufferBytes?: number
  readBuffers?: number
  mime?: MimeMap
  accessLog?: AccessLogOptions
  /** Who may read `/metrics`: loopback clients (default), anyone, or nobody. */
  metrics?: 'loopback' | 'public' | 'off'
  /** Other registries served at `/metrics` with the gateway's (the replicator's). */
  extraMetrics?: Registry[]
  plugins?: GatewayPlugin[]
  /** Where each answered request is noted (the status page's recent requests). */
  recent?: RecentRequests
  /** Where each file's GET or HEAD is noted, for the janitor's `not_requested_within` (the daemon's). */
  requests?: RequestTimes
  /**
   * What left the mirror (`/_deleted/`, plain `/ipfs/<cid>[/path]` of past roots): the block map (and
   * the local node's blocks) to walk past trees, and the index's past versions for their metadata.
   */
  past?: { blocks: BlockReader; node?: IpfsNode; versions?: PastVersions }
}

export interface Gateway {
  /** `http://host:port`. */
  url: string
  port: number
  app: FastifyInstance
  server: Server
  metrics: GatewayMetrics
  files: MirrorFiles
  close(): Promise<void>
}

/** Paths the gateway's own routes take; no mirror may be served there. */
const RESERVED = ['ipfs', 'ipns', '_status', '_status.json', '_deleted', '_roots', 'metrics', 'favicon.ico']

function servedMirrors(list: GatewayMirrorOptions[]): ServedMirror[] {
  const seen = new Map<string, string>()
  return list.map((m) => {
    let url = m.path ?? `/${m.name}/`
    if (!url.startsWith('/')) url = `/${url}`
    if (!url.endsWith('/')) url = `${url}/`
    const parsed = parseTarget(url)
    if (!parsed.ok || parsed.segments.length === 0)
      throw new GatewayPathError(
        `mirror ${m.name}: ${JSON.stringify(m.path)} is not a path to serve a mirror at`,
      )
    if (RESERVED.includes(parsed.segments[0]!))
      throw new GatewayPathError(
        `mirror ${m.name}: ${url} is taken by the gateway's own routes (${RESERVED.join(', ')})`,
      )
    const norm = `/${parsed.segments.join('/')}/`
    for (const [other, otherName] of seen) {
      if (norm.startsWith(other) || other.startsWith(norm))
        throw new GatewayPathError(
          `mirrors ${otherName} and ${m.name} are both served at ${other.length < norm.length ? other : norm}`,
        )
    }
    seen.set(norm, m.name)
    return {
      name: m.name,
      url: norm,
      prefix: parsed.segments,
      root: m.root,
      duplicates: (m.duplicates ?? []).map((d) => (d.endsWith('/') ? d : `${d}/`)),
    }
  })
}

function plain(res: ServerResponse, status: number, text: string, extra: string[] = []): number {
  const body = `${text}\n`
  res.writeHead(status, [
    'Content-Type',
    'text/plain; charset=utf-8',
    'Content-Length',
    String(Buffer.byteLength(body)),
    ...extra,
  ])
  res.end(res.req.method === 'HEAD' ? undefined : body)
  return res.req.method === 'HEAD' ? 0 : Buffer.byteLength(body)
}

function isLoopback(addr: string | undefined): boolean {
  return (
    addr === '127.0.0.1' ||
    addr === '::1' ||
    addr === '::ffff:127.0.0.1' ||
    (addr?.startsWith('127.') ?? false)
  )
}

export async function startGateway(o: GatewayOptions): Promise<Gateway> {
  const limits = { ...DEFAULT_LIMITS, ...o.limits }
  const mirrors = servedMirrors(o.mirrors)
  const log = o.log
  const files = new MirrorFiles({
    reader: o.reader,
    ...(o.copiesOf ? { copiesOf: o.copiesOf } : {}),
    contentType: contentTypes(o.mime),
    ...(o.cache?.bytes !== undefined ? { cacheBytes: o.cache.bytes } : {}),
    ...(o.cache?.fileBytes !== undefined ? { cacheFileBytes: o.cache.fileBytes } : {}),
    ...(o.cache?.entries !== undefined ? { cacheEntries: o.cache.entries } : {}),
    ...(o.cache?.statTtlMs !== undefined ? { statTtlMs: o.cache.statTtlMs } : {}),
  })
  const unsubscribe = o.onScanCommitted?.(() => files.invalidate())
  const metrics = new GatewayMetrics({ cacheStats: () => files.cacheStats })
  const accessLog = o.accessLog ? new AccessLog(o.accessLog) : undefined
  const pool = new BufferPool(o.readBufferBytes ?? 1 << 20, o.readBuffers ?? 64)

  /** Every answer ends here: metrics and the access log line. */
  const recent = o.recent
  const requests = o.requests
  const done = (req: IncomingMessage, status: number, bytes: number, t0: number): undefined => {
    const ms = performance.now() - t0
    metrics.done(status, bytes, ms / 1000)
    recent?.push({
      time: Date.now(),
      method: req.method ?? '-',
      path: req.url ?? '-',
      status,
      bytes,
      durationMs: ms,
      ...(req.socket.remoteAddress ? { remote: req.socket.remoteAddress } : {}),
    })
    accessLog?.write(
      req.socket.remoteAddress,
      req.method ?? '-',
      req.url ?? '-',
      req.httpVersion,
      status,
      bytes,
      req.headers.referer,
      req.headers['user-agent'],
    )
    return undefined
  }

  const mirrorOf = (rawPath: string): ServedMirror | undefined => {
    for (const m of mirrors) {
      if (rawPath.startsWith(m.url) || (rawPath.length === m.url.length - 1 && m.url.startsWith(rawPath)))
        return m
    }
    return undefined
  }

  /**
   * What a GET or HEAD of `v` sends, by its conditional and Range headers: 304 and 416 are answered
   * here (undefined back); otherwise the status and the byte span of the body (all of it unless 206).
   */
  const bodyToSend = (
    req: IncomingMessage,
    res: ServerResponse,
    v: { etag: string; lastModified: string; size: number; head: string[] },
    t0: number,
  ): { status: 200 | 206; start: number; end: number } | undefined => {
    const out = evaluate(req.headers, v)
    if (out.status === 304) {
      res.writeHead(304, v.head)
      res.end()
      return done(req, 304, 0, t0)
    }
    if (out.status === 416) {
      const text = `416 Range Not Satisfiable: the file has ${v.size} bytes`
      return done(req, 416, plain(res, 416, text, ['Content-Range', `bytes */${v.size}`]), t0)
    }
    return out.status === 206 ? out : { status: 200, start: 0, end: v.size - 1 }
  }

  /** A file's answer (GET or HEAD), from its cached meta. */
  const serveFile = (
    req: IncomingMessage,
    res: ServerResponse,
    meta: FileMeta,
    t0: number,
    retry: boolean,
  ): undefined => {
    if (requests) {
      meta.requestKey ??= RequestTimes.key(meta.mirror.name, meta.rel)
      requests.note(meta.requestKey)
    }
    const head = req.method === 'HEAD'
    const accept = req.headers.accept
    if (accept?.includes('application/metalink4+xml')) {
      return serveMetalink(req, res, meta, t0)
    }
    const out = bodyToSend(req, res, meta, t0)
    if (!out) return
    const { start, end } = out
    const length = end - start + 1
    if (meta.state === 'evicted') {
      const file = {
        mirror: meta.mirror.name,
        path: meta.rel,
        cid: meta.cid!,
        size: meta.size,
        mtimeMs: meta.mtimeMs,
      }
      void sendFetched(req, res, file, meta.head, out.status, start, end, t0)
      return
    }
    if (meta.body !== undefined) {
      if (out.status === 200) {
        meta.full ??= [...meta.head, 'Content-Length', String(meta.size)]
        res.writeHead(200, meta.full)
        res.end(head ? undefined : meta.body)
      } else {
        res.writeHead(206, [
          ...meta.head,
          'Content-Length',
          String(length),
          'Content-Range',
          `bytes ${start}-${end}/${meta.size}`,
        ])
        res.end(head ? undefined : meta.body.subarray(start, end + 1))
      }
      return done(req, out.status, head ? 0 : length, t0)
    }
    // A large file: opened per request, and its stat checked against the headers about to be sent.
    open(meta.abs, 'r', (err, fd) => {
      if (err) {
        files.forget(meta)
        if (retry) return void slow(req, res, t0, false)
        return done(req, 404, plain(res, 404, '404 Not Found'), t0)
      }
      fstat(fd, (err2, st) => {
        if (
          err2 ||
          st.size !== meta.size ||
          st.mtimeMs !== meta.mtimeMs ||
          st.ctimeMs !== meta.ctimeMs ||
          st.ino !== meta.ino
        ) {
          closeFd(fd, () => {})
          files.forget(meta)
          if (retry) return void slow(req, res, t0, false)
          return done(
            req,
            503,
            plain(res, 503, '503 Service Unavailable: the file is changing; try again'),
            t0,
          )
        }
        const headers = [...meta.head, 'Content-Length', String(length)]
        if (out.status === 206) headers.push('Content-Range', `bytes ${start}-${end}/${meta.size}`)
        res.writeHead(out.status, headers)
        if (head || length === 0) {
          res.end()
          closeFd(fd, () => {})
          return done(req, out.status, 0, t0)
        }
        sendRange(res, fd, start, end, pool).then(
          (sent) => {
            closeFd(fd, () => {})
            done(req, out.status, sent, t0)
          },
          () => {
            closeFd(fd, () => {})
            done(req, out.status, 0, t0)
          },
        )
      })
    })
  }

  const serveMetalink = (
    req: IncomingMessage,
    res: ServerResponse,
    meta: FileMeta,
    t0: number,
  ): undefined => {
    const host = req.headers.host ?? `${o.host}:${port}`
    const self = `http://${host}${meta.mirror.url}${meta.rel.split('/').map(encodeURIComponent).join('/')}`
    const body = metalinkOf(meta, self)
    res.writeHead(200, [
      'Content-Type',
      'application/metalink4+xml',
      'Content-Length',
      String(Buffer.byteLength(body)),
    ])
    res.end(req.method === 'HEAD' ? undefined : body)
    done(req, 200, Buffer.byteLength(body), t0)
  }

  /**
   * A file whose bytes are not on this disk (evicted, deleted upstream, a past version): headers from
   * the index, bytes from the fetch-back, checked block by block there.
   */
  const sendFetched = async (
    req: IncomingMessage,
    res: ServerResponse,
    file: EvictedFile,
    head: string[],
    status: 200 | 206,
    start: number,
    end: number,
    t0: number,
  ): Promise<undefined> => {
    const length = end - start + 1
    const headers = [...head, 'Content-Length', String(length)]
    if (status === 206) headers.push('Content-Range', `bytes ${start}-${end}/${file.size}`)
    if (req.method === 'HEAD') {
      res.writeHead(status, headers)
      res.end()
      return done(req, status, 0, t0)
    }
    if (!o.fetchBack) {
      const err = new NoFetchBackError(file)
      return done(req, 503, plain(res, 503, `503 Service Unavailable: ${err.message} (${err.code})`), t0)
    }
    const ctl = new AbortController()
    res.once('close', () => ctl.abort())
    const range: ByteRange | undefined = status === 206 ? { start, end } : undefined
    let result: Awaited<ReturnType<FetchBack['open']>>
    try {
      result = await o.fetchBack.open(file, range, ctl.signal)
    } catch (err) {
      const code = isCidmirrorError(err) ? errorInfo(err.code)?.http : undefined
      const s = code !== undefined && code >= 500 ? code : 502
      log.warn(
        { mirror: file.mirror, path: file.path, cid: file.cid, err: (err as Error).message },
        'fetch-back failed',
      )
      metrics.fetchBack('none', 'failed')
      if (res.destroyed) return done(req, 499, 0, t0)
      return done(
        req,
        s,
        plain(res, s, `${s} ${s === 504 ? 'Gateway Timeout' : 'Bad Gateway'}: ${(err as Error).message}`),
        t0,
      )
    }
    res.writeHead(status, headers)
    let sent = 0
    let flushed: Promise<unknown> = Promise.resolve()
    try {
      for await (const chunk of result.body) {
        if (res.destroyed) break
        sent += chunk.length
        flushed = new Promise((resolve) => res.write(chunk, resolve))
        if (res.writableNeedDrain) {
          await new Promise<void>((resolve) => {
            const go = (): void => {
              res.off('drain', go)
              res.off('close', go)
              resolve()
            }
            res.on('drain', go)
            res.on('close', go)
          })
        }
      }
      if (sent !== length) throw new FetchBackShortBodyError(sent, length)
      res.end()
      metrics.fetchBack(result.source, 'ok')
    } catch (err) {
      // The status line is out: only an aborted connection tells the client the body is not whole.
      log.warn(
        {
          mirror: file.mirror,
          path: file.path,
          source: result.source,
          sent,
          err: (err as Error).message,
        },
        'fetch-back failed mid-body; connection aborted',
      )
      metrics.fetchBack(result.source, res.destroyed ? 'aborted' : 'failed')
      // What was verified goes out first (the client then sees a body short of its Content-Length).
      await flushed
      res.destroy(err as Error)
      req.socket.destroy()
    }
    done(req, status, sent, t0)
  }

  /** Bytes `start..end` of a file on disk whose stat must still be `expect` (the index's record). */
  const sendDisk = (
    req: IncomingMessage,
    res: ServerResponse,
    abs: string,
    expect: { size: number; mtimeMs: number; ctimeMs: number; ino: number },
    head: string[],
    status: 200 | 206,
    start: number,
    end: number,
    t0: number,
  ): Promise<undefined> =>
    new Promise((resolve) => {
      const finish = (s: number, bytes: number): void => resolve(done(req, s, bytes, t0))
      open(abs, 'r', (err, fd) => {
        if (err)
          return finish(503, plain(res, 503, '503 Service Unavailable: the file is changing; try again'))
        fstat(fd, (err2, st) => {
          if (
            err2 ||
            st.size !== expect.size ||
            st.mtimeMs !== expect.mtimeMs ||
            st.ctimeMs !== expect.ctimeMs ||
            st.ino !== expect.ino
          ) {
            closeFd(fd, () => {})
            return finish(503, plain(res, 503, '503 Service Unavailable: the file is changing; try again'))
          }
          const headers = [...head, 'Content-Length', String(end - start + 1)]
          if (status === 206) headers.push('Content-Range', `bytes ${start}-${end}/${st.size}`)
          res.writeHead(status, headers)
          if (req.method === 'HEAD' || end < start) {
            res.end()
            closeFd(fd, () => {})
            return finish(status, 0)
          }
          sendRange(res, fd, start, end, pool).then(
            (sent) => {
              closeFd(fd, () => {})
              finish(status, sent)
            },
            () => {
              closeFd(fd, () => {})
              finish(status, 0)
            },
          )
        })
      })
    })

  /** A GET or HEAD of `rep`: conditional requests and ranges answered, bytes from `body`. */
  const send = async (
    req: IncomingMessage,
    res: ServerResponse,
    rep: Representation,
    body: BodySource,
    t0: number,
  ): Promise<undefined> => {
    const out = bodyToSend(req, res, rep, t0)
    if (!out) return
    const { start, end } = out
    if (body.kind === 'disk')
      return sendDisk(req, res, body.abs, body.stat, rep.head, out.status, start, end, t0)
    if (rep.size === 0) {
      res.writeHead(200, [...rep.head, 'Content-Length', '0'])
      res.end()
      return done(req, 200, 0, t0)
    }
    return sendFetched(req, res, body.file, rep.head, out.status, start, end, t0)
  }

  const past = new PastRoutes({
    reader: o.reader,
    mirrors,
    ...(o.past ? { blocks: new BlockSource(o.past.blocks, o.past.node) } : {}),
    ...(o.past?.versions ? { versions: o.past.versions } : {}),
    contentType: contentTypes(o.mime),
    done,
    plain,
    send,
    realRootOf: (m) => files.realRootOf(m),
    onDisk: (abs, realRoot, disk) => {
      try {
        const real = realpathSync.native(abs)
        if (!real.startsWith(realRoot + sep)) return false
        const st = statSync(real)
        return (
          st.isFile() &&
          st.size === disk.stat.size &&
          st.mtimeMs === disk.stat.mtimeMs &&
          st.ctimeMs === disk.stat.ctimeMs &&
          st.ino === disk.stat.ino
        )
      } catch {
        return false
      }
    },
  })

  /** Anything under a mirror path that the cache did not answer. */
  const slow = async (
    req: IncomingMessage,
    res: ServerResponse,
    t0: number,
    retry = true,
  ): Promise<undefined> => {
    const url = req.url!
    const q = url.indexOf('?')
    const rawPath = q < 0 ? url : url.slice(0, q)
    const m = mirrorOf(rawPath)!
    const parsed = parseTarget(url)
    if (!parsed.ok) return done(req, 400, plain(res, 400, `400 Bad Request: ${parsed.reason}`), t0)
    if (req.method !== 'GET' && req.method !== 'HEAD')
      return done(req, 405, plain(res, 405, '405 Method Not Allowed', ['Allow', 'GET, HEAD']), t0)
    const segments = parsed.segments.slice(m.prefix.length)
    const now = performance.now()
    let r = await files.resolve(m, segments, now)
    let metalink = false
    const last = segments[segments.length - 1]
    if (r.kind === 'missing' && last !== undefined && last.endsWith('.meta4') && last.length > 6) {
      const target = await files.resolve(m, [...segments.slice(0, -1), last.slice(0, -6)], now)
      if (target.kind === 'file') {
        r = target
        metalink = true
      }
    }
    if (r.kind === 'missing') return done(req, 404, plain(res, 404, '404 Not Found'), t0)
    if (r.kind === 'dir') {
      if (!parsed.slash) {
        const location = `${rawPath}/${q < 0 ? '' : url.slice(q)}`
        return done(
          req,
          301,
          plain(res, 301, `301 Moved Permanently: ${location}`, ['Location', location]),
          t0,
        )
      }
      const realRoot = files.realRootOf(m)
      const { entries, truncated } = await listEntries(o.reader, m.name, r.rel, r.abs, realRoot ?? m.root)
      return done(req, 200, sendListing(req, res, rawPath, entries, truncated, parsed.query), t0)
    }
    if (parsed.slash) return done(req, 404, plain(res, 404, '404 Not Found'), t0)
    if (metalink) return serveMetalink(req, res, r.meta, t0)
    files.remember(rawPath, r.meta)
    return serveFile(req, res, r.meta, t0, retry)
  }

  /** The hot path: true when the request is a mirror's (answered here), false for fastify's routes. */
  const hot = (req: IncomingMessage, res: ServerResponse): boolean => {
    const t0 = performance.now()
    const url = req.url ?? '/'
    if (url.length > limits.maxUrlBytes) {
      done(req, 414, plain(res, 414, '414 URI Too Long'), t0)
      return true
    }
    const q = url.indexOf('?')
    const rawPath = q < 0 ? url : url.slice(0, q)
    const method = req.method
    if (method === 'GET' || method === 'HEAD') {
      const meta = files.cached(rawPath, t0)
      if (meta !== undefined) {
        serveFile(req, res, meta, t0, true)
        return true
      }
    }
    if (mirrorOf(rawPath) === undefined) {
      if (!past.takes(rawPath, url, req.headers.accept)) return false
      past.handle(req, res, t0).catch((err) => {
        log.error({ err, url }, 'gateway request failed')
        if (!res.headersSent) done(req, 500, plain(res, 500, '500 Internal Server Error'), t0)
        else res.destroy()
      })
      return true
    }
    slow(req, res, t0).catch((err) => {
      log.error({ err, url }, 'gateway request failed')
      if (!res.headersSent) done(req, 500, plain(res, 500, '500 Internal Server Error'), t0)
      else res.destroy()
    })
    return true
  }

  let server!: Server
  const app = Fastify({
    loggerInstance: log,
    logController: new LogController({ disableRequestLogging: true }),
    serverFactory: (handler) => {
      server = createServer(
        {
          maxHeaderSize: limits.maxHeaderBytes,
          headersTimeout: limits.headersTimeoutMs,
          requestTimeout: limits.requestTimeoutMs,
          keepAliveTimeout: limits.idleTimeoutMs,
          connectionsCheckingInterval: Math.min(1000, limits.headersTimeoutMs),
        },
        (req, res) => {
          if (!hot(req, res)) handler(req, res)
        },
      )
      return server
    },
  }) as unknown as FastifyInstance
  app.addHook('onResponse', async (req, reply) => {
    const len = Number(reply.getHeader('content-length') ?? 0)
    done(req.raw, reply.statusCode, req.method === 'HEAD' ? 0 : len, performance.now() - reply.elapsedTime)
  })
  app.get('/', async (req, reply) => {
    const list = mirrors.map((m) => ({ name: m.name, url: m.url }))
    if (req.headers.accept?.includes('application/json')) return { mirrors: list }
    reply.type('text/html; charset=utf-8')
    // Beside each mirror, what left it: its deleted files and its past syncs' roots.
    const rows = list
      .map(
        (m) =>
          `<li><a href="${m.url}">${m.name}</a> <small>(<a href="/_deleted${m.url}">deleted upstream</a>, <a href="/_roots/${encodeURIComponent(m.name)}">past roots</a>)</small></li>`,
      )
      .join('\n')
    return `<!doctype html>\n<html><head><meta charset="utf-8"><title>Mirrors</title></head>\n<body><h1>Mirrors</h1>\n<ul>\n${rows}\n</ul></body></html>\n`
  })
  const metricsAccess = o.metrics ?? 'loopback'
  if (metricsAccess !== 'off') {
    app.get('/metrics', async (req, reply) => {
      if (metricsAccess === 'loopback' && !isLoopback(req.socket.remoteAddress)) {
        return reply
          .code(403)
          .type('text/plain')
          .send('403 Forbidden: /metrics answers loopback clients only\n')
      }
      const registries = [metrics.registry, ...(o.extraMetrics ?? [])]
      const texts = await Promise.all(registries.map((r) => r.metrics()))
      reply.header('content-type', metrics.registry.contentType)
      return texts.join('\n')
    })
  }
  for (const p of o.plugins ?? []) await app.register(p.plugin, p.options)

  await app.listen({ host: o.host, port: o.port })
  server.maxConnections = limits.maxConnections
  server.setTimeout(limits.sendTimeoutMs, (socket: Socket) => socket.destroy())
  server.on('connection', (socket: Socket) => {
    metrics.open++
    socket.once('close', () => {
      metrics.open--
    })
  })
  const port = (server.address() as AddressInfo).port
  const hostPart = o.host.includes(':') ? `[${o.host}]` : o.host
  log.info({ url: `http://${hostPart}:${port}`, mirrors: mirrors.map((m) => m.url) }, 'gateway listening')
  return {
    url: `http://${hostPart}:${port}`,
    port,
    app,
    server,
    metrics,
    files,
    close: async () => {
      unsubscribe?.()
      server.closeIdleConnections()
      const closing = app.close()
      // Responses still streaming (a large download) are cut: a stop is a stop.
      setTimeout(() => server.closeAllConnections(), 2000).unref()
      await closing
      await accessLog?.close()
    },
  }
}
