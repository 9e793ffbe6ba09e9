import { CidmirrorError } from '../errors.ts'

/** A command-line mistake (a bad status filter, a missing worker name, no config file). */
export class UsageError extends CidmirrorError {
  constructor(message: string) {
    super('USAGE', message)
    this.name = 'UsageError'
  }
}

/** `cidmirror car -o FILE`: the output file cannot be created. */
export class CarOutputError extends CidmirrorError {
  constructor(output: string, reason: string, options?: { cause?: unknown }) {
    super('CAR_OUTPUT', `cannot write ${output}: ${reason}`, options)
    this.name = 'CarOutputError'
  }
}

/** `./quickstart` / `npm start`: what it needs and does not find (rsync, a working rsync daemon). */
export class QuickstartError extends CidmirrorError {
  constructor(message: string) {
    super('QUICKSTART', message)
    this.name = 'QuickstartError'
  }
}

/** `audit --verify` when no daemon holds the database: the re-check is the replicator's. */
export class VerifyNeedsDaemonError extends CidmirrorError {
  constructor(db: string) {
    super(
      'VERIFY_NEEDS_DAEMON',
      `audit --verify needs the running daemon (its replicator re-checks the copies); database ${db} is not held by one: start \`cidmirror daemon\`, or audit without --verify`,
    )
    this.name = 'VerifyNeedsDaemonError'
  }
}
