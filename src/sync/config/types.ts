/**
 * The resolved sync configuration: what `loadConfig()` returns after reading the TOML file and its
 * includes, applying defaults, resolving units and paths, and flattening nested mirrors.
 *
 * Conventions: durations are milliseconds (`...Ms`), sizes are bytes, paths are absolute (relative
 * paths in a file are resolved against that file's folder), arrays are never undefined.
 */

export type ProviderKind = 'rsync' | 'two-stage-rsync' | 'command'

/** Stage-1 profiles of two-stage-rsync (tunasync's names). */
export type Stage1Profile = 'debian' | 'debian-oldstyle'

export interface GlobalConfig {
  /** Worker name (tunasync's `[global] name`); default: the host name. */
  name: string
  /** Root of all mirrors; a mirror lives in `mirrorDir/mirror_subdir/name` unless it sets its own. `''` when unset (only allowed when no mirror needs it). */
  mirrorDir: string
  /**
   * Log folder template as written (absolute), e.g. `/var/log/tunasync/{{.Name}}`.
   * Each mirror's resolved folder is `MirrorConfig.logDir`.
   */
  logDir: string
  /** Jobs running at once; default 4; never 0. */
  concurrent: number
  /** Default interval between syncs; default 120 minutes (tunasync's example value). */
  intervalMs: number
  /** Attempts per run in all (tunasync's meaning); default 2. */
  retry: number
  /** Default wall-clock limit per run; 0 = none (tunasync's default). */
  timeoutMs: number
  /** Appended to the rsync defaults of every rsync mirror, before the mirror's own `rsync_options`. */
  rsyncOptions: string[]
  execOnSuccess: string[]
  execOnFailure: string[]
  /** Exit codes counted as success for every mirror (tunasync: `dangerous_global_success_exit_codes`). */
  successExitCodes: number[]
  /** Same, rsync and two-stage-rsync mirrors only (`dangerous_global_rsync_success_exit_codes`). */
  rsyncSuccessExitCodes: number[]
  /** Logs kept per mirror by log rotation; default 10. */
  logKeep: number
  /** Time between TERM and KILL when a run is stopped or times out; default 10 s. */
  killGraceMs: number
  /** First delay before retrying a failed sync; doubles per retry (tunasync retries at once). Default 30 s. */
  retryBackoffMs: number
  /** Longest retry delay (never past the mirror's interval). Default 1 h. */
  retryBackoffMaxMs: number
}

export interface ManagerConfig {
  /** Base URL of the manager's HTTP API, e.g. `http://127.0.0.1:14242` (first of `apiBaseList`). */
  apiBase: string
  /** tunasync's `api_base_list` (overrides `api_base`); always at least `[apiBase]`. */
  apiBaseList: string[]
  /** Bearer token for every write/control call (manager and worker APIs); from `token` or `token_file`. */
  token: string | undefined
  /** CA certificate (PEM file) to trust when talking to the manager over HTTPS. */
  caCert: string | undefined
  /** Where the manager listens when this process runs one; default: host and port of `apiBase`. */
  listenAddr: string
  listenPort: number
  /** Neither `listen_addr` nor `listen_port` is set: the manager listens where `apiBase` points. */
  listensAtApiBase: boolean
  /** Where `listenAddr` and `listenPort` are set, for errors such as a port in use. */
  listenSource: ListenSource
  sslCert: string | undefined
  sslKey: string | undefined
  /** Who may read the daemon's read API (`GET /index/...`): token holders (default) or anyone. */
  readAccess: 'token' | 'public'
}

/** The file and the key that set a value (the main file when the value is a default). */
export interface KeySource {
  file: string
  key: string
}

export interface ListenSource {
  addr: KeySource
  port: KeySource
}

/** The worker's own HTTP server (tunasync's `[server]`): the manager sends commands here. */
export interface ServerConfig {
  /** Name under which the manager reaches this worker; default: the host name. */
  hostname: string
  /** Default `127.0.0.1`. */
  listenAddr: string
  /** Default 6000. */
  listenPort: number
  listenSource: ListenSource
  sslCert: string | undefined
  sslKey: string | undefined
}

/** The daemon's one LevelDB (`[database] path`). */
export interface DatabaseConfig {
  /** Default `$XDG_STATE_HOME/cidmirror/<global.name>` (`~/.local/state/...`). */
  path: string
}

