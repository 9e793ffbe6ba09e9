import { ApiError } from '../api-errors.ts'

export { BadRequestError, UnknownMirrorError } from '../api-errors.ts'

/** A command the worker does not know (tunasync answers 406). */
export class InvalidCommandError extends ApiError {
  constructor(cmd: unknown) {
    super('INVALID_COMMAND', `invalid command ${JSON.stringify(cmd)}`)
  }
}

/** `reload` on a worker started without a config file to reload. */
export class ReloadUnsupportedError extends ApiError {
  constructor() {
    super('RELOAD_UNSUPPORTED', 'this worker has no config file to reload')
  }
}
