import { CidmirrorError } from '../errors.ts'

/** Stable codes of config failures. */
export type ConfigErrorCode =
  /** The file cannot be read (missing, permissions). */
  | 'CIDMIRROR_ERR_CONFIG_READ'
  /** Not valid TOML. */
  | 'CIDMIRROR_ERR_CONFIG_SYNTAX'
  /** A key cidmirror does not know. */
  | 'CIDMIRROR_ERR_CONFIG_UNKNOWN_KEY'
  /** A known key with a value of the wrong type or form. */
  | 'CIDMIRROR_ERR_CONFIG_BAD_VALUE'
  /** A required key is absent. */
  | 'CIDMIRROR_ERR_CONFIG_MISSING_KEY'
  /** A tunasync feature cidmirror does not have (docker, cgroups, zfs, btrfs). */
  | 'CIDMIRROR_ERR_CONFIG_UNSUPPORTED'
  /** Include cycles, includes matching nothing, keys set twice across files, duplicate mirror names. */
  | 'CIDMIRROR_ERR_CONFIG_INCLUDE'
  | 'CIDMIRROR_ERR_CONFIG_DUPLICATE'

/**
 * A config problem. The message names the file and the key:
 * `config /etc/x.toml: mirrors[2].interval: "5x" is not a duration`.
 */
export class ConfigError extends CidmirrorError {
  readonly file: string
  readonly key: string | undefined
  constructor(
    code: ConfigErrorCode,
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
