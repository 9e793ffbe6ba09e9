/**
 * `[ipfs]` and `[replication]`: the sync room hands them over as tables (it knows no CIDs); they are
 * parsed here with the loader's own value checks, so a bad value is one line naming the key and file.
 */
import { readFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import type { CopyKind } from '../index/index.ts'
import type { PolicySource, ReplicationPolicy } from '../replicator/index.ts'
import { parseUsdfc } from '../replicator/index.ts'
import { type Config, ConfigError, configValues as v } from '../sync/index.ts'
import { notPrivate } from '../util/private-file.ts'
import { checkKnownKeys } from './config-keys.ts'

export interface IpfsSettings {
  /** Kubo RPC API (multiaddr or URL); undefined: the embedded Helia node (`embedded`). */
  api: string | undefined
  /** `token` / `token_file`: the credentials `api` needs (Kubo's `API.Authorizations`). Never logged. */
  token: string | undefined
  /** The embedded node, when `api` is not set. */
  embedded: EmbeddedNodeSettings
  /** The node's repo shares the mirrors' disk (its copies never count). Default true. */
  local: boolean
  gateway: string | undefined
  /** What is announced after each publish: the mirror root and file roots, or nothing. */
  provide: 'roots' | 'none'
  /** CIDs the node can reprovide per hour, for the budget warning. */
  providePerHour: number
}

/** The embedded Helia node (`[ipfs]` without `api`): what src/ipfs's createHeliaNode is given. */
export interface EmbeddedNodeSettings {
  /** libp2p listen multiaddrs (default loopback TCP on a free port). */
  listen: string[]
  /** Join the public IPFS network (bootstrap, DHT). Default false: loopback, dialled by hand. */
  public: boolean
  /** Its own folder: peer key, pins, fetched blocks (default `ipfs` beside `[database] path`). */
  dataDir: string
  /** Cap of the fetched-block store (blocks that are not the mirror's), oldest evicted first. */
  storeMaxBytes: number
  /** Blocks one peer may want of it at once (bounds memory while serving). */
  maxWants: number
  /** The config file that set `[ipfs]`, for the line a listen failure gives. */
  file?: string
}

/**
 * Target types the config accepts; src/daemon/targets.ts has one factory per type (a new kind is a
 * row here and a row there).
 */
export const TARGET_TYPES = ['kubo', 'cluster', 'pinning-service', 'filecoin'] as const
export type TargetType = (typeof TARGET_TYPES)[number]

export interface TargetSettings {
  name: string
  type: TargetType
  /** Kubo RPC API, Cluster REST API, or Pinning Service endpoint. */
  api: string
  scope: 'tree' | 'entity'
  local: boolean
  concurrency: number | undefined
  gateway: string | undefined
  /** Never logged. */
  token: string | undefined
  replicationMin: number | undefined
  replicationMax: number | undefined
  /**
   * A cluster target's peers' IPFS RPC APIs (`ipfs_api`: the connectors' Kubo nodes, or the cluster's
   * IPFS proxy): the fetch-back reads evicted files from them directly. Empty for other types.
   */
  ipfsApi: string[]
  /** `ipfs_api_token` / `ipfs_api_token_file`: the credentials every `ipfs_api` address needs. Never logged. */
  ipfsApiToken?: string | undefined
}

export interface ReplicationSettings {
  n: number
  /** Whether `[replication] n` is set (else `n` is the default). */
  nSet: boolean
  /** Minimum verified copies per kind (`min_by_kind = { filecoin = 1 }`; `min_filecoin` is its shorthand). */
  minByKind: Partial<Record<CopyKind, number>>
  recheckMs: number
  freshMs: number
  concurrency: number
  callTimeoutMs: number
  retryBackoffMs: number
  retryBackoffMaxMs: number
  /**
   * `keep_archived`: how long tree targets keep the own pin of a file that left the mirror (deleted
   * upstream, a past version); undefined (`"forever"`, the default): for ever.
   */
  keepArchivedMs: number | undefined
  targets: TargetSettings[]
  /** `[[mirrors]] replication_n` overrides. */
  perMirror: Record<string, number>
}

/** `[filecoin]`: the Filecoin Onchain Cloud wallet and how a `type = "filecoin"` target stores. */
export interface FilecoinSettings {
  network: 'mainnet' | 'calibration'
  rpc: string | undefined
  /** The wallet's key file (0600). Its content is read when the target starts, never kept here. */
  keyFile: string | undefined
  /** A session key file, with `wallet` (the root address that authorised it): the daemon never holds the main key. */
  sessionKeyFile: string | undefined
  wallet: string | undefined
  copies: number
  capMonth: bigint | undefined
  capTotal: bigint | undefined
  smallFile: number | undefined
  pieceTarget: number | undefined
  maxPiece: number | undefined
  scanFromBlock: bigint | undefined
  scanEveryMs: number | undefined
  source: string
  /** Delegated Routing V1 endpoints backed by IPNI (`https://cid.contact`): their records count after a probe. */
  ipni: string[]
  /** The config file, for messages. */
  file: string
}

export interface ReplicationConfig {
  ipfs: IpfsSettings | undefined
  replication: ReplicationSettings | undefined
  filecoin: FilecoinSettings | undefined
}

/**
 * Kubo's reprovide cycle (hours). A node announcing more roots than it can reprovide in one cycle falls
 * behind (kubo #9886's "YOU ARE FALLING BEHIND DHT REPROVIDES").
 */
export const REPROVIDE_CYCLE_HOURS = 22

/**
 * Default CIDs reprovided per hour: below the one measured rate we know, 97,730 CIDs in 249 h
 * (≈ 392/h, aleph-im/pyaleph #520 via kubo #9886), so the warning comes early rather than late.
 */
export const DEFAULT_PROVIDE_PER_HOUR = 300

/**
 * The one set of defaults: the replicator stores by these and the audit judges by these (through
 * `policyOf`), with or without a `[replication]` section.
 */
export const REPLICATION_DEFAULTS = {
  n: 1,
  recheckMs: 6 * 3_600_000,
  freshMs: 24 * 3_600_000,
  concurrency: 4,
  callTimeoutMs: 10 * 60_000,
  retryBackoffMs: 5_000,
  retryBackoffMaxMs: 3_600_000,
}

const FILECOIN_KEYS = [
  'network',
  'rpc',
  'key_file',
  'session_key_file',
  'wallet',
  'copies',
  'cap_month',
  'cap_total',
  'small_file',
  'piece_target',
  'max_piece',
  'scan_from_block',
  'scan_every',
  'source',
  'ipni',
]
/** The embedded node's fetched-block store cap by default. */
export const DEFAULT_STORE_MAX = 1024 ** 3
export const DEFAULT_MAX_WANTS = 32

const IPFS_KEYS = [
  'api',
  'token',
  'token_file',
  'local',
  'gateway',
  'provide',
  'provide_per_hour',
  'listen',
  'public',
  'data_dir',
  'store_max',
  'max_wants',
]
const COPY_KINDS: CopyKind[] = ['ipfs-node', 'ipfs-cluster', 'pinning-service', 'ipfs-provider', 'filecoin']
const REPL_KEYS = [
  'n',
  'min_filecoin',
  'min_by_kind',
  'recheck',
  'fresh',
  'concurrency',
  'call_timeout',
  'retry_backoff',
  'retry_backoff_max',
  'keep_archived',
  'targets',
]
const TARGET_KEYS = [
  'name',
  'type',
  'api',
  'endpoint',
  'scope',
  'local',
  'concurrency',
  'gateway',
  'token',
  'token_file',
  'replication_min',
  'replication_max',
  'ipfs_api',
  'ipfs_api_token',
  'ipfs_api_token_file',
]

function opt<T>(
  table: Record<string, unknown>,
  key: string,
  check: v.Check<T>,
  prefix: string,
  where: v.Where,
): T | undefined {
  return table[key] === undefined ? undefined : check(table[key], `${prefix}.${key}`, where)
}

/**
 * An RPC credential from `<key>` or `<key>_file` (relative to the config; one line, trimmed). A file
 * that others may read is refused, naming the file (never its content), as the wallet key file is.
 */
function readToken(
  table: Record<string, unknown>,
  key: string,
  prefix: string,
  w: v.Where,
): string | undefined {
  const fileKey = `${prefix}.${key}_file`
  const tokenFile = opt(table, `${key}_file`, v.path, prefix, w)
  if (tokenFile === undefined) return opt(table, key, v.optStr, prefix, w)
  if (table[key] !== undefined) v.badValue(w, fileKey, `set ${key} or ${key}_file, not both`)
  const file = v.resolvePath(tokenFile, w.dir)
  let text: string
  try {
    const problem = notPrivate(file, 'a token')
    if (problem) v.badValue(w, fileKey, problem)
    text = readFileSync(file, 'utf8').trim()
  } catch (err) {
    if (err instanceof ConfigError) throw err
    throw new ConfigError('CONFIG_READ', w.file, fileKey, `cannot read ${file}: ${(err as Error).message}`)
  }
  if (text === '') v.badValue(w, fileKey, `${file} is empty`)
  return text
}

export function readReplicationConfig(config: Config): ReplicationConfig {
  const out: ReplicationConfig = { ipfs: undefined, replication: undefined, filecoin: undefined }
  const fc = config.sections.filecoin
  if (fc) out.filecoin = readFilecoin(fc.table, { file: fc.file, dir: fc.dir })
  const ipfs = config.sections.ipfs
  if (ipfs) {
    const w = { file: ipfs.file, dir: ipfs.dir }
    const t = ipfs.table
    checkKnownKeys(t, IPFS_KEYS, 'ipfs', w)
    const dataDir = opt(t, 'data_dir', v.path, 'ipfs', w)
    out.ipfs = {
      api: opt(t, 'api', v.nonEmpty, 'ipfs', w),
      token: readToken(t, 'token', 'ipfs', w),
      embedded: {
        listen: opt(t, 'listen', v.strList, 'ipfs', w) ?? ['/ip4/127.0.0.1/tcp/0'],
        public: opt(t, 'public', v.bool, 'ipfs', w) ?? false,
        dataDir: dataDir ? v.resolvePath(dataDir, w.dir) : defaultDataDir(config),
        storeMaxBytes: opt(t, 'store_max', v.size, 'ipfs', w) ?? DEFAULT_STORE_MAX,
        maxWants: opt(t, 'max_wants', v.int(1, 1024), 'ipfs', w) ?? DEFAULT_MAX_WANTS,
        file: ipfs.file,
      },
      local: opt(t, 'local', v.bool, 'ipfs', w) ?? true,
      gateway: opt(t, 'gateway', v.nonEmpty, 'ipfs', w),
      provide: opt(t, 'provide', v.oneOf(['roots', 'none'] as const), 'ipfs', w) ?? 'roots',
      providePerHour: opt(t, 'provide_per_hour', v.int(1), 'ipfs', w) ?? DEFAULT_PROVIDE_PER_HOUR,
    }
  }
  const repl = config.sections.replication
  if (repl) {
    const w = { file: repl.file, dir: repl.dir }
    const t = repl.table
    const p = 'replication'
    checkKnownKeys(t, REPL_KEYS, p, w)
    const D = REPLICATION_DEFAULTS
    const rawTargets = t.targets ?? []
    if (!Array.isArray(rawTargets))
      v.badValue(w, 'replication.targets', 'must be an array of tables ([[replication.targets]])')
    const names = new Set<string>()
    const targets = (rawTargets as unknown[]).map((raw, i) => {
      const tp = `replication.targets[${i}]`
      if (!v.isTable(raw)) return v.badValue(w, tp, `${v.show(raw)} is not a table`)
      checkKnownKeys(raw, TARGET_KEYS, tp, w)
      const name =
        opt(raw, 'name', v.name, tp, w) ?? v.badValue(w, `${tp}.name`, 'missing: every target needs a name')
      if (names.has(name)) v.badValue(w, `${tp}.name`, `a second target named ${name}`)
      names.add(name)
      const type =
        opt(raw, 'type', v.oneOf(TARGET_TYPES), tp, w) ??
        v.badValue(w, `${tp}.type`, `missing: one of ${TARGET_TYPES.map((x) => `"${x}"`).join(', ')}`)
      // A filecoin target's address and wallet are the [filecoin] section's.
      if (type === 'filecoin' && !out.filecoin)
        v.badValue(w, `${tp}.type`, 'a filecoin target needs a [filecoin] section (network, key_file)')
      const api =
        opt(raw, 'api', v.nonEmpty, tp, w) ??
        opt(raw, 'endpoint', v.nonEmpty, tp, w) ??
        (type === 'filecoin' ? (out.filecoin?.rpc ?? '') : undefined) ??
        v.badValue(w, `${tp}.api`, `missing: the ${type} target's address (api or endpoint)`)
      const token = readToken(raw, 'token', tp, w)
      const ipfsApi =
        typeof raw.ipfs_api === 'string'
          ? [v.nonEmpty(raw.ipfs_api, `${tp}.ipfs_api`, w)]
          : (opt(raw, 'ipfs_api', v.strList, tp, w) ?? [])
      if (ipfsApi.length > 0 && type !== 'cluster')
        v.badValue(w, `${tp}.ipfs_api`, `only a cluster target has one (a ${type} target's is its api)`)
      const ipfsApiToken = readToken(raw, 'ipfs_api_token', tp, w)
      if (ipfsApiToken !== undefined && ipfsApi.length === 0)
        v.badValue(w, `${tp}.ipfs_api_token`, 'it authenticates to ipfs_api, which is not set')
      if (type === 'pinning-service' && !token)
        v.badValue(w, `${tp}.token`, 'a pinning service needs an access token (token or token_file)')
      return {
        name,
        type,
        api,
        scope:
          type === 'filecoin'
            ? 'entity'
            : (opt(raw, 'scope', v.oneOf(['tree', 'entity'] as const), tp, w) ?? 'tree'),
        local: opt(raw, 'local', v.bool, tp, w) ?? false,
        concurrency: opt(raw, 'concurrency', v.int(1, 1024), tp, w),
        gateway: opt(raw, 'gateway', v.nonEmpty, tp, w),
        token,
        replicationMin: opt(raw, 'replication_min', v.int(-1, 1000), tp, w),
        replicationMax: opt(raw, 'replication_max', v.int(-1, 1000), tp, w),
        ipfsApi,
        ipfsApiToken,
      } satisfies TargetSettings
    })
    const perMirror: Record<string, number> = {}
    for (const m of config.mirrors) if (m.replicationN !== undefined) perMirror[m.name] = m.replicationN
    const minByKind: Partial<Record<CopyKind, number>> = {}
    const byKind = t.min_by_kind
    if (byKind !== undefined) {
      if (!v.isTable(byKind))
        v.badValue(w, 'replication.min_by_kind', 'must be a table, e.g. { filecoin = 1 }')
      checkKnownKeys(byKind, COPY_KINDS, 'replication.min_by_kind', w)
      for (const k of COPY_KINDS) {
        const min = opt(byKind, k, v.int(0, 1000), 'replication.min_by_kind', w)
        if (min !== undefined) minByKind[k] = min
      }
    }
    const minFilecoin = opt(t, 'min_filecoin', v.int(0, 1000), p, w)
    if (minFilecoin !== undefined) minByKind.filecoin = minFilecoin
    out.replication = {
      n: opt(t, 'n', v.int(0, 1000), p, w) ?? D.n,
      nSet: t.n !== undefined,
      minByKind,
      recheckMs: opt(t, 'recheck', v.duration('s'), p, w) ?? D.recheckMs,
      freshMs: opt(t, 'fresh', v.duration('s'), p, w) ?? D.freshMs,
      concurrency: opt(t, 'concurrency', v.int(1, 1024), p, w) ?? D.concurrency,
      callTimeoutMs: opt(t, 'call_timeout', v.duration('s'), p, w) ?? D.callTimeoutMs,
      retryBackoffMs: opt(t, 'retry_backoff', v.duration('s'), p, w) ?? D.retryBackoffMs,
      retryBackoffMaxMs: opt(t, 'retry_backoff_max', v.duration('s'), p, w) ?? D.retryBackoffMaxMs,
      keepArchivedMs:
        t.keep_archived === 'forever' ? undefined : opt(t, 'keep_archived', v.duration('s'), p, w),
      targets,
      perMirror,
    }
    if (out.replication.recheckMs <= 0) v.badValue(w, 'replication.recheck', 'must be more than 0')
  }
  return out
}

/** The embedded node's folder when `[ipfs] data_dir` is not set: `ipfs` beside the database. */
function defaultDataDir(config: Config): string {
  return join(dirname(config.database.path), 'ipfs')
}

/**
 * The replication settings in force: `[replication]` as configured, or the defaults when the config
 * has `[ipfs]` only (the local node is run and the mirrors are judged against the default n).
 */
export function replicationSettings(r: ReplicationConfig, config: Config): ReplicationSettings | undefined {
  if (r.replication) return r.replication
  if (!r.ipfs) return undefined
  const perMirror: Record<string, number> = {}
  for (const m of config.mirrors) if (m.replicationN !== undefined) perMirror[m.name] = m.replicationN
  return {
    ...REPLICATION_DEFAULTS,
    nSet: false,
    minByKind: {},
    keepArchivedMs: undefined,
    targets: [],
    perMirror,
  }
}

/**
 * A mirror's policy and where its n came from, the one rule the replicator stores by and the audit
 * judges by: the audit's `-n` first, then the mirror's `replication_n`, then `[replication] n`, else
 * the default; the freshness window and the per-kind minimums from `[replication]` (or the defaults).
 */
export function policyOf(
  settings: ReplicationSettings | undefined,
  config: Pick<Config, 'mirrors'>,
  nFlag?: number,
): (mirror: string | undefined) => { policy: ReplicationPolicy; from: PolicySource } {
  const base = {
    freshMs: settings?.freshMs ?? REPLICATION_DEFAULTS.freshMs,
    ...(settings && Object.keys(settings.minByKind).length > 0 ? { minByKind: settings.minByKind } : {}),
  }
  return (mirror) => {
    if (nFlag !== undefined) return { policy: { n: nFlag, ...base }, from: 'flag' }
    const own =
      mirror === undefined
        ? undefined
        : (settings?.perMirror[mirror] ?? config.mirrors.find((m) => m.name === mirror)?.replicationN)
    if (own !== undefined) return { policy: { n: own, ...base }, from: 'mirror' }
    if (settings) return { policy: { n: settings.n, ...base }, from: settings.nSet ? 'config' : 'default' }
    return { policy: { n: REPLICATION_DEFAULTS.n, ...base }, from: 'default' }
  }
}

/** CIDs the local node can reprovide in one cycle (the audit's provide budget), when it announces. */
export function provideCapacity(ipfs: IpfsSettings | undefined): number | undefined {
  if (ipfs?.provide !== 'roots') return undefined
  if (!ipfs.api && !ipfs.embedded.public) return undefined
  return ipfs.providePerHour * REPROVIDE_CYCLE_HOURS
}

function usdfc(t: Record<string, unknown>, key: string, w: v.Where): bigint | undefined {
  const raw = t[key]
  if (raw === undefined) return undefined
  const value = typeof raw === 'number' || typeof raw === 'string' ? parseUsdfc(String(raw)) : undefined
  if (value === undefined)
    v.badValue(w, `filecoin.${key}`, `${v.show(raw)} is not an amount of USDFC (e.g. 5 or "2.5")`)
  return value
}

function readFilecoin(t: Record<string, unknown>, w: v.Where): FilecoinSettings {
  const p = 'filecoin'
  checkKnownKeys(t, FILECOIN_KEYS, p, w)
  const path = (key: string): string | undefined => {
    const raw = opt(t, key, v.path, p, w)
    return raw === undefined ? undefined : v.resolvePath(raw, w.dir)
  }
  const keyFile = path('key_file')
  const sessionKeyFile = path('session_key_file')
  const wallet = opt(t, 'wallet', v.nonEmpty, p, w)
  if (!keyFile && !sessionKeyFile)
    v.badValue(w, 'filecoin.key_file', 'missing: the wallet key file (or session_key_file and wallet)')
  if (keyFile && sessionKeyFile)
    v.badValue(w, 'filecoin.session_key_file', 'give key_file or session_key_file, not both')
  if (sessionKeyFile && !wallet)
    v.badValue(w, 'filecoin.wallet', 'a session key needs the address of the wallet that authorised it')
  if (wallet !== undefined && !/^0x[0-9a-fA-F]{40}$/.test(wallet))
    v.badValue(w, 'filecoin.wallet', `${v.show(wallet)} is not an address (0x and 40 hex digits)`)
  const from = opt(t, 'scan_from_block', v.int(0), p, w)
  return {
    network: opt(t, 'network', v.oneOf(['mainnet', 'calibration'] as const), p, w) ?? 'calibration',
    rpc: opt(t, 'rpc', v.nonEmpty, p, w),
    keyFile,
    sessionKeyFile,
    wallet,
    copies: opt(t, 'copies', v.int(1, 16), p, w) ?? 2,
    capMonth: usdfc(t, 'cap_month', w),
    capTotal: usdfc(t, 'cap_total', w),
    smallFile: opt(t, 'small_file', v.size, p, w),
    pieceTarget: opt(t, 'piece_target', v.size, p, w),
    maxPiece: opt(t, 'max_piece', v.size, p, w),
    scanFromBlock: from === undefined ? undefined : BigInt(from),
    scanEveryMs: opt(t, 'scan_every', v.duration('s'), p, w),
    source: opt(t, 'source', v.name, p, w) ?? 'cidmirror',
    ipni: opt(t, 'ipni', v.strList, p, w) ?? [],
    file: w.file,
  }
}
