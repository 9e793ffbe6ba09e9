/**
 * Loopback HTTP servers a fetch-back test points at: a proxy to a real Kubo gateway that counts the
 * requests it relays (and can hold its answer at a gate), and bad sources built from Kubo's own CAR
 * of a file: one whose block is altered, one that cuts the CAR short. Each is named as what it is.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { request } from 'undici'

export interface Loopback {
  url: string
  /** Requests received, by path and query. */
  requests: string[]
  /** Their Accept and Range headers, in the same order. */
  asked: { url: string; accept?: string; range?: string }[]
  /** Requests whose answer is not closed yet, now and at most so far. */
  inFlight(): number
  maxInFlight(): number
  close(): Promise<void>
}

export async function serve(
  handler: (req: IncomingMessage, res: ServerResponse) => void | Promise<void>,
): Promise<Loopback> {
  const requests: string[] = []
  const asked: Loopback['asked'] = []
  let open = 0
  let most = 0
  const server: Server = createServer((req, res) => {
    open++
    most = Math.max(most, open)
    res.once('close', () => open--)
    requests.push(req.url ?? '')
    asked.push({
      url: req.url ?? '',
      ...(req.headers.accept ? { accept: req.headers.accept } : {}),
      ...(req.headers.range ? { range: req.headers.range } : {}),
    })
    Promise.resolve(handler(req, res)).catch((err) => res.destroy(err as Error))
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as AddressInfo
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    asked,
    inFlight: () => open,
    maxInFlight: () => most,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections()
        server.close(() => resolve())
      }),
  }
}

/** The trustless CAR of `cid` (whole file, duplicates kept) from a Kubo gateway. */
export async function carFrom(gateway: string, cid: string): Promise<Buffer> {
  const res = await request(`${gateway}/ipfs/${cid}?dag-scope=entity`, {
    headers: { accept: 'application/vnd.ipld.car; version=1; order=dfs; dups=y' },
  })
  if (res.statusCode !== 200) throw new Error(`${gateway}: HTTP ${res.statusCode}`)
  return Buffer.from(await res.body.arrayBuffer())
}

function varint(buf: Buffer, at: number): { value: number; size: number } {
  let value = 0
  let mul = 1
  for (let i = 0; ; i++) {
    const b = buf[at + i]!
    value += (b & 0x7f) * mul
    if ((b & 0x80) === 0) return { value, size: i + 1 }
    mul *= 128
  }
}

/** A CAR's sections as raw bytes (varint included): [header, block1, block2, ...]. */
export function sections(car: Buffer): Buffer[] {
  const out: Buffer[] = []
  for (let at = 0; at < car.length; ) {
    const v = varint(car, at)
    out.push(car.subarray(at, at + v.size + v.value))
    at += v.size + v.value
  }
  return out
}

/** A copy of block section `i` (1-based past the header) with its last byte flipped: a wrong block. */
export function corrupt(parts: Buffer[], i: number): Buffer[] {
  const copy = parts.map((p) => Buffer.from(p))
  const s = copy[i]!
  s[s.length - 1]! ^= 0xff
  return copy
}

/** A bad source that answers a CAR with the given sections (a wrong block among them). */
export function carServer(parts: Buffer[]): Promise<Loopback> {
  return serve((_req, res) => {
    res.writeHead(200, { 'content-type': 'application/vnd.ipld.car; version=1; order=dfs; dups=y' })
    for (const p of parts) res.write(p)
    res.end()
  })
}

/** A bad source that ends its CAR cleanly after `bytes` bytes (a truncated answer). */
export function truncatingServer(car: Buffer, bytes: number): Promise<Loopback> {
  return serve((_req, res) => {
    res.writeHead(200, { 'content-type': 'application/vnd.ipld.car; version=1; order=dfs; dups=y' })
    res.end(car.subarray(0, bytes))
  })
}

/**
 * A proxy to a real gateway that counts requests (relaying their Accept and Range); with `gate`, it
 * sends the first `gate.after` bytes of an answer (of those `gate.when` picks, default all) and the
 * rest only once `gate.opened` resolved.
 */
export function proxy(
  gateway: string,
  gate?: { after: number; opened: Promise<void>; when?: (req: IncomingMessage) => boolean },
): Promise<Loopback> {
  return serve(async (req, res) => {
    const up = await request(`${gateway}${req.url}`, {
      headers: {
        accept: String(req.headers.accept ?? '*/*'),
        ...(req.headers.range ? { range: req.headers.range } : {}),
      },
    })
    const gated = gate && (gate.when?.(req) ?? true)
    const headers: Record<string, string> = {}
    for (const [k, v] of Object.entries(up.headers))
      if (typeof v === 'string' && !['content-length', 'transfer-encoding', 'connection'].includes(k))
        headers[k] = v
    res.writeHead(up.statusCode, headers)
    let sent = 0
    for await (const chunk of up.body) {
      const c = chunk as Buffer
      if (gate && gated && sent < gate.after && sent + c.length >= gate.after) {
        const cut = gate.after - sent
        res.write(c.subarray(0, cut))
        await gate.opened
        res.write(c.subarray(cut))
      } else if (!res.write(c)) await new Promise((r) => res.once('drain', r))
      sent += c.length
    }
    res.end()
  })
}

/**
 * Answers `req` with `bytes` as a file's plain bytes, `Range: bytes=a-b` with a 206; with `endAt`, the
 * answer ends cleanly after that many bytes of the file (a truncated answer).
 */
export function answerPlain(req: IncomingMessage, res: ServerResponse, bytes: Buffer, endAt?: number): void {
  const m = /^bytes=(\d+)-(\d*)$/.exec(String(req.headers.range ?? ''))
  const start = m ? Number(m[1]) : 0
  const end = m?.[2] ? Number(m[2]) : bytes.length - 1
  const headers = { 'content-type': 'application/octet-stream' }
  if (m) res.writeHead(206, { ...headers, 'content-range': `bytes ${start}-${end}/${bytes.length}` })
  else res.writeHead(200, headers)
  // Chunked (no Content-Length): a cut answer ends cleanly, as a truncating server's does.
  res.write(bytes.subarray(start, Math.min(end + 1, endAt ?? bytes.length)))
  res.end()
}

/** A bad (or good) source of one file's plain bytes (answerPlain), whatever CID is asked for. */
export function plainServer(bytes: Buffer, opts: { endAt?: number } = {}): Promise<Loopback> {
  return serve((req, res) => answerPlain(req, res, bytes, opts.endAt))
}

/**
 * A loopback relay in front of a Kubo RPC API (`base`, `http://host:port`) that notes the commands
 * asked of it (`requests`), passing each call's body and `Authorization` on.
 */
export function rpcRelay(base: string): Promise<Loopback> {
  return serve(async (req, res) => {
    const auth = req.headers.authorization
    const up = await request(`${base}${req.url}`, {
      method: 'POST',
      headers: auth ? { authorization: auth } : {},
      body: req,
    })
    res.writeHead(up.statusCode, { 'content-type': String(up.headers['content-type'] ?? '') })
    for await (const chunk of up.body)
      if (!res.write(chunk)) await new Promise<void>((r) => res.once('drain', () => r()))
    res.end()
  })
}
