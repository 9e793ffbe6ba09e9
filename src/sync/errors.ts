import type { ErrorKey } from '../error-codes.ts'
import { CidmirrorError } from '../errors.ts'

/** The codes of config failures: the `CONFIG_` rows of the table. */
export type ConfigErrorKey = Extract<ErrorKey, `CONFIG_${string}`>

/**
 * A config problem. The message names the file and the key:
 * `config /etc/x.toml: mirrors[2].interval: "5x" is not a duration`.
 */
export class ConfigError extends CidmirrorError {
  readonly file: string
  readonly key: string | undefined
  constructor(
    code: ConfigErrorKey,
    file: string,
    key: string | undefined,
    problem: string,
    options?: { cause?: unknown },
  ) {
    super(code, `config ${file}: ${key ? `${key}: ` : ''}${problem}`, options)
    this.name = 'ConfigError'
    this.file = file
    this.key = key
  }
}

/** A command line that cannot be split into words (an unterminated quote, nothing at all). */
export class CommandLineError extends CidmirrorError {
  constructor(problem: string) {
    super('COMMAND_LINE', problem)
    this.name = 'CommandLineError'
  }
}
