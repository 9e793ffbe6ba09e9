import { readFile } from 'node:fs/promises'
import type { Logger } from 'pino'
import { Registry } from 'prom-client'
import { registerAuditRoutes, registerIndexRoutes, registerJanitorRoutes } from '../api/index.ts'
import { HashPool } from '../cid/index.ts'
import { type Database, DatabaseLockedError, openDatabase } from '../db.ts'
import type { Gateway, RequestTimes } from '../gateway/index.ts'
import { openIndexReader, openMirrorIndex } from '../index/index.ts'
import { auditMirror, type FileBytes } from '../replicator/index.ts'
import {
  type Backoff,
  type Config,
  ConfigError,
  checkManagerListener,
  DEFAULT_RETRY_BACKOFF,
  type ExtraRoutes,
  loadConfig,
  type ManagerHandle,
  type ServerTls,
  startManager,
  TokenMissingError,
  trustConfiguredCa,
  Worker,
} from '../sync/index.ts'
import { followBlockMap } from './block-map.ts'
import { readCacheConfig, readUpstreamCheck } from './cache-config.ts'
import { createExcludeHook, excludeFileOf } from './exclude-hook.ts'
import { fileBytesVia, startGatewayService } from './gateway.ts'
import { readGatewayConfig } from './gateway-config.ts'
import { holderNodesOf } from './holder-nodes.ts'
import type { IndexMirror } from './index-hook.ts'
import { JanitorService } from './janitor.ts'
import { janitorFigures, registerJanitorMetrics } from './janitor-metrics.ts'
import { buildJobSpecs } from './jobs.ts'
import { localNodeOf } from './local-node.ts'
import { createLogger } from './logger.ts'
import { metricsRegistry, metricsRoute } from './metrics.ts'
import { keysNeedingRestart, replicationKeysNeedingRestart } from './reload.ts'
import { type ReplicationService, startReplication } from './replication.ts'
import {
  policyOf,
  provideCapacity,
  readReplicationConfig,
  replicationSettings,
} from './replication-config.ts'

export { followBlockMap } from './block-map.ts'
export { CACHE_DEFAULTS, type CacheSettings, readCacheConfig, readUpstreamCheck } from './cache-config.ts'
export { fileBytesVia, gatewayPlugins, startGatewayService } from './gateway.ts'
export { defaultGatewaySettings, type GatewaySettings, readGatewayConfig } from './gateway-config.ts'
export { holderNodesOf } from './holder-nodes.ts'
export { createIndexHook, type IndexMirror } from './index-hook.ts'
export { JanitorService } from './janitor.ts'
export { buildJobSpecs } from './jobs.ts'
export { localNodeOf } from './local-node.ts'
export { createLogger } from './logger.ts'
export { metricsRegistry } from './metrics.ts'
export { openFilecoinService, type ReplicationService, startReplication } from './replication.ts'
export {
  policyOf,
  provideCapacity,
  REPLICATION_DEFAULTS,
  readReplicationConfig,
  replicationSettings,
  type TargetSettings,
} from './replication-config.ts'

export interface DaemonOptions {
  config: Config
  /** Run the manager's API (`[manager]` listen address). */
  manager: boolean
  /** Run the worker: its jobs, its control API (`[server]`), its link to the manager(s). */
  worker: boolean
  log?: Logger
  /** Retry backoff of syncs; default from `[global] retry_backoff` and `retry_backoff_max`. */
  retryBackoff?: Backoff
  /** Backoff of the worker's calls to an absent manager (default 0.5 s doubling up to 30 s). */
  linkBackoff?: Backoff
  /** Index each mirror after a successful sync (default true). */
  index?: boolean
  /** An open database to use instead of opening `[database] path`. */
  db?: Database
}

export interface Daemon {
  config: Config
  db: Database
  log: Logger
  manager?: ManagerHandle
  worker?: Worker
  /** The replicator and the local node, when `[replication]` is configured (worker half). */
  replication?: ReplicationService
  /** The HTTP gateway, when `[gateway]` is configured (worker half). */
  gateway?: Gateway
  /** The cache janitor, when `[cache]` is configured (worker half). */
  janitor?: JanitorService
  /**
   * When the gateway last served each file, kept when `[gateway]` runs here and `[cache]` sets
   * `not_requested_within`: the janitor's `lastRequested`.
   */
  requests?: RequestTimes
  /** Filecoin's reader of files no longer on disk: the gateway's fetch-back, when it runs here. */
  fileBytes?: FileBytes
  /**
   * Re-reads the config file (SIGHUP, `jobs reload`): applies its mirrors to the worker and a new
   * token to both halves, and logs the changed keys that need a restart.
   */
  reload(): Promise<void>
  close(): Promise<void>
}

