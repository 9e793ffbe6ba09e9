/**
 * `[gateway]`: the HTTP front's listener, which mirrors it serves at which paths, its limits, cache,
 * access log and metrics. Parsed here (the sync room hands the table over untouched) with the
 * loader's value checks, so a bad value is one line naming the key and the file.
 */
import { dirname } from 'node:path'
import {
  DEFAULT_LIMITS,
  FETCH_BACK_DEFAULTS,
  type GatewayLimits,
  type GatewayMirrorOptions,
  type MimeMap,
} from '../gateway/index.ts'
import { type Config, configValues as v } from '../sync/index.ts'
import { checkKnownKeys } from './config-keys.ts'

export interface GatewaySettings {
  listenAddr: string
  listenPort: number
  /** Where listen_addr and listen_port are set, for a port-in-use error. */
  file: string
  mirrors: GatewayMirrorOptions[]
  limits: GatewayLimits
  cache: { bytes: number; fileBytes: number; entries: number; statTtlMs: number }
  readBufferBytes: number
  readBuffers: number
  mime: MimeMap
  accessLog:
    | { file: string; size: string | undefined; interval: string | undefined; keep: number }
    | undefined
  metrics: 'loopback' | 'public' | 'off'
  /** Fetch evicted files back (when the gateway holds the database). */
  fetchBack: boolean
  /** Trustless HTTP gateways the fetch-back tries last, in order. */
  fetchFrom: string[]
  /** The fetch-back's limits (`fetch_concurrency`, `fetch_bytes_in_flight`, `fetch_*_timeout`). */
  fetchLimits: FetchLimitSettings
  /**
   * The cache of past fetches (`past_cache`: bytes, 0 for none): files that left the mirror, kept by
   * CID in `dir`, beside the database (`<[database] path>-past-cache`), never in a mirror tree.
   */
  pastCache: { dir: string; maxBytes: number }
}

/** The fetch-back's option names (FetchBackOptions), from the `fetch_*` keys. */
export interface FetchLimitSettings {
  maxFetches: number
  maxBytesInFlight: number
  firstByteMs: number
  idleMs: number
}

export const GATEWAY_DEFAULTS = {
  listenAddr: '127.0.0.1',
  listenPort: 8080,
  cacheBytes: 64 * 1024 * 1024,
  cacheFileBytes: 256 * 1024,
  cacheEntries: 100_000,
  statTtlMs: 1000,
  readBufferBytes: 1 << 20,
  readBuffers: 64,
  accessLogKeep: 14,
  pastCacheBytes: 256 * 1024 * 1024,
}

const DAY_MS = 86_400_000

const KEYS = [
  'listen_addr',
  'listen_port',
  'mirrors',
  'paths',
  'duplicates',
  'mime',
  'max_connections',
  'header_timeout',
  'request_timeout',
  'idle_timeout',
  'send_timeout',
  'max_url_bytes',
  'max_header_bytes',
  'cache_memory',
  'cache_file_max',
  'cache_entries',
  'stat_ttl',
  'read_buffer',
  'read_buffers',
  'access_log',
  'access_log_max_size',
  'access_log_rotate',
  'access_log_keep',
  'metrics',
  'fetch_back',
  'fetch_from',
  'fetch_concurrency',
  'fetch_bytes_in_flight',
  'fetch_first_byte_timeout',
  'fetch_idle_timeout',
  'past_cache',
]

/** What `[gateway]` with no keys gives: every mirror at `/<name>/` on 127.0.0.1:8080. */
export function defaultGatewaySettings(config: Config): GatewaySettings {
  return readGatewayConfig({
    ...config,
    sections: { ...config.sections, gateway: { table: {}, file: config.file, dir: dirname(config.file) } },
  })!
}

