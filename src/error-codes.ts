/**
 * The one table of cidmirror's error codes, as fastify's `FST_ERR_*`: every failure a user can meet has
 * a stable code `CIDMIRROR_ERR_<KEY>` here, and exactly one error class (in its room's `errors.ts`) that
 * carries it. A class names its key (`super('DB_LOCKED', ...)`); the full code is spelled only here
 * (test/error-codes.test.ts fails when it is spelled elsewhere in src/, or when two classes share a
 * code), so adding a failure is one line below and one class. docs/errors.md lists the same table.
 *
 * Columns: `room` that owns the class; `exit`, the CLI's exit status when it ends a command (USER for
 * anything the user or the environment can fix, BUG for what only a code change can); `http`, the
 * status an HTTP API answers it with, where an API can return it; `summary`, what it means.
 */

/** A user error ends a CLI command with 2; 1 is kept for a command's "no" (as `audit`: copies below n). */
export const EXIT_USER = 2
/** A bug: sysexits' EX_SOFTWARE. Nothing a user does may cause it. */
export const EXIT_BUG = 70

const USER = EXIT_USER
const BUG = EXIT_BUG

/** The folder under src/ of the class (`core`: src/*.ts). */
export type ErrorRoom =
  | 'core'
  | 'cli'
  | 'daemon'
  | 'api'
  | 'cid'
  | 'index'
  | 'ipfs'
  | 'sync'
  | 'replicator'
  | 'cache'
  | 'gateway'

export interface ErrorCodeInfo {
  readonly room: ErrorRoom
  readonly exit: number
  readonly http?: number
  readonly summary: string
}

