/**
 * A remote pinning service that speaks the IPFS Pinning Service API (Pinata, Filebase and others):
 * `POST /pins` with our node's addresses as origins, `GET /pins?cid=` for the status. A service's
 * "pinned" is its own word: it counts as verified only after a retrieval probe (one block fetched from
 * the service's gateway hashes to the CID); without a probe gateway it stays "announced".
 */
import { Agent, request } from 'undici'
import type { CopyRecord } from '../../index/index.ts'
import { TargetRequestError, TargetUnreachableError } from '../errors.ts'
import type { ReplicationItem, StorageTarget, TargetCallOptions } from '../target.ts'
import { probeBlock } from './probe.ts'

export interface PinningServiceTargetOptions {
  name: string
  /** The API endpoint, e.g. `https://api.pinata.cloud/psa`. */
  endpoint: string
  /** The access token (sent as `Authorization: Bearer`). Never logged. */
  token: string
  /** A trustless gateway of the service (`https://gateway.example`) for the retrieval probe. */
  gateway?: string
  scope?: 'tree' | 'entity'
  concurrency?: number
  /** Our node's addresses, sent as origins so the service fetches from us. */
  origins?: () => Promise<string[]>
  /** Connects our node to a delegate the service names. */
  connect?: (multiaddr: string, signal: AbortSignal) => Promise<void>
}

interface PinStatus {
  requestid: string
  status: 'queued' | 'pinning' | 'pinned' | 'failed'
  created: string
  pin: { cid: string; name?: string }
  delegates?: string[]
  info?: Record<string, string>
}

const agent = new Agent({ keepAliveTimeout: 10_000 })

export class PinningServiceTarget implements StorageTarget {
  readonly name: string
  readonly kind = 'pinning-service' as const
  readonly scope: 'tree' | 'entity'
  readonly local = false
  readonly concurrency: number
  readonly #o: PinningServiceTargetOptions
  readonly #base: string
  readonly #holder: string

  constructor(opts: PinningServiceTargetOptions) {
    this.#o = opts
    this.name = opts.name
    this.scope = opts.scope ?? 'tree'
    this.concurrency = opts.concurrency ?? 2
    this.#base = opts.endpoint.replace(/\/+$/, '')
    this.#holder = `psa:${this.#base}`
  }

  async #req<T>(
    method: 'GET' | 'POST' | 'DELETE',
    path: string,
    signal: AbortSignal,
    body?: unknown,
  ): Promise<T> {
    let res: Awaited<ReturnType<typeof request>>
    try {
      res = await request(`${this.#base}${path}`, {
        method,
        signal,
        dispatcher: agent,
        headers: {
          authorization: `Bearer ${this.#o.token}`,
          ...(body === undefined ? {} : { 'content-type': 'application/json' }),
        },
        body: body === undefined ? null : JSON.stringify(body),
      })
    } catch (err) {
      if (signal.aborted) throw err
      throw new TargetUnreachableError(this.name, this.#base, (err as Error).message)
    }
    const text = await res.body.text()
    if (res.statusCode >= 300) {
      let msg = text.slice(0, 300)
      try {
        const e = JSON.parse(text) as { error?: { reason?: string; details?: string } }
        msg = [e.error?.reason, e.error?.details].filter(Boolean).join(': ') || msg
      } catch {}
      throw new TargetRequestError(this.name, `${method} ${path.split('?')[0]}`, res.statusCode, msg)
    }
    return (text === '' ? undefined : JSON.parse(text)) as T
  }

  async #statusOf(cid: string, signal: AbortSignal): Promise<PinStatus | undefined> {
    const q = new URLSearchParams({ cid, status: 'queued,pinning,pinned,failed', limit: '10' })
    const r = await this.#req<{ count: number; results: PinStatus[] }>('GET', `/pins?${q}`, signal)
    const order = { pinned: 3, pinning: 2, queued: 1, failed: 0 }
    return r.results.sort((a, b) => order[b.status] - order[a.status])[0]
  }

  async #copy(
    item: ReplicationItem,
    cid: string,
    scan: number | undefined,
    st: PinStatus,
    signal: AbortSignal,
  ) {
    const now = Date.now()
    let status: CopyRecord['status'] = st.status === 'pinned' ? 'announced' : 'pending'
    let how = `pinning-service:${st.status}`
    if (st.status === 'pinned' && this.#o.gateway) {
      const probe = await probeBlock(this.#o.gateway, cid, signal)
      if (probe.ok) {
        status = 'verified'
        how = 'retrieval-probe'
      } else how = `pinning-service:pinned (probe failed: ${probe.reason})`
    }
    const rec: CopyRecord = {
      cid,
      holder: this.#holder,
      kind: this.kind,
      how,
      status,
      scope: item.scope,
      local: false,
      checkedAt: now,
      since: Date.parse(st.created) || now,
      target: this.name,
      detail: { requestid: st.requestid },
    }
    // Where the service's nodes that hold the blocks can be dialled: the fetch-back connects to them.
    const delegates = (st.delegates ?? []).filter((d) => d.startsWith('/'))
    if (delegates.length > 0) rec.detail!.delegates = delegates.join(' ')
    if (this.#o.gateway) rec.retrieval = [`${this.#o.gateway.replace(/\/+$/, '')}/ipfs/${cid}`]
    if (item.scope === 'tree') {
      rec.mirror = item.mirror!
      if (scan !== undefined) rec.scan = scan
    }
    return rec
  }

  async check(item: ReplicationItem, { signal }: TargetCallOptions): Promise<CopyRecord[]> {
    const st = await this.#statusOf(item.cid, signal)
    if (st && st.status !== 'failed') return [await this.#copy(item, item.cid, item.scan, st, signal)]
    if (item.scope === 'tree' && item.previous) {
      const prev = await this.#statusOf(item.previous, signal)
      if (prev?.status === 'pinned')
        return [await this.#copy(item, item.previous, item.previousScan, prev, signal)]
    }
    return []
  }

  async store(item: ReplicationItem, opts: TargetCallOptions): Promise<CopyRecord[]> {
    const { signal } = opts
    let st = await this.#statusOf(item.cid, signal)
    if (!st || st.status === 'failed') {
      const body = {
        cid: item.cid,
        name: item.mirror ? `cidmirror:${item.mirror}` : 'cidmirror',
        origins: (await this.#o.origins?.()) ?? [],
        meta: { source: 'cidmirror', ...(item.mirror ? { mirror: item.mirror } : {}) },
      }
      // A new root replaces the previous root's pin object in one step (`POST /pins/{requestid}`), the
      // API's pin update: the service keeps the blocks both trees share instead of collecting them.
      const prev =
        item.scope === 'tree' && item.previous ? await this.#statusOf(item.previous, signal) : undefined
      st = prev
        ? await this.#req<PinStatus>('POST', `/pins/${encodeURIComponent(prev.requestid)}`, signal, body)
        : await this.#req<PinStatus>('POST', '/pins', signal, body)
    }
    for (const d of st.delegates ?? []) await this.#o.connect?.(d, signal).catch(() => {})
    return [await this.#copy(item, item.cid, item.scan, st, signal)]
  }

  async release(item: ReplicationItem, { signal }: TargetCallOptions): Promise<void> {
    if (item.scope !== 'entity') return
    const st = await this.#statusOf(item.cid, signal)
    if (st) await this.#req('DELETE', `/pins/${encodeURIComponent(st.requestid)}`, signal)
  }
}
