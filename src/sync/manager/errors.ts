import { CidmirrorError } from '../../errors.ts'
import { ApiError } from '../api-errors.ts'

export {
  ApiError,
  BadRequestError,
  RemoteError,
  UnauthorizedError,
  UnknownMirrorError,
  UnknownWorkerError,
  UnreachableError,
} from '../api-errors.ts'

/** `POST /cmd` names a mirror that several workers have, without `worker_id`. */
export class AmbiguousMirrorError extends ApiError {
  constructor(mirror: string, workers: string[]) {
    super(
      409,
      'CIDMIRROR_ERR_AMBIGUOUS_MIRROR',
      `mirror ${JSON.stringify(mirror)} is on several workers (${workers.join(', ')}): name one with worker_id`,
    )
  }
}

/** The manager could not deliver a command to a worker. */
export class WorkerUnreachableError extends ApiError {
  constructor(id: string, url: string, reason: string) {
    super(502, 'CIDMIRROR_ERR_WORKER_UNREACHABLE', `worker ${id} (${url}) did not answer: ${reason}`)
  }
}

/** The manager and worker APIs refuse to run without a token. */
export class TokenMissingError extends CidmirrorError {
  constructor(what: string) {
    super(
      'CIDMIRROR_ERR_TOKEN_MISSING',
      `${what} needs a token: set [manager] token (or token_file) in the config; every write and control call must carry it`,
    )
  }
}

/** A command-line mistake of the jobs CLI (a bad status filter, a missing worker name). */
export class ClientUsageError extends CidmirrorError {
  constructor(message: string) {
    super('CIDMIRROR_ERR_USAGE', message)
  }
}
