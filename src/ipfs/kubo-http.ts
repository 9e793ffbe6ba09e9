import { randomBytes } from 'node:crypto'
import { Readable } from 'node:stream'
import { multiaddrToUri } from '@multiformats/multiaddr-to-uri'
import { Agent, type Dispatcher, request } from 'undici'
import { IpfsAuthRefusedError, IpfsCommandError, IpfsUnreachableError } from './errors.ts'

/** Query parameters of one RPC call, in order; `arg` may repeat. */
export type Params = [string, string][]

/** Network failures that mean "nobody answers there", as opposed to an answer that is an error. */
const UNREACHABLE = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENOTFOUND',
  'EAI_AGAIN',
  'ETIMEDOUT',
  'EPIPE',
  'UND_ERR_SOCKET',
  'UND_ERR_CONNECT_TIMEOUT',
  'UND_ERR_CLOSED',
])

/** One file part of a multipart body, as Kubo's `add` and `dag import` take them. */
export interface FilePart {
  filename: string
  /** Extra part headers (`Abspath-Encoded` for a nocopy add). */
  headers?: Record<string, string>
  /** The part's bytes, opened only when the body reaches the part. */
  content: () => AsyncIterable<Uint8Array> | Iterable<Uint8Array>
  /** The content's length when known: with every part's known, the request carries a Content-Length. */
  size?: number
  /** A directory part (no content): the parts after it named `<its name>/...` are its entries. */
  directory?: boolean
}

/** A streamed `multipart/form-data` body of file parts, and its request headers. */
export function multipart(parts: FilePart[]): { body: Readable; headers: Record<string, string> } {
  const boundary = `cidmirror-${randomBytes(12).toString('hex')}`
  const heads = parts.map((part, i) => {
    const extra = Object.entries(part.headers ?? {})
      .map(([k, v]) => `${k}: ${v}\r\n`)
      .join('')
    return Buffer.from(
      `${i === 0 ? '' : '\r\n'}--${boundary}\r\n` +
        `Content-Disposition: form-data; name="file"; filename="${encodeURIComponent(part.filename)}"\r\n` +
        `Content-Type: ${part.directory ? 'application/x-directory' : 'application/octet-stream'}\r\n${extra}\r\n`,
    )
  })
  const tail = Buffer.from(`\r\n--${boundary}--\r\n`)
  async function* body(): AsyncGenerator<Uint8Array> {
    for (const [i, part] of parts.entries()) {
      yield heads[i]!
      yield* part.content()
    }
    yield tail
  }
  const headers: Record<string, string> = { 'content-type': `multipart/form-data; boundary=${boundary}` }
  if (parts.every((p) => p.directory || p.size !== undefined)) {
    const length =
      heads.reduce((n, h) => n + h.length, tail.length) + parts.reduce((n, p) => n + (p.size ?? 0), 0)
    headers['content-length'] = String(length)
  }
  return { body: Readable.from(body()), headers }
}

/** The RPC base URL (`http://host:port`) from a multiaddr (`/ip4/127.0.0.1/tcp/5001`) or a URL. */
export function rpcUrl(api: string): string {
  const url = api.startsWith('/') ? multiaddrToUri(api) : api
  return url.replace(/\/+$/, '').replace(/\/api\/v0$/, '')
}

/**
 * The `Authorization` header of an RPC API that needs one (Kubo's `API.Authorizations`, since 0.25):
 * `user:password` is basic auth, anything else a bearer token (`Bearer ...` taken as written).
 */
export function rpcAuthorization(token: string): string {
  if (/^bearer /i.test(token)) return token
  return token.includes(':') ? `Basic ${Buffer.from(token).toString('base64')}` : `Bearer ${token}`
}

/**
 * Kubo's RPC over undici `request`, for the calls `kubo-rpc-client` cannot make (a nocopy add with an
 * `Abspath-Encoded` part, `filestore verify` with `remove-bad-blocks`, `provide once`, a `dag export`
 * that stays offline). undici rather than fetch: fetch refuses some ports, and undici gives the stream
 * trailers where Kubo reports an error that happened after the 200.
 */
export class KuboHttp {
  readonly url: string
  readonly #agent: Agent
  readonly #authorization: string | undefined
  readonly #what: string

  /**
   * `authorization`: the header every call sends (rpcAuthorization), when the API needs one; `what`:
   * the config key of the address, which a refusal of the credentials names.
   */
  constructor(api: string, authorization?: string, what = 'IPFS RPC API') {
    this.url = rpcUrl(api)
    this.#authorization = authorization
    this.#what = what
    // Kubo answers long commands (pin add of a big tree) only when done: no body timeout.
    this.#agent = new Agent({ bodyTimeout: 0, headersTimeout: 0, keepAliveTimeout: 10_000 })
  }

