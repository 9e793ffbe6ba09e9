import { type HttpErrorKey, httpStatusOf, knownErrorKey } from '../error-codes.ts'
import { CidmirrorError } from '../errors.ts'

/**
 * Failures of the manager's and the worker's HTTP APIs. The server answers each with its HTTP status
 * and a JSON body `{ "error": message, "code": "CIDMIRROR_ERR_<KEY>" }`; the client turns such an answer
 * back into a `RemoteError` with the same code.
 */
export class ApiError extends CidmirrorError {
  readonly statusCode: number
  constructor(key: HttpErrorKey, message: string, options?: { cause?: unknown }) {
    super(key, message, options)
    this.name = 'ApiError'
    this.statusCode = httpStatusOf(key)
  }
}

export class UnauthorizedError extends ApiError {
  constructor() {
    super('UNAUTHORIZED', 'missing or wrong token: send "Authorization: Bearer <token>"')
  }
}

export class BadRequestError extends ApiError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('BAD_REQUEST', message, options)
  }
}

/** A mirror name or worker id that breaks the name rules (src/sync/names.ts), as the config does. */
export class BadNameError extends ApiError {
  constructor(what: string, problem: string) {
    super('BAD_NAME', `${what}: ${problem}`)
  }
}

export class UnknownWorkerError extends ApiError {
  constructor(id: string) {
    super('UNKNOWN_WORKER', `worker ${JSON.stringify(id)} is not registered`)
  }
}

export class UnknownMirrorError extends ApiError {
  constructor(mirror: string, where?: string) {
    super('UNKNOWN_MIRROR', `mirror ${JSON.stringify(mirror)} not found${where ? ` on ${where}` : ''}`)
  }
}

/**
 * The other side answered with an error. `code` is the server's when this version knows it, else
 * the REMOTE code; `remoteCode` is what the server sent, as it sent it.
 */
export class RemoteError extends CidmirrorError {
  readonly statusCode: number
  readonly remoteCode: string
  constructor(url: string, statusCode: number, code: string | undefined, message: string) {
    super(knownErrorKey(code) ?? 'REMOTE', `${message} (HTTP ${statusCode} from ${url})`)
    this.name = 'RemoteError'
    this.statusCode = statusCode
    this.remoteCode = code ?? this.code
  }
}

/** Nothing answered at that address. */
export class UnreachableError extends CidmirrorError {
  readonly url: string
  constructor(url: string, reason: string, options?: { cause?: unknown }) {
    super('UNREACHABLE', `cannot reach ${url}: ${reason}`, options)
    this.name = 'UnreachableError'
    this.url = url
  }
}