export interface MirrorConfig {
  /** Unique; leaf name of nested mirrors (parents are not mirrors themselves, as in tunasync). */
  name: string
  provider: ProviderKind
  upstream: string
  /** tunasync's `role`: false for `role = "slave"`, true for anything else. */
  isMaster: boolean
  /** `role` as written (tunasync reads any value; only "slave" is not the master). */
  role: string | undefined
  intervalMs: number
  retry: number
  /** Wall-clock limit of one run (all stages), enforced by the provider itself; 0 = none. The job must not add its own. */
  timeoutMs: number
  /** Absolute working folder: `mirror_dir`, or `global.mirrorDir/mirror_subdir/name`. */
  mirrorDir: string
  /** Absolute log folder with the `{{.Name}}` template resolved. */
  logDir: string
  /** Extra environment of the provider's processes. */
  env: Record<string, string>
  /**
   * command provider: the shell command line (run with `sh -c` in `mirrorDir`).
   * rsync providers: the rsync binary (tunasync's meaning), default `rsync`.
   */
  command: string | undefined
  /** A match anywhere in the run's log fails the run (command provider). */
  failOnMatch: RegExp | undefined
  /** Group 1 of the last match in the log is the size (command provider). */
  sizePattern: RegExp | undefined
  /** Absolute path handed to rsync as `--exclude-from`. */
  excludeFile: string | undefined
  /** Global `rsync_options` followed by this mirror's (already merged). */
  rsyncOptions: string[]
  /** Replaces the default rsync flags when set. */
  rsyncOverride: string[] | undefined
  /** Use `rsyncOverride` alone: no timeout, -4/-6, exclude file or rsync_options added. */
  rsyncOverrideOnly: boolean
  /** rsync's `--timeout`: default 120 s; 0 = none (`rsync_no_timeout = true`). */
  rsyncTimeoutMs: number
  /** two-stage-rsync only; default `debian`. */
  stage1Profile: Stage1Profile
  useIPv4: boolean
  useIPv6: boolean
  /** rsync daemon user and password (`USER`, `RSYNC_PASSWORD`). */
  username: string | undefined
  password: string | undefined
  /** The mirror's list or else the global one, then the `_extra` list. */
  execOnSuccess: string[]
  execOnFailure: string[]
  /** Global and mirror codes merged (for rsync mirrors also the rsync-only lists); 0 is implied. */
  successExitCodes: number[]
  /** Address-space limit of the provider's processes in bytes (prlimit --as); undefined = none. */
  memoryLimit: number | undefined
  /** Inherited from global. */
  logKeep: number
  killGraceMs: number
  /** `replication_n`: this mirror's minimum verified copies, overriding `[replication] n`. */
  replicationN: number | undefined
  /** `whole_file_digest`: the index keeps each multi-chunk file's whole SHA-256 too. */
  wholeFileDigest: boolean
  /** Where the mirror was declared, for messages: `{ file: '/etc/x.toml', key: 'mirrors[2].mirrors[0]' }`. */
  source: { file: string; key: string }
}

export interface Config {
  /** Absolute path of the main file. */
  file: string
  /** Every file read (main file first, then includes in order). */
  files: string[]
  /** The file each key of `[global]`, `[manager]`, `[server]`, `[database]` was set in (`"manager.token"`). */
  keyFiles: Record<string, string>
  /** tunasync's top-level `debug`: log at debug level (unless `CIDMIRROR_LOG_LEVEL` says otherwise). */
  debug: boolean
  /** What the config holds that is accepted but does nothing, one line each (`config FILE: key: why`). */
  warnings: string[]
  global: GlobalConfig
  manager: ManagerConfig
  server: ServerConfig
  database: DatabaseConfig
  /** Leaves of nested mirrors, unique names; the main file's first, then each included file's (depth first). */
  mirrors: MirrorConfig[]
  /**
   * Sections other rooms parse (`[ipfs]`, `[replication]`): the table as written and the file that
   * set it (one file per section; relative paths resolve against `dir`).
   */
  sections: Record<string, PassthroughSection>
}

export interface PassthroughSection {
  table: Record<string, unknown>
  file: string
  dir: string
}
