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

/**
 * The manager and worker APIs refuse to run without a token, and control commands cannot be sent
 * without one: `config /etc/cidmirror.toml: manager.token: missing: the worker needs a token ...`.
 */
export class TokenMissingError extends CidmirrorError {
  constructor(what: string, file?: string, hint = '; every write and control call carries it') {
    super(
      'TOKEN_MISSING',
      `${file ? `config ${file}: ` : ''}manager.token: missing: ${what} needs a token (set token or token_file in [manager]${hint})`,
    )
    this.name = 'TokenMissingError'
  }
}

/** The manager answered 401 to the token the CLI sent; says where that token came from. */
export class TokenRefusedError extends CidmirrorError {
  constructor(url: string, from: string) {
    super(
      'TOKEN_REFUSED',
      `${url} refused the token from ${from}: it must equal the manager's [manager] token`,
    )
    this.name = 'TokenRefusedError'
  }
}
