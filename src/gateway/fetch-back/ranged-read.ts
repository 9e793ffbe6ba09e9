/**
 * A Range far ahead of what the shared fetch has taken (a resumed download of a large file, a client
 * reading its end first): with the file's leaves known, the range is asked of the sources on its own
 * (leaf-aligned plain bytes, or `entity-bytes` of a CAR), checked leaf by leaf, while the shared fetch
 * goes on writing the cache file from the start. Nothing read here is cached: the shared fetch writes
 * the whole file. A source that fails part-way is followed by the next from the byte it stopped at.
 */
import type { CID } from 'multiformats/cid'
import { isCidmirrorError } from '../../errors.ts'
import { FetchFailedError, FetchTimeoutError, SourceTimeoutError } from './errors.ts'
import type { Leaf } from './leaf-plan.ts'
import type { FetchBackMetrics } from './metrics.ts'
import { type SourceTimeouts, timed } from './shared-fetch.ts'
import type { FetchSource } from './sources.ts'

export interface RangedRead {
  path: string
  cid: CID
  size: number
  leaves: Leaf[]
  start: number
  end: number
}

/** The verified bytes `r.start..r.end` from `sources` in order; throws FetchFailedError (or FetchTimeoutError) when none gives them. */
export async function* rangedBytes(
  r: RangedRead,
  sources: FetchSource[],
  limits: SourceTimeouts,
  metrics: FetchBackMetrics,
  signal: AbortSignal,
): AsyncGenerator<Uint8Array> {
  const reasons: string[] = []
  let allTimeouts = true
  let pos = r.start
  for (const src of sources) {
    if (pos > r.end) return
    signal.throwIfAborted()
    const ctl = new AbortController()
    const onAbort = () => ctl.abort(signal.reason)
    signal.addEventListener('abort', onAbort, { once: true })
    const began = performance.now()
    let first = true
    try {
      const it = src
        .bytes({ cid: r.cid, size: r.size, leaves: r.leaves }, pos, ctl.signal, r.end)
        [Symbol.asyncIterator]()
      for await (const got of timed(it, limits.firstByteMs, limits.idleMs, () => ctl.abort(), src.name)) {
        // A source that read past `to` (its bytes are verified, but not asked for) is cut at the range.
        const chunk = pos + got.length > r.end + 1 ? got.subarray(0, r.end + 1 - pos) : got
        pos += chunk.length
        metrics.bytes(src.name, src.kind, chunk.length)
        if (first) {
          first = false
          metrics.firstByte(src.name, src.kind, performance.now() - began)
        }
        if (chunk.length > 0) yield chunk
        if (pos > r.end) break
      }
      if (pos > r.end) {
        metrics.done(src.name, src.kind)
        return
      }
      reasons.push(`${src.name}: the range ended at ${pos}`)
      allTimeouts = false
    } catch (err) {
      ctl.abort()
      if (signal.aborted) throw signal.reason
      const timeout = err instanceof SourceTimeoutError
      if (!timeout) allTimeouts = false
      const msg = isCidmirrorError(err) ? err.message : `${src.name}: ${(err as Error)?.message ?? err}`
      reasons.push(msg)
      metrics.failure(src.name, src.kind, msg, timeout)
    } finally {
      signal.removeEventListener('abort', onAbort)
    }
  }
  if (pos <= r.end)
    throw allTimeouts && reasons.length > 0
      ? new FetchTimeoutError(r.path, r.cid.toString(), reasons)
      : new FetchFailedError(r.path, r.cid.toString(), reasons)
}
