import { CidmirrorError } from '../errors.ts'

/**
 * Failures of the manager's and the worker's HTTP APIs. The server answers each with its HTTP status
 * and a JSON body `{ "error": message, "code": "CIDMIRROR_ERR_..." }`; the client turns such an answer
 * back into a `RemoteError` with the same code.
 */
export class ApiError extends CidmirrorError {
  readonly statusCode: number
  constructor(statusCode: number, code: string, message: string, options?: { cause?: unknown }) {
    super(code, message, options)
    this.name = 'ApiError'
    this.statusCode = statusCode
  }
}

export class UnauthorizedError extends ApiError {
  constructor() {
    super(401, 'CIDMIRROR_ERR_UNAUTHORIZED', 'missing or wrong token: send "Authorization: Bearer <token>"')
  }
}

export class BadRequestError extends ApiError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(400, 'CIDMIRROR_ERR_BAD_REQUEST', message, options)
  }
}

export class UnknownWorkerError extends ApiError {
  constructor(id: string) {
    super(404, 'CIDMIRROR_ERR_UNKNOWN_WORKER', `worker ${JSON.stringify(id)} is not registered`)
  }
}

export class UnknownMirrorError extends ApiError {
  constructor(mirror: string, where?: string) {
    super(
      404,
      'CIDMIRROR_ERR_UNKNOWN_MIRROR',
      `mirror ${JSON.stringify(mirror)} not found${where ? ` on ${where}` : ''}`,
    )
  }
}

/** The other side answered with an error. */
export class RemoteError extends CidmirrorError {
  readonly statusCode: number
  readonly remoteCode: string
  constructor(url: string, statusCode: number, code: string | undefined, message: string) {
    super(code ?? 'CIDMIRROR_ERR_REMOTE', `${message} (HTTP ${statusCode} from ${url})`)
    this.name = 'RemoteError'
    this.statusCode = statusCode
    this.remoteCode = code ?? 'CIDMIRROR_ERR_REMOTE'
  }
}

/** Nothing answered at that address. */
export class UnreachableError extends CidmirrorError {
  readonly url: string
  constructor(url: string, reason: string, options?: { cause?: unknown }) {
    super('CIDMIRROR_ERR_UNREACHABLE', `cannot reach ${url}: ${reason}`, options)
    this.name = 'UnreachableError'
    this.url = url
  }
}
