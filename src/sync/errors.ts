import type { ErrorKey } from '../error-codes.ts'
import { CidmirrorError } from '../errors.ts'
import type { ListenSource } from './config/types.ts'

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

/** Listen errors caused by the address rather than the port. */
const ADDRESS_ERRNOS = new Set(['EADDRNOTAVAIL', 'ENOTFOUND', 'EAI_AGAIN'])

/**
 * A server cannot listen: the port is in use, needs root, or the address is not this machine's.
 * `config /etc/cidmirror.toml: server.listen_port: cannot listen on 127.0.0.1:6000: the port is in use`.
 */
export class ListenError extends CidmirrorError {
  readonly address: string
  constructor(
    address: string,
    problem: string,
    options?: { keys?: ListenSource; errno?: string; cause?: unknown },
  ) {
    const k =
      options?.keys && (ADDRESS_ERRNOS.has(options.errno ?? '') ? options.keys.addr : options.keys.port)
    super(
      'LISTEN',
      `${k ? `config ${k.file}: ${k.key}: ` : ''}cannot listen on ${address}: ${problem}`,
      options?.cause === undefined ? undefined : { cause: options.cause },
    )
    this.name = 'ListenError'
    this.address = address
  }
}

/** A command line that cannot be split into words (an unterminated quote, nothing at all). */
export class CommandLineError extends CidmirrorError {
  constructor(problem: string) {
    super('COMMAND_LINE', problem)
    this.name = 'CommandLineError'
  }
}
