import { CidmirrorError } from '../errors.ts'

/** The directory given to the indexer does not exist. */
export class MirrorRootNotFoundError extends CidmirrorError {
  readonly path: string
  constructor(path: string, options?: { cause?: unknown }) {
    super('MIRROR_ROOT_NOT_FOUND', `no such directory: ${path}`, options)
    this.name = 'MirrorRootNotFoundError'
    this.path = path
  }
}

/** The path given to the indexer exists but is not a directory. */
export class MirrorRootNotDirectoryError extends CidmirrorError {
  readonly path: string
  constructor(path: string) {
    super('NOT_A_DIRECTORY', `not a directory: ${path}`)
    this.name = 'MirrorRootNotDirectoryError'
    this.path = path
  }
}

/** A directory or file inside the mirror cannot be read while scanning. */
export class UnreadablePathError extends CidmirrorError {
  readonly path: string
  constructor(path: string, reason: string, options?: { cause?: unknown }) {
    super('SCAN_UNREADABLE', `cannot read ${path}: ${reason}`, options)
    this.name = 'UnreadablePathError'
    this.path = path
  }
}

/** A mirror name the index cannot hold. */
export class InvalidMirrorNameError extends CidmirrorError {
  constructor(name: string) {
    super(
      'MIRROR_NAME',
      `invalid mirror name ${JSON.stringify(String(name).slice(0, 120))}: use 1 to 100 characters, no "/" or NUL, not "." or ".."`,
    )
    this.name = 'InvalidMirrorNameError'
  }
}

/** A second scan of the same mirror was started in this process while one runs. */
export class ScanInProgressError extends CidmirrorError {
  constructor(mirror: string) {
    super('SCAN_RUNNING', `a scan of mirror ${mirror} is already running`)
    this.name = 'ScanInProgressError'
  }
}

/** The scan was stopped through its AbortSignal; the index is still the previous one. */
export class ScanAbortedError extends CidmirrorError {
  constructor(mirror: string, options?: { cause?: unknown }) {
    super('SCAN_ABORTED', `scan of mirror ${mirror} aborted; the index is unchanged`, options)
    this.name = 'ScanAbortedError'
  }
}

/** A path asked about is in no indexed mirror, or not in the index of its mirror. */
export class PathNotIndexedError extends CidmirrorError {
  readonly path: string
  constructor(path: string, where: string) {
    super('NOT_INDEXED', `${path} is not in ${where}`)
    this.name = 'PathNotIndexedError'
    this.path = path
  }
}

/** A mirror name with no index in this database. */
export class MirrorNotIndexedError extends CidmirrorError {
  constructor(mirror: string) {
    super('MIRROR_NOT_INDEXED', `no mirror named ${mirror} has been indexed in this database`)
    this.name = 'MirrorNotIndexedError'
  }
}

/** A mirror name defaulted from a folder's name is already the index of another folder. */
export class MirrorNameTakenError extends CidmirrorError {
  constructor(mirror: string, indexedRoot: string, root: string) {
    super(
      'INDEX_NAME_TAKEN',
      `mirror ${mirror} is indexed at ${indexedRoot}, not ${root}: pass --name to index ${root} as another mirror (or as ${mirror}, to move it)`,
    )
    this.name = 'MirrorNameTakenError'
  }
}

/** A path asked of the index that it cannot hold: `..` segments, a NUL byte, or past the length limits. */
export class InvalidIndexPathError extends CidmirrorError {
  constructor(path: string, reason: string) {
    const shown = path.length > 120 ? `${path.slice(0, 120)}...` : path
    super('INVALID_PATH', `invalid path ${JSON.stringify(shown)}: ${reason}`)
    this.name = 'InvalidIndexPathError'
  }
}

/** A scan id a mirror has no committed scan of. */
export class UnknownScanError extends CidmirrorError {
  constructor(mirror: string, id: number | string) {
    super('UNKNOWN_SCAN', `mirror ${mirror} has no committed scan ${id}`)
    this.name = 'UnknownScanError'
  }
}
