import { CidmirrorError } from '../errors.ts'

/** A path given to the CID engine does not exist. */
export class PathNotFoundError extends CidmirrorError {
  readonly path: string
  constructor(path: string, options?: { cause?: unknown }) {
    super('PATH_NOT_FOUND', `no such file or directory: ${path}`, options)
    this.name = 'PathNotFoundError'
    this.path = path
  }
}

/** A file or directory exists but cannot be read (permissions, I/O error). */
export class UnreadableFileError extends CidmirrorError {
  readonly path: string
  constructor(path: string, reason: string, options?: { cause?: unknown }) {
    super('UNREADABLE', `cannot read ${path}: ${reason}`, options)
    this.name = 'UnreadableFileError'
    this.path = path
  }
}

/**
 * A file changed while it was being hashed (its size moved, or the entry listed as a regular file is
 * no longer one): its CID would describe no real content.
 */
export class FileChangedError extends CidmirrorError {
  readonly path: string
  constructor(path: string, expected: number | string, got?: number) {
    super(
      'FILE_CHANGED',
      typeof expected === 'string'
        ? `${path} changed while hashing (${expected})`
        : `${path} changed while hashing (expected ${expected} bytes, read ${got})`,
    )
    this.name = 'FileChangedError'
    this.path = path
  }
}

/** An entry type UnixFS cannot hold (socket, FIFO, device). */
export class UnsupportedEntryError extends CidmirrorError {
  readonly path: string
  constructor(path: string, what: string) {
    super('UNSUPPORTED_ENTRY', `cannot add ${path}: unsupported file type (${what})`)
    this.name = 'UnsupportedEntryError'
    this.path = path
  }
}

/** The hash pool was destroyed while work was pending, or a worker died. */
export class HashPoolError extends CidmirrorError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('HASH_POOL', message, options)
    this.name = 'HashPoolError'
  }
}

/**
 * A dag-pb node came out of its builder with a link Tsize other than the one its inputs give: refused,
 * so no wrong CID is ever recorded or served (issue 10's heisenbug under a loaded V8; a bug to report).
 */
export class DagMisbuiltError extends CidmirrorError {
  constructor(link: number, written: number | undefined, expected: number | undefined) {
    super(
      'DAG_MISBUILT',
      `a dag-pb node was built with link ${link} of Tsize ${written ?? 'none'} where its inputs say ${expected ?? 'none'}: refusing its CID`,
    )
    this.name = 'DagMisbuiltError'
  }
}

/** A string that is not a CID. */
export class MalformedCidError extends CidmirrorError {
  constructor(text: string, options?: { cause?: unknown }) {
    const shown = text.length > 80 ? `${text.slice(0, 80)}...` : text
    super('INVALID_CID', `not a CID: ${JSON.stringify(shown)}`, options)
    this.name = 'MalformedCidError'
  }
}

/** Turn a Node fs error for `path` into one of ours; anything else passes through. */
export function fsError(path: string, err: unknown): unknown {
  const code = (err as NodeJS.ErrnoException | undefined)?.code
  if (code === 'ENOENT' || code === 'ENOTDIR') return new PathNotFoundError(path, { cause: err })
  if (code === 'EACCES' || code === 'EPERM')
    return new UnreadableFileError(path, 'permission denied', { cause: err })
  if (err instanceof CidmirrorError) return err
  if (code === 'EISDIR') return new UnreadableFileError(path, 'is a directory', { cause: err })
  if (typeof code === 'string' && code.startsWith('E'))
    return new UnreadableFileError(path, (err as Error).message, { cause: err })
  return err
}
