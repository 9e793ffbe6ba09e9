import { CidmirrorError } from '../../errors.ts'

/** A trustless request that is malformed (not a CID, a bad parameter, a path on a raw block): 400. */
export class TrustlessBadRequestError extends CidmirrorError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('TRUSTLESS_BAD_REQUEST', message, options)
    this.name = 'TrustlessBadRequestError'
  }
}

/** A response type the trustless endpoint does not give (a CAR version or order it lacks, HTML): 406. */
export class TrustlessNotAcceptableError extends CidmirrorError {
  constructor(message: string) {
    super('TRUSTLESS_NOT_ACCEPTABLE', message)
    this.name = 'TrustlessNotAcceptableError'
  }
}

/** The root block is held neither by the mirror nor by the local IPFS node: 404 (the spec's "not in this dataset"). */
export class TrustlessNotHeldError extends CidmirrorError {
  readonly cid: string
  constructor(cid: string) {
    super('TRUSTLESS_NOT_HELD', `block ${cid} is not held by this gateway`)
    this.name = 'TrustlessNotHeldError'
    this.cid = cid
  }
}

/** A path segment after the CID that the DAG does not have: 404. */
export class TrustlessNoSuchPathError extends CidmirrorError {
  constructor(path: string, segment: string) {
    super('TRUSTLESS_NO_SUCH_PATH', `${path}: no entry ${JSON.stringify(segment)}`)
    this.name = 'TrustlessNoSuchPathError'
  }
}

/** A UnixFS symlink on a plain download's path that is not followed (absolute, above the root, a loop): 404. */
export class TrustlessSymlinkError extends CidmirrorError {
  constructor(path: string, reason: string) {
    super('TRUSTLESS_SYMLINK', `${path}: ${reason}`)
    this.name = 'TrustlessSymlinkError'
  }
}

/** `Cache-Control: only-if-cached` and the root block is not here: 412, as the path gateway spec says. */
export class TrustlessNotCachedError extends CidmirrorError {
  constructor(cid: string) {
    super('TRUSTLESS_NOT_CACHED', `block ${cid} is not held here (only-if-cached)`)
    this.name = 'TrustlessNotCachedError'
  }
}

/** A Range on a raw block starting past its end: 416 with `Content-Range: bytes *\/SIZE`. */
export class TrustlessRangeError extends CidmirrorError {
  readonly size: number
  constructor(range: string, size: number) {
    super('TRUSTLESS_RANGE', `range ${range} lies past the block's ${size} bytes`)
    this.name = 'TrustlessRangeError'
    this.size = size
  }
}

/** `dups=n` and the CAR would hold more distinct blocks than the gateway remembers: the connection is aborted. */
export class TrustlessDupsLimitError extends CidmirrorError {
  constructor(max: number) {
    super('TRUSTLESS_DUPS_LIMIT', `dups=n: more than ${max} distinct blocks in one CAR; ask with dups=y`)
    this.name = 'TrustlessDupsLimitError'
  }
}
