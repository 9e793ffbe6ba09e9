/**
 * The FAKE Filecoin Onchain Cloud (fake-foc.ts) for a child process, so its state outlives a kill -9
 * of the child: the parent serves the fake's msw handlers on a real loopback HTTP server
 * (`serveFakeFoc`), and the child's msw sends every request it would make to the chain or to a
 * provider there (`relayToParent`), with its original URL in `x-relay-url`. The SDK in the child is
 * the real one; nothing leaves the machine.
 */
import { EventEmitter } from 'node:events'
import { createServer, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { bypass, getResponse, http } from 'msw'
import { setupServer } from 'msw/node'
import type { FakeFoc } from './fake-foc.ts'

const RELAY_URL = 'x-relay-url'

export interface FakeFocServer {
  url: string
  /** 'request' (url) after each request is answered or held. */
  events: EventEmitter
  /** Requests held unanswered (`hold` said so), by URL. */
  held: string[]
  /** Requests answered, by URL. */
  answered: string[]
  close(): Promise<void>
}

/** Serves `foc` to children; a request for which `hold(url)` is true is never answered. */
export async function serveFakeFoc(foc: FakeFoc, hold: (url: URL) => boolean = () => false) {
  const handlers = foc.handlers()
  const events = new EventEmitter()
  const held: string[] = []
  const answered: string[] = []
  const parked: ServerResponse[] = []
  const server = createServer(async (req, res) => {
    const chunks: Buffer[] = []
    for await (const c of req) chunks.push(c as Buffer)
    const url = String(req.headers[RELAY_URL])
    const headers = new Headers()
    for (const [k, v] of Object.entries(req.headers))
      if (typeof v === 'string' && !['host', 'connection', 'content-length', RELAY_URL].includes(k))
        headers.set(k, v)
    const method = req.method ?? 'GET'
    const request = new Request(url, {
      method,
      headers,
      ...(method === 'GET' || method === 'HEAD' ? {} : { body: Buffer.concat(chunks) }),
    })
    if (hold(new URL(url))) {
      held.push(url)
      parked.push(res)
      events.emit('request', url)
      return
    }
    const answer = await getResponse(handlers, request)
    if (!answer) {
      res.writeHead(599, { 'content-type': 'text/plain' }).end(`the fake has no handler for ${method} ${url}`)
    } else {
      const body = Buffer.from(await answer.arrayBuffer())
      const out: Record<string, string> = {}
      answer.headers.forEach((v, k) => {
        if (k !== 'content-length' && k !== 'transfer-encoding') out[k] = v
      })
      res.writeHead(answer.status, out).end(body)
    }
    answered.push(url)
    events.emit('request', url)
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as AddressInfo
  return {
    url: `http://127.0.0.1:${port}/`,
    events,
    held,
    answered,
    async close() {
      for (const r of parked) r.destroy()
      server.closeAllConnections()
      await new Promise<void>((resolve) => server.close(() => resolve()))
    },
  } satisfies FakeFocServer
}

/** In the child: every request goes to the parent's `serveFakeFoc` at `relay` (none elsewhere). */
export function relayToParent(relay: string): void {
  const server = setupServer(
    http.all('*', async ({ request }) => {
      const headers = new Headers(request.headers)
      headers.set(RELAY_URL, request.url)
      const body =
        request.method === 'GET' || request.method === 'HEAD' ? undefined : await request.arrayBuffer()
      const res = await fetch(bypass(new Request(relay, { method: request.method, headers, body })))
      const empty = res.status === 204 || res.status === 205 || res.status === 304
      return new Response(empty ? null : await res.arrayBuffer(), {
        status: res.status,
        headers: res.headers,
      })
    }),
  )
  server.listen({ onUnhandledRequest: 'error' })
}
