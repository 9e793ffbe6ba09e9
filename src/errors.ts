import { type ErrorCode, type ErrorKey, errorCode } from './error-codes.ts'

/**
 * Every failure a user can cause or meet is a class extending this one, in its room's `errors.ts`, with
 * a stable code from the one table in `error-codes.ts` (as fastify's `FST_ERR_...`). The CLI prints the
 * message of these on one line and exits with the code's status; anything else is a bug and gets its
 * stack.
 */
export class CidmirrorError extends Error {
  readonly code: ErrorCode
  constructor(key: ErrorKey, message: string, options?: { cause?: unknown }) {
    super(message, options)
    this.name = 'CidmirrorError'
    this.code = errorCode(key)
  }
}

export function isCidmirrorError(err: unknown): err is CidmirrorError {
  return err instanceof CidmirrorError
}
