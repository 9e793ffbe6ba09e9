import { CidmirrorError } from '../errors.ts'

/** The node's API does not answer (connection refused, DNS, reset): it is down or the address is wrong. */
export class IpfsUnreachableError extends CidmirrorError {
  readonly url: string
  constructor(url: string, reason: string, options?: { cause?: unknown }) {
    super('IPFS_UNREACHABLE', `cannot reach the IPFS node's API at ${url}: ${reason}`, options)
    this.name = 'IpfsUnreachableError'
    this.url = url
  }
}

/**
 * The node's RPC API refused the credentials sent, or their absence (Kubo's `API.Authorizations`: 403
 * "Kubo RPC Access Denied"). `what` is the config key of the address (`ipfs.api`); no credential is named.
 */
export class IpfsAuthRefusedError extends CidmirrorError {
  constructor(url: string, what: string, detail: string) {
    detail = detail.replace(/\s*\n\s*/g, ' ').trim()
    super(
      'IPFS_AUTH_REFUSED',
      `${what}: the IPFS node at ${url} refused the credentials (403 ${detail || 'Forbidden'}): set the token or token_file beside it to one of the node's API.Authorizations`,
    )
    this.name = 'IpfsAuthRefusedError'
  }
}

/** The node answered a command with an error; `command` is the RPC path (`pin/add`), `detail` its message. */
export class IpfsCommandError extends CidmirrorError {
  readonly command: string
  readonly detail: string
  constructor(url: string, command: string, detail: string, options?: { cause?: unknown }) {
    // Kubo lists each failed dial on a line of its own: one line here, as every user error.
    detail = detail.replace(/\s*\n\s*/g, ' ').trim()
    super('IPFS_COMMAND', `IPFS node at ${url}: ${command} failed: ${detail}`, options)
    this.name = 'IpfsCommandError'
    this.command = command
    this.detail = detail
  }
}

/** A block asked for is not in the node's blockstore (and the network was not asked, or did not have it). */
export class BlockNotFoundError extends CidmirrorError {
  readonly cid: string
  constructor(cid: string, where: string, options?: { cause?: unknown }) {
    super('IPFS_BLOCK_NOT_FOUND', `block ${cid} is not held by ${where}`, options)
    this.name = 'BlockNotFoundError'
    this.cid = cid
  }
}

/** Bytes that do not hash to the CID they were asked for (promise 2: never passed on). */
export class BlockMismatchError extends CidmirrorError {
  readonly cid: string
  constructor(cid: string, where: string) {
    super('IPFS_BLOCK_MISMATCH', `${where} returned bytes for ${cid} that do not hash to it`)
    this.name = 'BlockMismatchError'
    this.cid = cid
  }
}

/** A CID whose hash function the node interface cannot check (only sha2-256 and identity are used). */
export class UnsupportedHashError extends CidmirrorError {
  constructor(cid: string, code: number) {
    super(
      'IPFS_UNSUPPORTED_HASH',
      `cannot verify ${cid}: multihash 0x${code.toString(16)} (only sha2-256 and identity are checked)`,
    )
    this.name = 'UnsupportedHashError'
  }
}

/** The node computed another CID for a file than the index holds for it (the file changed, or a profile differs). */
export class ReferenceMismatchError extends CidmirrorError {
  readonly path: string
  constructor(path: string, expected: string, got: string) {
    super(
      'IPFS_REFERENCE_MISMATCH',
      `the IPFS node computed ${got} for ${path}, the index holds ${expected}: the file changed, or the node's import settings differ from unixfs-v1-2025`,
    )
    this.name = 'ReferenceMismatchError'
    this.path = path
  }
}

/** The node cannot reference files in place: its filestore is off, or the file lies outside what it may reference. */
export class FilestoreLayoutError extends CidmirrorError {
  /** `off`: the node references nothing in place; `outside`: this path lies where it may not. */
  readonly reason: 'off' | 'outside'
  constructor(reason: 'off' | 'outside', message: string, options?: { cause?: unknown }) {
    super('IPFS_FILESTORE', message, options)
    this.name = 'FilestoreLayoutError'
    this.reason = reason
  }
}

/** A CID string that does not parse. */
export class InvalidCidError extends CidmirrorError {
  constructor(cid: string, options?: { cause?: unknown }) {
    super('IPFS_INVALID_CID', `not a CID: ${JSON.stringify(cid)}`, options)
    this.name = 'InvalidCidError'
  }
}