/**
 * Builds every part from the config and starts it: the one LevelDB, the manager's API, the worker
 * with its jobs (providers from src/sync/providers, hooks: log rotation, exec_on_*, and the index
 * step after each success).
 *
 * Database: manager and worker in one process share `[database] path`. Run apart on one machine, the
 * worker keeps `[database] path` (its job records and the index live there) and the manager uses
 * `<path>-manager`; the worker re-sends every job's status when it registers, so the manager's
 * records can always be rebuilt.
 */
export async function startDaemon(opts: DaemonOptions): Promise<Daemon> {
  let config = opts.config
  const log = opts.log ?? createLogger()
  if (!config.manager.token) {
    throw new TokenMissingError(opts.worker ? 'the worker' : 'the manager', config.file)
  }
  const token = config.manager.token
  if (opts.manager) checkManagerListener(config)
  trustConfiguredCa(config)
  for (const w of config.warnings) log.warn(w)
  const dbPath = !opts.worker ? `${config.database.path}-manager` : config.database.path
  const db = opts.db ?? (await openWhenFree(dbPath, log))
  const closers: (() => Promise<void>)[] = []
  const daemon: Daemon = {
    config,
    db,
    log,
    reload: async () => {
      await reloadConfig()
    },
    close: async () => {
      for (const c of closers.reverse()) await c().catch((err) => log.error({ err }, 'close failed'))
      if (!opts.db) await db.close()
    },
  }
  /** Reads the config again and applies what can be applied while running; the new config. */
  const reloadConfig = async (): Promise<Config> => {
    const next = await loadConfig(config.file)
    const nextToken = next.manager.token
    if (!nextToken) throw new TokenMissingError(opts.worker ? 'the worker' : 'the manager', next.file)
    for (const w of next.warnings) log.warn(w)
    const nextRepl = readReplicationConfig(next)
    const later = [
      ...keysNeedingRestart(config, next, opts),
      ...replicationKeysNeedingRestart(repl, nextRepl, opts.worker, daemon.replication !== undefined),
    ]
    if (later.length > 0) {
      log.warn(
        { keys: later },
        `config changed where a reload cannot apply it; restart to apply: ${later.join(', ')}`,
      )
    }
    if (nextToken !== config.manager.token) {
      daemon.manager?.setToken(nextToken)
      daemon.worker?.setToken(nextToken)
      log.info('manager.token changed: the new token is in use, the old one is refused from now on')
    }
    const svc = daemon.replication
    const nextSettings = replicationSettings(nextRepl, next)
    if (svc && nextSettings) {
      const applied = await svc.update(nextSettings)
      if (applied.length > 0) log.info({ keys: applied }, `replication config applied: ${applied.join(', ')}`)
    }
    // [ipfs] and [filecoin] stay as started (their changes need a restart); [replication] is the new one.
    repl = { ipfs: repl.ipfs, replication: nextRepl.replication, filecoin: repl.filecoin }
    config = next
    daemon.config = next
    return next
  }
  // The read API over the index is served by the process that holds it (the worker's database): on the
  // manager's listener when the manager runs here too (`cidmirror daemon`), else on the worker's.
  const reader = openIndexReader(db)
  let repl = readReplicationConfig(config)
  // What the audit judges by: the running replicator's settings, else the config's (one rule, policyOf).
  const settingsNow = () => daemon.replication?.settings ?? replicationSettings(repl, config)
  const cache = readCacheConfig(config, repl.replication)
  let indexRoutes: ExtraRoutes | undefined = opts.worker
    ? (app) => {
        registerIndexRoutes(app, { reader, access: () => config.manager.readAccess, auth: app.auth })
        registerAuditRoutes(app, {
          db,
          policyOf: (n) => policyOf(settingsNow(), config, n),
          provideCapacity: () => provideCapacity(repl.ipfs),
          access: () => config.manager.readAccess,
          auth: app.auth,
          replicator: () => daemon.replication?.replicator,
        })
        registerJanitorRoutes(app, { janitor: () => daemon.janitor, auth: app.auth })
      }
    : undefined
  /** The janitor on `[cache] interval` and after each replication pass, its metrics in `registry`. */
  const startJanitor = (registry: Registry): JanitorService => {
    const node = daemon.replication?.node ?? (repl.ipfs ? localNodeOf(repl.ipfs) : undefined)
    const j = new JanitorService({
      db,
      config: () => config,
      cache: cache!,
      node,
      log,
      ...(daemon.requests ? { lastRequested: daemon.requests.lastRequested.bind(daemon.requests) } : {}),
      busy: (mirror) =>
        daemon.worker?.statuses().some((x) => x.name === mirror && x.status === 'syncing') ?? false,
    })
    registerJanitorMetrics(registry, j)
    daemon.replication?.replicator.on('processed', () => j.request())
    j.start()
    closers.push(() => j.close())
    return j
  }
  try {
    const gatewaySettings = opts.worker ? readGatewayConfig(config) : undefined
    // The gateway feeds the janitor's "not requested within" rule (made before either starts).
    if (gatewaySettings && cache?.policy.notRequestedWithinMs !== undefined) {
      const { RequestTimes } = await import('../gateway/index.ts')
      daemon.requests = new RequestTimes()
    }
    const settings = replicationSettings(repl, config)
    if (opts.worker && settings) {
      // Before the worker starts, so the first scan's commit is followed.
      const svc = await startReplication({
        db,
        log,
        ipfs: repl.ipfs,
        replication: settings,
        filecoin: repl.filecoin,
        // Read at each piece: the gateway (and its fetch-back) starts after the replicator.
        fileBytes: () => daemon.fileBytes,
        mirrorRoots: config.mirrors.map((m) => m.mirrorDir),
        follow: true,
      })
      daemon.replication = svc
      closers.push(() => svc.close())
      const registry = metricsRegistry(svc)
      if (cache) daemon.janitor = startJanitor(registry)
      const metrics = metricsRoute(registry, () => config.manager.readAccess)
      const base = indexRoutes
      indexRoutes = (app) => {
        base?.(app)
        metrics(app)
      }
      svc.replicator.start()
      // Scans committed before a restart (or a kill -9 between commit and track) are published now.
      void svc
        .catchUp()
        .catch((err) => log.error({ err: (err as Error).message }, 'replication catch-up failed'))
    }
    if (gatewaySettings) {
      const holderNodes = holderNodesOf(() => repl.replication?.targets ?? [])
      closers.push(() => holderNodes.close())
      const gw = await startGatewayService({
        settings: gatewaySettings,
        log,
        db,
        ...(daemon.replication ? { extraMetrics: [metricsRegistry(daemon.replication)] } : {}),
        ...(daemon.replication?.node ? { node: daemon.replication.node } : {}),
        jobs: () => daemon.worker?.statuses() ?? [],
        ...(daemon.requests ? { requests: daemon.requests } : {}),
        // Read at each page: the janitor may start after the gateway (without a replicator).
        ...(cache ? { janitor: () => daemon.janitor && janitorFigures(daemon.janitor.counters) } : {}),
        ...(repl.ipfs?.gateway ? { localGateway: repl.ipfs.gateway } : {}),
        holders: holderNodes.holders,
        replication: async (mirror) => {
          // Shown when replication is configured ([ipfs] or [replication]), judged as the audit judges.
          const settings = settingsNow()
          const entry = settings && (await reader.mirrors()).find((m) => m.mirror === mirror)
          if (!entry) return undefined
          const capacity = provideCapacity(repl.ipfs)
          return auditMirror(
            db,
            openMirrorIndex(db, mirror, entry.root),
            policyOf(settings, config)(mirror).policy,
            {
              ...(capacity !== undefined ? { provideCapacity: capacity } : {}),
            },
          )
        },
      })
      daemon.gateway = gw
      if (gw.fetchBack) daemon.fileBytes = fileBytesVia(gw.fetchBack)
      closers.push(() => gw.close())
      // Without a replicator publishing each scan, the trustless routes' block map is kept here.
      if (!daemon.replication) {
        const stop = followBlockMap(db, log)
        closers.push(stop)
      }
    }
    if (opts.worker && cache && !daemon.janitor) {
      const registry = new Registry()
      daemon.janitor = startJanitor(registry)
      const metrics = metricsRoute(registry, () => config.manager.readAccess)
      const base = indexRoutes
      indexRoutes = (app) => {
        base?.(app)
        metrics(app)
      }
    }
    if (opts.manager) {
      const m = config.manager
      const tls = await readTls(config, 'manager', m.sslCert, m.sslKey)
      daemon.manager = await startManager({
        db,
        token,
        listenAddr: m.listenAddr,
        listenPort: m.listenPort,
        listenSource: m.listenSource,
        log,
        ...(tls ? { tls } : {}),
        ...(indexRoutes ? { routes: indexRoutes } : {}),
      })
      closers.push(() => daemon.manager?.close() ?? Promise.resolve())
    }
    if (opts.worker) {
      // One hashing pool for every mirror's index: concurrent jobs share the cores instead of each
      // starting a thread per core. Made at the first index, kept for the daemon's life.
      let pool: HashPool | undefined
      closers.push(() => pool?.destroy() ?? Promise.resolve())
      const indexMirror: IndexMirror | undefined =
        opts.index === false
          ? undefined
          : (mirror, root, signal) => {
              pool ??= new HashPool()
              // Read at each scan: a reload's `whole_file_digest` applies from the next sync on.
              const wholeFileDigest = config.mirrors.find((c) => c.name === mirror)?.wholeFileDigest === true
              return openMirrorIndex(db, mirror, root).scan({ signal, pool, wholeFileDigest })
            }
      // Evicted files stay out of every sync, whether or not [cache] is still configured.
      const specsOf = (c: Config) => {
        const check = readUpstreamCheck(c)
        return buildJobSpecs(c, {
          indexMirror,
          ...(indexMirror
            ? { preExec: (m) => [createExcludeHook(db, m, excludeFileOf(c.database.path, m.name), check)] }
            : {}),
        })
      }
      const s = config.server
      const tls = await readTls(config, 'server', s.sslCert, s.sslKey)
      const worker = new Worker({
        name: config.global.name,
        jobs: specsOf(config),
        db,
        managers: config.manager.apiBaseList,
        token,
        server: {
          listenAddr: s.listenAddr,
          listenPort: s.listenPort,
          hostname: s.hostname,
          listenSource: s.listenSource,
          ...(tls ? { tls } : {}),
          ...(indexRoutes && !opts.manager ? { routes: indexRoutes } : {}),
        },
        concurrent: config.global.concurrent,
        log,
        retryBackoff: opts.retryBackoff ?? {
          ...DEFAULT_RETRY_BACKOFF,
          baseMs: config.global.retryBackoffMs,
          maxMs: config.global.retryBackoffMaxMs,
        },
        ...(opts.linkBackoff ? { linkBackoff: opts.linkBackoff } : {}),
        reload: async () => specsOf(await reloadConfig()),
      })
      await worker.start()
      daemon.worker = worker
      daemon.reload = () => worker.reload()
      closers.push(() => worker.stop())
    }
  } catch (err) {
    await daemon.close()
    throw err
  }
  return daemon
}

