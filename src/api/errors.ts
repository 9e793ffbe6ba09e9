import { CidmirrorError } from '../errors.ts'

/**
 * The read API's routes throw the index's own errors: the API server answers each with the HTTP
 * status of its row in src/error-codes.ts (a malformed name, path or CID is a 400, an unknown mirror,
 * path or scan a 404). What is left here is the client's side.
 */

/** The database is held by another process, and no daemon's read API answered where the config says. */
export class DaemonUnreachableError extends CidmirrorError {
  /** `reasons`: why each address tried did not do, each naming its URL. */
  constructor(dbPath: string, reasons: string[], options?: { cause?: unknown }) {
    super(
      'DAEMON_UNREACHABLE',
      `database ${dbPath} is held by another process, and no daemon's read API answered (${reasons.join('; ')})`,
      options,
    )
    this.name = 'DaemonUnreachableError'
  }
}

/** `POST /replication/check` (`audit --verify`) on a daemon that runs no replicator. */
export class NoReplicatorError extends CidmirrorError {
  constructor() {
    super(
      'NO_REPLICATOR',
      'this daemon runs no replicator (no [replication] section in its config): nothing can re-check copies',
    )
    this.name = 'NoReplicatorError'
  }
}

/** `POST /cache/janitor` (`cidmirror janitor` while a daemon runs) on a daemon without `[cache]`. */
export class NoJanitorError extends CidmirrorError {
  constructor() {
    super(
      'NO_JANITOR',
      'this daemon runs no cache janitor (no [cache] section in its config): nothing is evicted',
    )
    this.name = 'NoJanitorError'
  }
}
