/**
 * Every failure a user can cause or meet has a class here or in its room's `errors.ts`, with a stable
 * code (`CIDMIRROR_ERR_...`), as fastify's `FST_ERR_...`. The CLI prints the message of these on one
 * line; anything else is a bug and gets its stack.
 */
export class CidmirrorError extends Error {
  readonly code: string
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options)
    this.name = 'CidmirrorError'
    this.code = code
  }
}

export function isCidmirrorError(err: unknown): err is CidmirrorError {
  return err instanceof CidmirrorError
}