/** How long the daemon waits at start for a database another process holds. */
const DB_HELD_WAIT_MS = 10_000

/**
 * Opens the database, waiting a little while another process holds it: a CLI command (`audit`,
 * `stat`) run while no daemon is up reads the database itself, and one started just before the
 * daemon would otherwise keep it from starting. A daemon that holds it is still refused, after the wait.
 */
async function openWhenFree(path: string, log: Logger): Promise<Database> {
  const until = Date.now() + DB_HELD_WAIT_MS
  let told = false
  for (;;) {
    try {
      return await openDatabase(path)
    } catch (err) {
      if (!(err instanceof DatabaseLockedError) || Date.now() > until) throw err
      if (!told)
        log.warn(
          { path },
          `database ${path} is held by another process: waiting up to ${DB_HELD_WAIT_MS / 1000} s`,
        )
      told = true
      await new Promise((r) => setTimeout(r, 100))
    }
  }
}

async function readTls(
  config: Config,
  section: 'manager' | 'server',
  cert: string | undefined,
  key: string | undefined,
): Promise<ServerTls | undefined> {
  if (!cert || !key) return undefined
  return {
    cert: (await readPem(config, `${section}.ssl_cert`, cert)) as string,
    key: (await readPem(config, `${section}.ssl_key`, key)) as string,
  }
}

