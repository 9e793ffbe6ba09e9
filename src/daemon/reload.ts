import type { Config } from '../sync/index.ts'
import type { ReplicationConfig } from './replication-config.ts'

/**
 * Config keys a reload does not apply: the listeners, the database, the worker's name and limits
 * are set up once at start. Mirrors (and the global defaults they inherit) and the token are applied
 * by a reload; a change to one of these is logged as needing a restart, so it is never silently
 * ignored. TLS certificate files are read at start too: a renewed certificate needs a restart.
 */
const RESTART_KEYS: { key: string; role: 'manager' | 'worker' | 'both'; of: (c: Config) => unknown }[] = [
  { key: 'global.name', role: 'worker', of: (c) => c.global.name },
  { key: 'global.concurrent', role: 'worker', of: (c) => c.global.concurrent },
  { key: 'global.retry_backoff', role: 'worker', of: (c) => c.global.retryBackoffMs },
  { key: 'global.retry_backoff_max', role: 'worker', of: (c) => c.global.retryBackoffMaxMs },
  { key: 'manager.api_base', role: 'worker', of: (c) => c.manager.apiBaseList },
  { key: 'manager.ca_cert', role: 'both', of: (c) => c.manager.caCert },
  { key: 'manager.listen_addr', role: 'manager', of: (c) => c.manager.listenAddr },
  { key: 'manager.listen_port', role: 'manager', of: (c) => c.manager.listenPort },
  { key: 'manager.ssl_cert', role: 'manager', of: (c) => c.manager.sslCert },
  { key: 'manager.ssl_key', role: 'manager', of: (c) => c.manager.sslKey },
  { key: 'server.hostname', role: 'worker', of: (c) => c.server.hostname },
  { key: 'server.listen_addr', role: 'worker', of: (c) => c.server.listenAddr },
  { key: 'server.listen_port', role: 'worker', of: (c) => c.server.listenPort },
  { key: 'server.ssl_cert', role: 'worker', of: (c) => c.server.sslCert },
  { key: 'server.ssl_key', role: 'worker', of: (c) => c.server.sslKey },
  { key: 'database.path', role: 'both', of: (c) => c.database.path },
  { key: 'debug', role: 'both', of: (c) => c.debug },
]

/** The keys that changed from `prev` to `next` and only take effect after a restart of this process. */
export function keysNeedingRestart(
  prev: Config,
  next: Config,
  roles: { manager: boolean; worker: boolean },
): string[] {
  return RESTART_KEYS.filter(
    (k) => (k.role === 'both' || roles[k.role]) && JSON.stringify(k.of(prev)) !== JSON.stringify(k.of(next)),
  ).map((k) => k.key)
}

/**
 * `[ipfs]`, `[replication]` and `[filecoin]` keys a reload does not apply. The local node is built once
 * (every `[ipfs]` key needs a restart), and so is the Filecoin service (its wallet, chain and storing
 * rules: every `[filecoin]` key); `[replication]` is applied while the replicator runs (n, targets,
 * timings: ReplicationService.update), but a replicator is not started or stopped by a reload: adding
 * the first `[replication]`/`[ipfs]` section, or removing it, needs a restart.
 */
export function replicationKeysNeedingRestart(
  prev: ReplicationConfig,
  next: ReplicationConfig,
  worker: boolean,
  running: boolean,
): string[] {
  if (!worker) return []
  const out: string[] = []
  const a = prev.ipfs
  const b = next.ipfs
  if (!a !== !b) out.push('ipfs')
  else if (a && b)
    for (const [k, of] of IPFS_KEYS)
      if (JSON.stringify(of(a)) !== JSON.stringify(of(b))) out.push(`ipfs.${k}`)
  const wants = next.replication !== undefined || next.ipfs !== undefined
  if (wants !== running && !out.includes('ipfs')) out.push('replication')
  const f = prev.filecoin
  const g = next.filecoin
  if (!f !== !g) out.push('filecoin')
  else if (f && g)
    for (const [k, of] of FILECOIN_KEYS) if (shown(of(f)) !== shown(of(g))) out.push(`filecoin.${k}`)
  return out
}

/** A settings value as comparable text (the USDFC caps and the scan's first block are bigints). */
function shown(x: unknown): string {
  return JSON.stringify(x, (_k, v) => (typeof v === 'bigint' ? `${v}n` : v)) ?? 'undefined'
}

const IPFS_KEYS: [string, (s: NonNullable<ReplicationConfig['ipfs']>) => unknown][] = [
  ['api', (s) => s.api],
  // Named, never shown: the warning lists keys only.
  ['token', (s) => s.token],
  ['local', (s) => s.local],
  ['gateway', (s) => s.gateway],
  ['provide', (s) => s.provide],
  ['provide_per_hour', (s) => s.providePerHour],
  ['listen', (s) => s.embedded.listen],
  ['public', (s) => s.embedded.public],
  ['data_dir', (s) => s.embedded.dataDir],
  ['store_max', (s) => s.embedded.storeMaxBytes],
  ['max_wants', (s) => s.embedded.maxWants],
]

const FILECOIN_KEYS: [string, (s: NonNullable<ReplicationConfig['filecoin']>) => unknown][] = [
  ['network', (s) => s.network],
  ['rpc', (s) => s.rpc],
  ['key_file', (s) => s.keyFile],
  ['session_key_file', (s) => s.sessionKeyFile],
  ['wallet', (s) => s.wallet],
  ['copies', (s) => s.copies],
  ['cap_month', (s) => s.capMonth],
  ['cap_total', (s) => s.capTotal],
  ['small_file', (s) => s.smallFile],
  ['piece_target', (s) => s.pieceTarget],
  ['max_piece', (s) => s.maxPiece],
  ['scan_from_block', (s) => s.scanFromBlock],
  ['scan_every', (s) => s.scanEveryMs],
  ['source', (s) => s.source],
  ['ipni', (s) => s.ipni],
]
