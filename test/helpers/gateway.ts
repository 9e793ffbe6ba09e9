import { connect } from 'node:net'
import { pino } from 'pino'
import type { Database } from '../../src/db.ts'
import { type Gateway, type GatewayOptions, startGateway } from '../../src/gateway/index.ts'
import { onScanCommitted, openIndexReader } from '../../src/index/index.ts'

/** A gateway on 127.0.0.1 (a free port) over the index of `db`, its cache dropped at each commit. */
export function gatewayOver(
  db: Database,
  mirrors: GatewayOptions['mirrors'],
  extra: Partial<GatewayOptions> = {},
): Promise<Gateway> {
  return startGateway({
    host: '127.0.0.1',
    port: 0,
    mirrors,
    reader: openIndexReader(db),
    onScanCommitted: (fn) => onScanCommitted(db, fn),
    log: pino({ level: 'silent' }),
    ...extra,
  })
}

export interface RawResponse {
  status: number
  headers: Record<string, string>
  body: Buffer
}

/** Parses the HTTP/1.1 responses in `data` (Content-Length bodies; no body for HEAD, 204, 304). */
export function parseResponses(data: Buffer, heads: boolean[] = []): RawResponse[] {
  const out: RawResponse[] = []
  let pos = 0
  while (pos < data.length) {
    const end = data.indexOf('\r\n\r\n', pos)
    if (end < 0) break
    const lines = data.subarray(pos, end).toString('latin1').split('\r\n')
    const status = Number(lines[0]!.split(' ')[1])
    const headers: Record<string, string> = {}
    for (const l of lines.slice(1)) {
      const i = l.indexOf(':')
      headers[l.slice(0, i).toLowerCase()] = l.slice(i + 1).trim()
    }
    const noBody = heads[out.length] === true || status === 304 || status === 204
    const len = noBody ? 0 : Number(headers['content-length'] ?? 0)
    if (end + 4 + len > data.length) break
    out.push({ status, headers, body: data.subarray(end + 4, end + 4 + len) })
    pos = end + 4 + len
  }
  return out
}

/**
 * Sends `raw` bytes on one connection as they are (no client normalizes the path) and collects what
 * comes back until `count` responses are parsed or the server closes.
 */
export function rawExchange(
  port: number,
  raw: string | Buffer,
  count: number,
  heads: boolean[] = [],
): Promise<{ responses: RawResponse[]; data: Buffer; closed: boolean }> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1')
    const chunks: Buffer[] = []
    let settled = false
    const finish = (closed: boolean): void => {
      if (settled) return
      settled = true
      socket.destroy()
      const data = Buffer.concat(chunks)
      resolve({ responses: parseResponses(data, heads), data, closed })
    }
    socket.on('data', (d: Buffer) => {
      chunks.push(d)
      if (parseResponses(Buffer.concat(chunks), heads).length >= count) finish(false)
    })
    socket.on('close', () => finish(true))
    socket.on('error', (err) => (settled ? undefined : reject(err)))
    socket.write(raw)
  })
}
