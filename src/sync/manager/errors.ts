import { errorKeyOf, type HttpErrorKey, isHttpErrorKey } from '../../error-codes.ts'
import { CidmirrorError } from '../../errors.ts'
import { ApiError, type RemoteError } from '../api-errors.ts'

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
      'AMBIGUOUS_MIRROR',
      `mirror ${JSON.stringify(mirror)} is on several workers (${workers.join(', ')}): name one with worker_id`,
    )
  }
}

/** The manager could not deliver a command to a worker. */
export class WorkerUnreachableError extends ApiError {
  constructor(id: string, url: string, reason: string) {
    super('WORKER_UNREACHABLE', `worker ${id} (${url}) did not answer: ${reason}`)
  }
}

/**
 * A worker refused a command the manager relayed. A refusal that is the caller's mistake (a 4xx with a
 * code of ours) reaches the caller with the worker's code; anything else is a 502 WORKER_FAILED.
 */
export class WorkerRefusedError extends ApiError {
  constructor(id: string, refusal: RemoteError) {
    super(callersMistake(refusal) ?? 'WORKER_FAILED', `worker ${id}: ${refusal.message}`)
    this.name = 'WorkerRefusedError'
  }
}

function callersMistake(refusal: RemoteError): HttpErrorKey | undefined {
  if (refusal.statusCode < 400 || refusal.statusCode >= 500) return undefined
  const key = errorKeyOf(refusal.code)
  return isHttpErrorKey(key) ? key : undefined
}

/** The manager and worker APIs refuse to run without a token. */
export class TokenMissingError extends CidmirrorError {
  constructor(what: string) {
    super(
      'TOKEN_MISSING',
      `${what} needs a token: set [manager] token (or token_file) in the config; every write and control call must carry it`,
    )
  }
}
