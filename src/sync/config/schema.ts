import {
  bool,
  commandList,
  duration,
  exitCodes,
  int,
  MAX_RSYNC_TIMEOUT_MS,
  name,
  nonEmpty,
  oneOf,
  optStr,
  path,
  pathTemplate,
  regex,
  size,
  str,
  strList,
  strMap,
} from './values.ts'

/**
 * Every key cidmirror reads, per section. docs/config.md is the prose of this file: a key added here
 * gets a line there.
 */

const concurrent = int(1, 1024, ' (tunasync deadlocks on 0; leave the key out for the default, 4)')

export const GLOBAL = {
  name,
  mirror_dir: path,
  log_dir: pathTemplate,
  concurrent,
  interval: duration('m'),
  retry: int(0, 100),
  timeout: duration('s'),
  rsync_options: strList,
  exec_on_success: commandList,
  exec_on_failure: commandList,
  success_exit_codes: exitCodes,
  rsync_success_exit_codes: exitCodes,
  dangerous_global_success_exit_codes: exitCodes,
  dangerous_global_rsync_success_exit_codes: exitCodes,
  log_keep: int(1, 100_000),
  kill_grace: duration('s'),
  retry_backoff: duration('s'),
  retry_backoff_max: duration('s'),
}

export const MANAGER = {
  api_base: nonEmpty,
  api_base_list: strList,
  token: optStr,
  token_file: path,
  ca_cert: path,
  listen_addr: nonEmpty,
  listen_port: int(0, 65535),
  ssl_cert: path,
  ssl_key: path,
  read_access: oneOf(['token', 'public'] as const),
}

export const SERVER = {
  hostname: nonEmpty,
  listen_addr: nonEmpty,
  listen_port: int(0, 65535),
  ssl_cert: path,
  ssl_key: path,
}

export const DATABASE = {
  path: path,
}

/**
 * tunasync's manager config: `[server]` with `addr` and `port` is the manager's listener there (read
 * as `[manager] listen_addr`, `listen_port`, `ssl_cert`, `ssl_key`).
 */
export const TUNASYNC_MANAGER_SERVER = {
  addr: nonEmpty,
  port: int(0, 65535),
  ssl_cert: path,
  ssl_key: path,
}

/**
 * tunasync's manager `[files]`: `ca_cert` is read as `[manager] ca_cert`; the others name tunasync's
 * own status database, which cidmirror does not read (warned about at load).
 */
export const TUNASYNC_FILES = {
  ca_cert: path,
  db_type: str,
  db_file: str,
  status_file: str,
}

/** tunasync's optional features: accepted while disabled. */
export const CGROUP = { enable: bool, base_path: str, group: str, subsystem: str }
export const ZFS = { enable: bool, zpool: str }
export const BTRFS = { enable: bool, snapshot_path: str }
export const DOCKER = { enable: bool, volumes: strList, options: strList }

export const MIRROR = {
  name,
  provider: oneOf(['rsync', 'two-stage-rsync', 'command'] as const),
  upstream: str,
  // Any string, as tunasync: "slave" is not the master, anything else is (a warning names others).
  role: str,
  interval: duration('m'),
  retry: int(0, 100),
  timeout: duration('s'),
  mirror_dir: path,
  mirror_subdir: str,
  log_dir: pathTemplate,
  env: strMap,
  command: optStr,
  fail_on_match: regex,
  size_pattern: regex,
  exclude_file: path,
  rsync_options: strList,
  rsync_override: strList,
  rsync_override_only: bool,
  rsync_timeout: duration('s', MAX_RSYNC_TIMEOUT_MS),
  rsync_no_timeout: bool,
  stage1_profile: oneOf(['debian', 'debian-oldstyle'] as const),
  use_ipv4: bool,
  use_ipv6: bool,
  username: optStr,
  password: optStr,
  exec_on_success: commandList,
  exec_on_failure: commandList,
  exec_on_success_extra: commandList,
  exec_on_failure_extra: commandList,
  success_exit_codes: exitCodes,
  rsync_success_exit_codes: exitCodes,
  memory_limit: size,
  log_keep: int(1, 100_000),
  kill_grace: duration('s'),
  /** Minimum verified copies of this mirror (overrides `[replication] n`; read by the daemon). */
  replication_n: int(0, 1000),
  /** The index also keeps each multi-chunk file's whole SHA-256 (the gateway's `Repr-Digest`; read by the daemon). */
  whole_file_digest: bool,
}

/**
 * Sections the sync room reads as opaque tables for other rooms (the daemon parses them): their names
 * only, so `src/sync` stays CID-agnostic while a typo of a section name still fails at load.
 */
export const PASSTHROUGH_SECTIONS = ['ipfs', 'replication', 'gateway', 'filecoin', 'cache'] as const

/** Mirror keys of tunasync features cidmirror does not have, with what to do instead. */
export const MIRROR_UNSUPPORTED: Record<string, string> = {
  docker_image:
    'cidmirror does not run jobs in containers: remove docker_image, docker_volumes and docker_options and make the command runnable on the host',
  docker_volumes:
    'cidmirror does not run jobs in containers: remove docker_image, docker_volumes and docker_options',
  docker_options:
    'cidmirror does not run jobs in containers: remove docker_image, docker_volumes and docker_options',
  snapshot_path: 'btrfs snapshots are not supported: remove snapshot_path',
}