// biome-ignore format: one line per code, so that a code added is a line added
export const ERROR_CODES = {
  // core: the database (src/db.ts)
  DB_LOCKED:               { room: 'core',  exit: USER,            summary: 'the database is held by another process (a running daemon)' },
  DB_OPEN:                 { room: 'core',  exit: USER,            summary: 'the database cannot be opened or created' },
  DB_WRITE:                { room: 'core',  exit: USER, http: 507, summary: 'the database cannot store a write (disk full, I/O error); what it holds in memory is served and stored when it can be' },
  // cli: the command line
  USAGE:                   { room: 'cli',   exit: USER,            summary: 'a command-line mistake: a bad option value, a missing argument' },
  CAR_OUTPUT:              { room: 'cli',   exit: USER,            summary: 'the CAR output file cannot be written' },
  QUICKSTART:              { room: 'cli',   exit: USER,            summary: 'the quick start cannot run: rsync is missing, or its rsync daemon did not start' },
  VERIFY_NEEDS_DAEMON:     { room: 'cli',   exit: USER,            summary: 'audit --verify without a running daemon: only the replicator re-checks copies' },
  // api: the daemon's read API, its client
  DAEMON_UNREACHABLE:      { room: 'api',   exit: USER,            summary: "the database is held by another process and no daemon's read API answered" },
  NO_REPLICATOR:           { room: 'api',   exit: USER, http: 409, summary: 'a re-check of copies (audit --verify) asked of a daemon that runs no replicator' },
  NO_JANITOR:              { room: 'api',   exit: USER, http: 409, summary: 'a janitor pass asked of a daemon that runs no cache janitor (no [cache])' },
  // cid: the CID engine
  PATH_NOT_FOUND:          { room: 'cid',   exit: USER,            summary: 'a path given to the CID engine does not exist' },
  UNREADABLE:              { room: 'cid',   exit: USER,            summary: 'a file or directory cannot be read (permissions, I/O error)' },
  FILE_CHANGED:            { room: 'cid',   exit: USER,            summary: 'a file changed while it was hashed' },
  TREE_CHANGED:            { room: 'cid',   exit: USER,            summary: 'a tree changed while it was exported as a CAR' },
  UNSUPPORTED_ENTRY:       { room: 'cid',   exit: USER,            summary: 'an entry UnixFS cannot hold (socket, FIFO, device)' },
  HASH_POOL:               { room: 'cid',   exit: BUG,             summary: 'the hash pool was destroyed with work pending, or a hash worker died' },
  INVALID_CID:             { room: 'cid',   exit: USER, http: 400, summary: 'a string that is not a CID' },
  DAG_MISBUILT:            { room: 'cid',   exit: BUG,             summary: 'a dag-pb node came out with a link size its inputs do not give; refused rather than a wrong CID' },
  // index: the CID index
  MIRROR_ROOT_NOT_FOUND:   { room: 'index', exit: USER,            summary: 'the directory given to the indexer does not exist' },
  NOT_A_DIRECTORY:         { room: 'index', exit: USER,            summary: 'the path given to the indexer is not a directory' },
  SCAN_UNREADABLE:         { room: 'index', exit: USER,            summary: 'a directory or file in the mirror cannot be read while scanning' },
  MIRROR_NAME:             { room: 'index', exit: USER, http: 400, summary: 'a mirror name the index cannot hold' },
  INVALID_PATH:            { room: 'index', exit: USER, http: 400, summary: 'a path the index cannot hold: a .. component, a NUL byte, past the length limits' },
  SCAN_RUNNING:            { room: 'index', exit: USER, http: 409, summary: 'a scan of this mirror is already running in this process' },
  SCAN_ABORTED:            { room: 'index', exit: USER,            summary: 'a scan was stopped; the index is the previous one' },
  NOT_INDEXED:             { room: 'index', exit: USER, http: 404, summary: 'a path is in no indexed mirror, or not in its index' },
  MIRROR_NOT_INDEXED:      { room: 'index', exit: USER, http: 404, summary: 'no mirror of that name has been indexed in this database' },
  UNKNOWN_SCAN:            { room: 'index', exit: USER, http: 404, summary: 'a mirror has no committed scan of that id' },
  INDEX_NAME_TAKEN:        { room: 'index', exit: USER,            summary: 'a mirror name taken from a folder name is the index of another folder' },
  // ipfs: the IPFS node interface (src/ipfs)
  IPFS_UNREACHABLE:        { room: 'ipfs',  exit: USER,            summary: "nothing answered at the IPFS node's API address" },
  IPFS_AUTH_REFUSED:       { room: 'ipfs',  exit: USER,            summary: "the IPFS node's RPC API refused the credentials (a wrong or missing token)" },
  IPFS_COMMAND:            { room: 'ipfs',  exit: USER,            summary: 'the IPFS node answered a command with an error' },
  IPFS_BLOCK_NOT_FOUND:    { room: 'ipfs',  exit: USER,            summary: 'a block is not held by the IPFS node (offline), or the network did not give it' },
  IPFS_BLOCK_MISMATCH:     { room: 'ipfs',  exit: USER,            summary: 'an IPFS node returned bytes that do not hash to the CID asked for' },
  IPFS_UNSUPPORTED_HASH:   { room: 'ipfs',  exit: USER,            summary: 'a CID whose hash function cidmirror cannot check (only sha2-256 and identity)' },
  IPFS_REFERENCE_MISMATCH: { room: 'ipfs',  exit: USER,            summary: 'the IPFS node computed another CID for a file than the index holds' },
  IPFS_FILESTORE:          { room: 'ipfs',  exit: USER,            summary: "the IPFS node cannot reference mirror files in place (filestore off, or the repo's folder does not hold the mirror)" },
  IPFS_INVALID_CID:        { room: 'ipfs',  exit: USER,            summary: 'a string that is not a CID' },
  // sync: config files
  CONFIG_READ:             { room: 'sync',  exit: USER,            summary: 'a config file cannot be read (missing, permissions)' },
  CONFIG_SYNTAX:           { room: 'sync',  exit: USER,            summary: 'a config file is not valid TOML' },
  CONFIG_UNKNOWN_KEY:      { room: 'sync',  exit: USER,            summary: 'a config key cidmirror does not know' },
  CONFIG_BAD_VALUE:        { room: 'sync',  exit: USER,            summary: 'a known config key with a value of the wrong type or form' },
  CONFIG_MISSING_KEY:      { room: 'sync',  exit: USER,            summary: 'a required config key is absent' },
  CONFIG_UNSUPPORTED:      { room: 'sync',  exit: USER,            summary: 'a tunasync feature cidmirror does not have (docker, cgroups, zfs, btrfs)' },
  CONFIG_INCLUDE:          { room: 'sync',  exit: USER,            summary: 'an include cycle, or a file included twice' },
  CONFIG_DUPLICATE:        { room: 'sync',  exit: USER,            summary: 'a key set in two files, or two mirrors with one name' },
  CONFIG_UNSAFE_PATH:      { room: 'sync',  exit: USER,            summary: 'a path a sync would harm: a system folder, overlapping mirrors, a mirror folder holding the database, logs or the config' },
  TOKEN_MISSING:           { room: 'sync',  exit: USER,            summary: 'the manager or worker API has no token configured, or a control command has none to send' },
  COMMAND_LINE:            { room: 'sync',  exit: USER,            summary: 'an exec_on_success / exec_on_failure command that cannot be split into words (an unterminated quote)' },
  LISTEN:                  { room: 'sync',  exit: USER,            summary: "a server cannot listen: the port is in use, needs root, or the address is not this machine's" },
  // sync: a failed run (the job status shows its message)
  SYNC_EXIT:               { room: 'sync',  exit: USER,            summary: 'the sync program exited with a code not counted as success' },
  SYNC_SIGNAL:             { room: 'sync',  exit: USER,            summary: 'the sync program died from a signal cidmirror did not send' },
  SYNC_TIMEOUT:            { room: 'sync',  exit: USER,            summary: "a run took longer than the mirror's timeout; its process group was killed" },
  SYNC_ABORTED:            { room: 'sync',  exit: USER,            summary: 'a run was stopped (stop, shutdown); its process group was killed' },
  SYNC_SPAWN:              { room: 'sync',  exit: USER,            summary: 'the sync program could not be started (not found, not executable, no working folder)' },
  SYNC_FAIL_ON_MATCH:      { room: 'sync',  exit: USER,            summary: "fail_on_match matched the run's log" },
  HOOK:                    { room: 'sync',  exit: USER,            summary: 'a hook stage (exec_on_success, the index step, ...) failed; the run failed' },
  // sync: the manager's and the worker's HTTP APIs, and their client
  UNAUTHORIZED:            { room: 'sync',  exit: USER, http: 401, summary: 'a write or control call without the right bearer token' },
  BAD_REQUEST:             { room: 'sync',  exit: USER, http: 400, summary: 'a request body or parameter the API cannot use' },
  BAD_NAME:                { room: 'sync',  exit: USER, http: 400, summary: 'a mirror name or worker id that breaks the name rules (as in the config)' },
  BAD_MEDIA_TYPE:          { room: 'sync',  exit: USER, http: 415, summary: 'a request body that is not JSON' },
  BODY_TOO_LARGE:          { room: 'sync',  exit: USER, http: 413, summary: 'a request body above 1 MiB' },
  NO_ROUTE:                { room: 'sync',  exit: USER, http: 404, summary: 'no such API route' },
  UNKNOWN_WORKER:          { room: 'sync',  exit: USER, http: 404, summary: 'no worker of that name is registered' },
  UNKNOWN_MIRROR:          { room: 'sync',  exit: USER, http: 404, summary: 'no job of that name on the manager or the worker' },
  INVALID_COMMAND:         { room: 'sync',  exit: USER, http: 400, summary: 'a worker command it does not know' },
  AMBIGUOUS_MIRROR:        { room: 'sync',  exit: USER, http: 409, summary: 'a mirror on several workers was named without worker_id' },
  RELOAD_UNSUPPORTED:      { room: 'sync',  exit: USER, http: 409, summary: 'reload on a worker started without a config file' },
  WORKER_FAILED:           { room: 'sync',  exit: USER, http: 502, summary: 'a worker answered a relayed command with a 5xx or a code this version does not know' },
  WORKER_UNREACHABLE:      { room: 'sync',  exit: USER, http: 502, summary: 'the manager could not deliver a command to a worker' },
  INTERNAL:                { room: 'sync',  exit: BUG,  http: 500, summary: 'a bug in a request handler; its log has the stack' },
  REMOTE:                  { room: 'sync',  exit: USER,            summary: 'the other side answered with an error this version has no code for' },
  UNREACHABLE:             { room: 'sync',  exit: USER,            summary: 'nothing answered at the API address' },
  TOKEN_REFUSED:           { room: 'sync',  exit: USER,            summary: "the manager refused the CLI's token (the message says where the token came from)" },
  // gateway: the HTTP front (src/gateway)
  GATEWAY_NO_FETCHBACK:    { room: 'gateway', exit: USER, http: 503, summary: 'a file evicted from this disk (or one that left the mirror) was asked for and the gateway has no fetch-back configured' },
  GATEWAY_PATH:            { room: 'gateway', exit: USER,          summary: 'two mirrors served at one gateway path, or a mirror path that a gateway route (/ipfs/, /_status, /metrics) takes' },
  // replicator: targets, counters, the queue
  TARGET_UNREACHABLE:      { room: 'replicator', exit: USER,       summary: 'a replication target or copy counter did not answer (retried with backoff)' },
  TARGET_REQUEST:          { room: 'replicator', exit: USER,       summary: 'a replication target answered a request with an error' },
  // gateway: the trustless /ipfs/ endpoint and the status page (src/gateway)
  TRUSTLESS_BAD_REQUEST:   { room: 'gateway', exit: USER, http: 400, summary: 'a trustless /ipfs/ request that is malformed: not a CID, a bad dag-scope, entity-bytes or filename, a path on a raw block' },
  TRUSTLESS_NOT_ACCEPTABLE: { room: 'gateway', exit: USER, http: 406, summary: 'a trustless /ipfs/ request for a response type it does not give (only raw blocks and CARv1, order=dfs)' },
  TRUSTLESS_NOT_HELD:      { room: 'gateway', exit: USER, http: 404, summary: 'a CID whose block neither the mirror nor the local IPFS node holds' },
  TRUSTLESS_NO_SUCH_PATH:  { room: 'gateway', exit: USER, http: 404, summary: 'a path after the CID that names no entry of the DAG' },
  TRUSTLESS_SYMLINK:       { room: 'gateway', exit: USER, http: 404, summary: 'a plain /ipfs/<root>/<path> that meets a UnixFS symlink it does not follow: an absolute target, one climbing above the root, or more than 32 symlinks on one path (a loop)' },
  TRUSTLESS_NOT_CACHED:    { room: 'gateway', exit: USER, http: 412, summary: 'Cache-Control: only-if-cached, and the root block is not held here' },
  TRUSTLESS_RANGE:         { room: 'gateway', exit: USER, http: 416, summary: 'a Range on a raw block that lies past its end' },
  TRUSTLESS_DUPS_LIMIT:    { room: 'gateway', exit: USER,          summary: 'a dups=n CAR that would hold more distinct blocks than the gateway remembers; the connection is aborted (ask with dups=y)' },
  // gateway: fetching evicted files back (src/gateway/fetch-back)
  FETCH_BAD_ANSWER:        { room: 'gateway', exit: USER,          summary: 'a fetch-back source answered with something other than the file: a wrong status, not CAR, a block out of place, truncated' },
  FETCH_SOURCE_TIMEOUT:    { room: 'gateway', exit: USER,          summary: 'a fetch-back source gave no verified block within its time limit' },
  FETCH_NOT_HELD:          { room: 'gateway', exit: USER,          summary: 'the local IPFS node holds no copy of the file and has no peer or routing to ask (the embedded node off the network): the next source is tried at once' },
  FETCH_FAILED:            { room: 'gateway', exit: USER, http: 502, summary: 'an evicted file could not be fetched back, verified, from any source' },
  FETCH_TIMEOUT:           { room: 'gateway', exit: USER, http: 504, summary: 'every fetch-back source of an evicted file timed out' },
  FETCH_CACHE_SHORT:       { room: 'gateway', exit: USER,          summary: 'a fetched-back file in the cache, or its temp file, ended before the bytes it should hold (changed or truncated on disk)' },
  FETCH_SHORT_BODY:        { room: 'gateway', exit: USER,          summary: 'a fetch-back body ended short of its length; the connection is aborted' },
  FILECOIN_BLOCK_UNAVAILABLE: { room: 'replicator', exit: USER,    summary: 'a block of a file packed for Filecoin is readable neither from the mirror (changed, evicted or deleted) nor through the fetch-back; the item waits' },
  FILECOIN_SPEND_CAP:      { room: 'replicator', exit: USER,       summary: 'storing on Filecoin would pass the [filecoin] spending cap (per month or in all)' },
  FILECOIN_UPLOAD:         { room: 'replicator', exit: USER,       summary: 'a Filecoin upload made fewer copies than asked (retried with backoff)' },
  FILECOIN_KEY_FILE:       { room: 'replicator', exit: USER,       summary: 'the [filecoin] key file is missing, malformed or readable by others' },
} as const satisfies Record<string, ErrorCodeInfo>

