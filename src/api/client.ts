import { canonicalCid } from '../cid/index.ts'
import { type ErrorKey, errorCode } from '../error-codes.ts'
import {
  type ChildPage,
  type CidPaths,
  checkEntryName,
  checkMirrorName,
  checkRelPath,
  type IndexReader,
  type MirrorEntry,
  MirrorNotIndexedError,
  type MirrorSummary,
  type PathRecord,
  type RecordPage,
  type ScanPage,
  type ScanSummary,
} from '../index/index.ts'
import { joinUrl, RemoteError, requestJson } from '../sync/index.ts'

/**
 * The daemon's read API (routes.ts), as an IndexReader: what `openIndexReader(db)` answers offline,
 * asked of the daemon that holds the database. Input is checked here with the index's own rules
 * before it is sent, so a bad name, path or CID fails as it would offline; an unknown mirror is the
 * index's MirrorNotIndexedError, an absent record `undefined`. Other failures: RemoteError (the daemon
 * answered with an error), UnreachableError (nothing answered).
 */
export class IndexClient implements IndexReader {
  readonly base: string
  readonly #token: string | undefined
  readonly #timeoutMs: number

  constructor(base: string, token?: string, opts: { timeoutMs?: number } = {}) {
    this.base = base
    this.#token = token
    this.#timeoutMs = opts.timeoutMs ?? 30_000
  }

  async #get<T>(path: string, query: Record<string, string | number | undefined> = {}): Promise<T> {
    const params = new URLSearchParams()
    for (const [k, v] of Object.entries(query)) if (v !== undefined) params.set(k, String(v))
    const qs = params.size > 0 ? `?${params}` : ''
    return requestJson<T>('GET', joinUrl(this.base, path) + qs, {
      ...(this.#token ? { token: this.#token } : {}),
      timeoutMs: this.#timeoutMs,
    })
  }

  /** `#get` on a mirror's route: its UNKNOWN_MIRROR answer becomes the index's own error. */
  async #mirrorGet<T>(
    mirror: string,
    rest: string,
    query?: Record<string, string | number | undefined>,
  ): Promise<T> {
    checkMirrorName(mirror)
    try {
      return await this.#get<T>(`/index/mirrors/${encodeURIComponent(mirror)}${rest}`, query)
    } catch (err) {
      if (answered(err, 'MIRROR_NOT_INDEXED')) throw new MirrorNotIndexedError(mirror)
      throw err
    }
  }

  async mirrors(): Promise<MirrorEntry[]> {
    return (await this.#get<{ mirrors: MirrorEntry[] }>('/index/mirrors')).mirrors
  }

  summary(mirror: string): Promise<MirrorSummary> {
    return this.#mirrorGet(mirror, '')
  }

  async record(mirror: string, path: string): Promise<PathRecord | undefined> {
    const rel = checkRelPath(path)
    try {
      const { mirror: _mirror, ...rec } = await this.#mirrorGet<PathRecord & { mirror: string }>(
        mirror,
        rel === '' ? '/path' : `/path/${rel.split('/').map(encodeURIComponent).join('/')}`,
      )
      return rec
    } catch (err) {
      if (answered(err, 'NOT_INDEXED')) return undefined
      throw err
    }
  }

  records(
    mirror: string,
    opts: { under?: string; after?: string; limit?: number } = {},
  ): Promise<RecordPage> {
    return this.#mirrorGet(mirror, '/records', {
      under: opts.under === undefined ? undefined : checkRelPath(opts.under),
      after: opts.after === undefined ? undefined : checkRelPath(opts.after),
      limit: opts.limit,
    })
  }

  async children(
    mirror: string,
    dir: string,
    opts: { after?: string; limit?: number } = {},
  ): Promise<ChildPage> {
    return this.#mirrorGet(mirror, '/children', {
      dir: checkRelPath(dir),
      after: opts.after === undefined ? undefined : checkEntryName(opts.after),
      limit: opts.limit,
    })
  }

  scans(mirror: string, opts: { before?: number; limit?: number } = {}): Promise<ScanPage> {
    return this.#mirrorGet(mirror, '/scans', { before: opts.before, limit: opts.limit })
  }

  async scan(mirror: string, id: number): Promise<ScanSummary | undefined> {
    try {
      return await this.#mirrorGet<ScanSummary>(mirror, `/scans/${encodeURIComponent(String(id))}`)
    } catch (err) {
      if (answered(err, 'UNKNOWN_SCAN')) return undefined
      throw err
    }
  }

  async pathsOf(
    cid: string,
    opts: { mirror?: string; after?: string; limit?: number } = {},
  ): Promise<CidPaths> {
    const canonical = canonicalCid(cid)
    if (opts.mirror !== undefined) checkMirrorName(opts.mirror)
    const query = { mirror: opts.mirror, after: opts.after, limit: opts.limit }
    if (opts.mirror === undefined) return this.#get(`/index/cids/${canonical}`, query)
    try {
      return await this.#get(`/index/cids/${canonical}`, query)
    } catch (err) {
      if (answered(err, 'MIRROR_NOT_INDEXED')) throw new MirrorNotIndexedError(opts.mirror)
      throw err
    }
  }
}

/** Whether the daemon answered with this error of the table. */
function answered(err: unknown, key: ErrorKey): boolean {
  return err instanceof RemoteError && err.code === errorCode(key)
}