  /** POST `/api/v0/<command>`; resolves to the open response once its status is 200. */
  async post(
    command: string,
    params: Params,
    opts: {
      body?: Dispatcher.DispatchOptions['body']
      headers?: Record<string, string>
      signal?: AbortSignal
    } = {},
  ): Promise<Dispatcher.ResponseData> {
    const query = new URLSearchParams(params).toString()
    let res: Dispatcher.ResponseData
    try {
      res = await request(`${this.url}/api/v0/${command}${query ? `?${query}` : ''}`, {
        method: 'POST',
        dispatcher: this.#agent,
        body: opts.body ?? null,
        headers: this.#authorization ? { ...opts.headers, authorization: this.#authorization } : opts.headers,
        signal: opts.signal,
      })
    } catch (err) {
      throw this.networkError(err)
    }
    if (res.statusCode !== 200) {
      const text = await res.body.text().catch(() => '')
      if (res.statusCode === 403) throw this.refused(text)
      throw new IpfsCommandError(this.url, command, messageOf(text, res.statusCode))
    }
    return res
  }

  /** POST and parse the single JSON object Kubo answers. */
  async json<T>(command: string, params: Params, opts: Parameters<KuboHttp['post']>[2] = {}): Promise<T> {
    const res = await this.post(command, params, opts)
    const text = await this.read(command, res)
    try {
      return JSON.parse(text) as T
    } catch (err) {
      throw new IpfsCommandError(this.url, command, `unreadable answer: ${text.slice(0, 200)}`, {
        cause: err,
      })
    }
  }

  /** POST for the effect only: the answer (often empty) is read and dropped. */
  async call(command: string, params: Params, opts: Parameters<KuboHttp['post']>[2] = {}): Promise<void> {
    const res = await this.post(command, params, opts)
    await this.read(command, res)
  }

  /** POST and yield each object of Kubo's newline-delimited JSON stream, as it arrives. */
  async *ndjson<T>(
    command: string,
    params: Params,
    opts: Parameters<KuboHttp['post']>[2] = {},
  ): AsyncGenerator<T> {
    const res = await this.post(command, params, opts)
    let rest = ''
    try {
      for await (const chunk of res.body) {
        rest += (chunk as Buffer).toString('utf8')
        let nl = rest.indexOf('\n')
        while (nl >= 0) {
          const line = rest.slice(0, nl).trim()
          rest = rest.slice(nl + 1)
          if (line) yield this.parseLine<T>(command, line)
          nl = rest.indexOf('\n')
        }
      }
    } catch (err) {
      throw this.networkError(err)
    } finally {
      // A consumer that stops early leaves the rest unread: let the socket go.
      if (!res.body.destroyed) res.body.destroy()
    }
    if (rest.trim()) yield this.parseLine<T>(command, rest.trim())
    this.checkTrailers(command, res)
  }

  /** POST and yield the raw body chunks (a CAR), failing if Kubo reports an error in the trailers. */
  async *bytes(
    command: string,
    params: Params,
    opts: Parameters<KuboHttp['post']>[2] = {},
  ): AsyncGenerator<Uint8Array> {
    const res = await this.post(command, params, opts)
    try {
      for await (const chunk of res.body) yield chunk as Uint8Array
    } catch (err) {
      throw this.networkError(err)
    } finally {
      if (!res.body.destroyed) res.body.destroy()
    }
    this.checkTrailers(command, res)
  }

  async close(): Promise<void> {
    await this.#agent.close()
  }

  private async read(command: string, res: Dispatcher.ResponseData): Promise<string> {
    let text: string
    try {
      text = await res.body.text()
    } catch (err) {
      throw this.networkError(err)
    }
    this.checkTrailers(command, res)
    return text
  }

  private parseLine<T>(command: string, line: string): T {
    let value: unknown
    try {
      value = JSON.parse(line)
    } catch (err) {
      throw new IpfsCommandError(this.url, command, `unreadable answer: ${line.slice(0, 200)}`, {
        cause: err,
      })
    }
    // Kubo streams an error that happens mid-answer as one more object of type "error".
    const e = value as { Type?: string; Message?: string }
    if (e && e.Type === 'error' && typeof e.Message === 'string') {
      throw new IpfsCommandError(this.url, command, e.Message)
    }
    return value as T
  }

  private checkTrailers(command: string, res: Dispatcher.ResponseData): void {
    const streamError = res.trailers?.['x-stream-error']
    if (streamError) throw new IpfsCommandError(this.url, command, streamError)
  }

  /** The node refused the credentials (Kubo answers 403 "Kubo RPC Access Denied"); `text` is its body. */
  refused(text: string): IpfsAuthRefusedError {
    return new IpfsAuthRefusedError(this.url, this.#what, messageOf(text, 403))
  }

  /** Our error for a failed exchange; an abort passes through as it is. */
  networkError(err: unknown): unknown {
    const e = err as { name?: string; code?: string; cause?: { code?: string }; message?: string }
    if (e?.name === 'AbortError') return err
    const code = e?.code ?? e?.cause?.code
    if (code && UNREACHABLE.has(code)) return new IpfsUnreachableError(this.url, code, { cause: err })
    return err
  }
}

/** Kubo's error body is `{"Message": ..., "Code": ..., "Type": "error"}`; plain text from proxies. */
export function messageOf(text: string, status: number): string {
  try {
    const m = (JSON.parse(text) as { Message?: unknown }).Message
    if (typeof m === 'string' && m) return m
  } catch {}
  return text.trim().split('\n')[0] || `HTTP ${status}`
}