/** The `[gateway]` section, or undefined when the config has none. */
export function readGatewayConfig(config: Config): GatewaySettings | undefined {
  const section = config.sections.gateway
  if (!section) return undefined
  const w = { file: section.file, dir: section.dir }
  const t = section.table
  checkKnownKeys(t, KEYS, 'gateway', w)
  const opt = <T>(key: string, check: v.Check<T>): T | undefined =>
    t[key] === undefined ? undefined : check(t[key], `gateway.${key}`, w)
  const names = config.mirrors.map((m) => m.name)
  const served = opt('mirrors', v.strList) ?? names
  for (const [i, n] of served.entries())
    if (!names.includes(n)) v.badValue(w, `gateway.mirrors[${i}]`, `no mirror named ${n} in the config`)
  const table = (key: string): Record<string, unknown> => {
    const x = t[key]
    if (x === undefined) return {}
    if (!v.isTable(x))
      return v.badValue(w, `gateway.${key}`, `${v.show(x)} is not a table keyed by mirror name`)
    for (const k of Object.keys(x))
      if (!names.includes(k)) v.badValue(w, `gateway.${key}.${k}`, `no mirror named ${k} in the config`)
    return x
  }
  const paths = table('paths')
  const duplicates = table('duplicates')
  const mirrors = served.map((name) => {
    const m = config.mirrors.find((x) => x.name === name)!
    const path = paths[name] === undefined ? undefined : v.nonEmpty(paths[name], `gateway.paths.${name}`, w)
    const dups =
      duplicates[name] === undefined ? [] : v.strList(duplicates[name], `gateway.duplicates.${name}`, w)
    for (const [i, d] of dups.entries())
      if (!/^https?:\/\/[^/]/.test(d))
        v.badValue(w, `gateway.duplicates.${name}[${i}]`, `${v.show(d)} is not an http(s) URL`)
    return { name, root: m.mirrorDir, ...(path !== undefined ? { path } : {}), duplicates: dups }
  })
  const D = GATEWAY_DEFAULTS
  const L = DEFAULT_LIMITS
  const accessFile = opt('access_log', v.path)
  const rotate = opt('access_log_rotate', v.nonEmpty)
  if (rotate !== undefined && !/^\d+[smhdM]$/.test(rotate))
    v.badValue(w, 'gateway.access_log_rotate', `${v.show(rotate)} is not an interval (e.g. "1d", "12h")`)
  const maxSize = opt('access_log_max_size', v.size)
  const fetchFrom = opt('fetch_from', v.strList) ?? []
  for (const [i, u] of fetchFrom.entries())
    if (!/^https?:\/\/[^/]/.test(u))
      v.badValue(w, `gateway.fetch_from[${i}]`, `${v.show(u)} is not an http(s) URL`)
  // The fetch-back's limits: at least one fetch, one byte and one millisecond; a time limit at most a
  // day (one timer, and no source is worth waiting on longer).
  const F = FETCH_BACK_DEFAULTS
  const positive =
    <T extends number>(check: v.Check<T>): v.Check<T> =>
    (x, key, where) => {
      const n = check(x, key, where)
      return n > 0 ? n : v.badValue(where, key, `${v.show(x)} is out of range: must be more than 0`)
    }
  const fetchLimits: FetchLimitSettings = {
    maxFetches: opt('fetch_concurrency', v.int(1, 1024)) ?? F.maxFetches,
    maxBytesInFlight: opt('fetch_bytes_in_flight', positive(v.size)) ?? F.maxBytesInFlight,
    firstByteMs: opt('fetch_first_byte_timeout', positive(v.duration('s', DAY_MS))) ?? F.firstByteMs,
    idleMs: opt('fetch_idle_timeout', positive(v.duration('s', DAY_MS))) ?? F.idleMs,
  }
  return {
    listenAddr: opt('listen_addr', v.nonEmpty) ?? D.listenAddr,
    listenPort: opt('listen_port', v.int(0, 65535)) ?? D.listenPort,
    file: w.file,
    mirrors,
    limits: {
      maxConnections: opt('max_connections', v.int(1, 1_000_000)) ?? L.maxConnections,
      headersTimeoutMs: opt('header_timeout', v.duration('s')) ?? L.headersTimeoutMs,
      requestTimeoutMs: opt('request_timeout', v.duration('s')) ?? L.requestTimeoutMs,
      idleTimeoutMs: opt('idle_timeout', v.duration('s')) ?? L.idleTimeoutMs,
      sendTimeoutMs: opt('send_timeout', v.duration('s')) ?? L.sendTimeoutMs,
      maxUrlBytes: opt('max_url_bytes', v.int(256, 1 << 20)) ?? L.maxUrlBytes,
      maxHeaderBytes: opt('max_header_bytes', v.int(1024, 1 << 20)) ?? L.maxHeaderBytes,
    },
    cache: {
      bytes: opt('cache_memory', v.size) ?? D.cacheBytes,
      fileBytes: opt('cache_file_max', v.size) ?? D.cacheFileBytes,
      entries: opt('cache_entries', v.int(1)) ?? D.cacheEntries,
      statTtlMs: opt('stat_ttl', v.duration('s')) ?? D.statTtlMs,
    },
    readBufferBytes: opt('read_buffer', v.size) ?? D.readBufferBytes,
    readBuffers: opt('read_buffers', v.int(2, 65536)) ?? D.readBuffers,
    mime: opt('mime', v.strMap) ?? {},
    accessLog: accessFile
      ? {
          file: accessFile,
          size: maxSize === undefined ? undefined : `${Math.max(1, Math.round(maxSize / 1024))}K`,
          interval: rotate,
          keep: opt('access_log_keep', v.int(1, 10_000)) ?? D.accessLogKeep,
        }
      : undefined,
    metrics: opt('metrics', v.oneOf(['loopback', 'public', 'off'] as const)) ?? 'loopback',
    fetchBack: opt('fetch_back', v.bool) ?? true,
    fetchFrom,
    fetchLimits,
    pastCache: {
      dir: `${config.database.path}-past-cache`,
      maxBytes: opt('past_cache', v.size) ?? D.pastCacheBytes,
    },
  }
}
