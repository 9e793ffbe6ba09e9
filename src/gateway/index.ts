/**
 * The gateway room's face: the HTTP front (mirror paths, listings, trustless `/ipfs/{cid}`, status
 * page, metrics) and, behind it, the fetch-back of evicted files. The seam below is shared by the
 * serving half (issue 12) and the fetch-back (issue 13), which are built side by side.
 */

import { Registry } from 'prom-client'
import { type FetchBackOptions, NetworkFetchBack } from './fetch-back/fetch-back.ts'
import type { FetchBackFigures } from './fetch-back/metrics.ts'

/** A file the index still knows (size, mtime, CID) whose bytes are no longer on this disk. */
export interface EvictedFile {
  mirror: string
  /** Relative to the mirror root, `/`-separated. */
  path: string
  /** The file's CID (base32 CIDv1), as the index holds it. */
  cid: string
  size: number
  mtimeMs: number
  /**
   * Bytes that are no longer the tree's (a file deleted upstream, an older version of a path, a past
   * root's file): they go to the clients only, never into the mirror tree nor the index, and requests
   * for the same CID share one fetch. `path` then only names the file in logs.
   */
  transient?: boolean
}

/** An inclusive byte range of a file, as HTTP's `Range: bytes=start-end` names it. */
export interface ByteRange {
  start: number
  end: number
}

export interface FetchBackResult {
  /** Which source answered (`local-node`, `holder:<id>`, `filecoin:<provider>`, `gateway:<url>`), for logs and metrics. */
  source: string
  /**
   * The file's bytes (only `range` when one was asked), each block checked against its CID before it is
   * yielded. Throws in the middle when a later block is wrong or missing: the HTTP side then aborts the
   * connection rather than ending the body cleanly (DESIGN promise 2).
   */
  body: AsyncIterable<Uint8Array>
}

/** Fetches an evicted file back from the network, verified; the gateway calls it for evicted records. */
export interface FetchBack {
  /**
   * Resolves once a source has answered with a first verified block; rejects (a `CidmirrorError` whose
   * HTTP status is 502, or 504 on time-outs) when every source failed before any byte was sent.
   */
  open(file: EvictedFile, range: ByteRange | undefined, signal: AbortSignal): Promise<FetchBackResult>
}

export * from './fetch-back/errors.ts'
export {
  type CopySource,
  FETCH_BACK_DEFAULTS,
  type FetchBackOptions,
  NetworkFetchBack,
  type RefetchRecorder,
} from './fetch-back/fetch-back.ts'
export type { HolderNode, HolderNodes } from './fetch-back/holder-sources.ts'
export type { FetchBackFigures, SourceFigures } from './fetch-back/metrics.ts'
export * from './status/index.ts'
export * from './trustless/index.ts'

/**
 * A registry of the fetch-back's figures by source (`cidmirror_fetchback_*`) for the gateway's
 * `/metrics`, or undefined for a FetchBack that keeps none.
 */
export function fetchBackRegistry(fb: FetchBack): Registry | undefined {
  if (!(fb instanceof NetworkFetchBack)) return undefined
  const registry = new Registry()
  fb.metrics.register(registry, () => fb.figures())
  return registry
}

/** The fetch-back's figures for the status page, or undefined for a FetchBack that keeps none. */
export function fetchBackStatus(fb: FetchBack): (() => FetchBackFigures) | undefined {
  return fb instanceof NetworkFetchBack ? () => fb.figures() : undefined
}

/** The fetch-back of evicted files over the network, from the options' sources in order. */
export function createFetchBack(opts: FetchBackOptions): NetworkFetchBack {
  return new NetworkFetchBack(opts)
}
export type { AccessLogOptions } from './access-log.ts'
export { GatewayPathError, NoFetchBackError } from './errors.ts'
export type { MimeMap } from './mime.ts'
export { fetchFileVia } from './past/fetch-file.ts'
export type { PastFile, PastVersions } from './past/routes.ts'
export { pastVersionsOf } from './past/versions.ts'
export { RecentRequests } from './recent.ts'
export { RequestTimes } from './request-times.ts'
export {
  DEFAULT_LIMITS,
  type Gateway,
  type GatewayLimits,
  type GatewayMirrorOptions,
  type GatewayOptions,
  type GatewayPlugin,
  startGateway,
} from './server.ts'