/** A key of the table: what a class passes to CidmirrorError. */
export type ErrorKey = keyof typeof ERROR_CODES
/** The stable code users match on. */
export type ErrorCode = `CIDMIRROR_ERR_${ErrorKey}`
/** Keys that an HTTP API can answer with (they have an `http` status). */
export type HttpErrorKey = {
  [K in ErrorKey]: (typeof ERROR_CODES)[K] extends { http: number } ? K : never
}[ErrorKey]

export const ERROR_CODE_PREFIX = 'CIDMIRROR_ERR_'

export function errorCode(key: ErrorKey): ErrorCode {
  return `${ERROR_CODE_PREFIX}${key}` as ErrorCode
}

export function errorKeyOf(code: ErrorCode): ErrorKey {
  return code.slice(ERROR_CODE_PREFIX.length) as ErrorKey
}

/** The table row of a full code, or undefined for a code this version does not know (a newer peer's). */
export function errorInfo(code: string): ErrorCodeInfo | undefined {
  if (!code.startsWith(ERROR_CODE_PREFIX)) return undefined
  const key = code.slice(ERROR_CODE_PREFIX.length)
  return Object.hasOwn(ERROR_CODES, key) ? ERROR_CODES[key as ErrorKey] : undefined
}

/** The key of a string that may be a full code (from an HTTP body), when this version knows it. */
export function knownErrorKey(code: string | undefined): ErrorKey | undefined {
  return code !== undefined && errorInfo(code)
    ? (code.slice(ERROR_CODE_PREFIX.length) as ErrorKey)
    : undefined
}

export function isHttpErrorKey(key: ErrorKey): key is HttpErrorKey {
  return (ERROR_CODES[key] as ErrorCodeInfo).http !== undefined
}

export function httpStatusOf(key: HttpErrorKey): number {
  return ERROR_CODES[key].http
}
