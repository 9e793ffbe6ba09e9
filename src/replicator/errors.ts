import { CidmirrorError } from '../errors.ts'

/** A target or counter did not answer: the replicator retries it with backoff, the others go on. */
export class TargetUnreachableError extends CidmirrorError {
  constructor(target: string, url: string, reason: string) {
    super('TARGET_UNREACHABLE', `replication target ${target} (${url}) did not answer: ${reason}`)
    this.name = 'TargetUnreachableError'
  }
}

/** A target answered with an error status. */
export class TargetRequestError extends CidmirrorError {
  readonly status: number
  constructor(target: string, what: string, status: number, message: string) {
    super('TARGET_REQUEST', `replication target ${target}: ${what} answered ${status}: ${message}`)
    this.name = 'TargetRequestError'
    this.status = status
  }
}