/** A PEM file named by the config; unreadable, it is the config's error, naming the key. */
async function readPem(config: Config, key: string, file: string | undefined): Promise<string | undefined> {
  if (!file) return undefined
  try {
    return await readFile(file, 'utf8')
  } catch (err) {
    throw new ConfigError(
      'CONFIG_READ',
      config.keyFiles[key] ?? config.file,
      key,
      `cannot read ${file}: ${(err as Error).message}`,
      {
        cause: err,
      },
    )
  }
}

/**
 * Runs a daemon until SIGINT or SIGTERM (a clean stop: running syncs are killed and rerun at the next
 * start); SIGHUP reloads the config, as tunasync's worker does.
 */
export async function runUntilSignal(daemon: Daemon): Promise<void> {
  await new Promise<void>((resolve) => {
    const stop = (signal: string): void => {
      daemon.log.info({ signal }, 'stopping')
      process.off('SIGINT', onInt)
      process.off('SIGTERM', onTerm)
      process.off('SIGHUP', onHup)
      daemon.close().then(resolve, (err) => {
        daemon.log.error({ err }, 'stop failed')
        resolve()
      })
    }
    const onInt = (): void => stop('SIGINT')
    const onTerm = (): void => stop('SIGTERM')
    const onHup = (): void => {
      daemon.log.info('SIGHUP: reloading the config')
      daemon.reload().catch((err) => daemon.log.error({ err: (err as Error).message }, 'reload failed'))
    }
    process.on('SIGINT', onInt)
    process.on('SIGTERM', onTerm)
    process.on('SIGHUP', onHup)
  })
}
