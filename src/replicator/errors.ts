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

/**
 * A block of a file packed for Filecoin is readable neither from the mirror (changed, evicted or
 * deleted since the scan) nor from any source of the fetch-back. The item waits (`waits`): retried
 * with backoff, its queue state `waiting`, not `failing`.
 */
export class FilecoinBlockUnavailableError extends CidmirrorError {
  readonly waits = true
  /** The CID of the file whose block it is. */
  readonly fileCid: string | undefined
  constructor(cid: string, file: string, elsewhere?: string, fileCid?: string) {
    super(
      'FILECOIN_BLOCK_UNAVAILABLE',
      `block ${cid} of ${file} is not on this disk (changed, evicted or deleted since the scan)${elsewhere ? ` and ${elsewhere}` : ''}`,
    )
    this.name = 'FilecoinBlockUnavailableError'
    this.fileCid = fileCid
  }
}

/** Storing would pass the `[filecoin]` spending cap: nothing is stored until the cap or the month allows. */
export class FilecoinSpendCapError extends CidmirrorError {
  constructor(message: string) {
    super('FILECOIN_SPEND_CAP', message)
    this.name = 'FilecoinSpendCapError'
  }
}

/** An upload to Filecoin Onchain Cloud made fewer copies than asked (retried with backoff). */
export class FilecoinUploadError extends CidmirrorError {
  constructor(message: string) {
    super('FILECOIN_UPLOAD', message)
    this.name = 'FilecoinUploadError'
  }
}

/** The `[filecoin]` wallet key file is missing, malformed, or readable by others. */
export class FilecoinKeyFileError extends CidmirrorError {
  constructor(message: string) {
    super('FILECOIN_KEY_FILE', message)
    this.name = 'FilecoinKeyFileError'
  }
}
