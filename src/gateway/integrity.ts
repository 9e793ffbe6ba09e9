/**
 * Integrity headers from what the index already knows, with no hashing per request: the CID as the
 * ETag, `X-Ipfs-Roots` (the CIDs along the path, as Kubo's gateway sends them), and RFC 9530's
 * `Repr-Digest` where the CID is the file's SHA-256: a file of one chunk has a raw-leaf CID whose
 * multihash is sha2-256 of its bytes; a larger file's record carries it when the scan computed it
 * (`whole_file_digest`).
 */
import { CID } from 'multiformats/cid'

const RAW = 0x55
const SHA2_256 = 0x12

/** The whole file's SHA-256 in base64: from a one-chunk file's CID, or the record's `sha256`. */
function sha256Of(cid: string, sha256: string | undefined): string | undefined {
  return sha256B64OfCid(cid) ?? sha256
}

/**
 * `sha-256=:<base64>:` when the whole file's SHA-256 is known: `cid` is a raw block hashed with
 * sha2-256, or the record's `sha256` (a multi-chunk file, hashed with the CID from the same bytes).
 * The caller passes only a record whose stat matches the file served.
 */
export function reprDigestOf(cid: string, sha256?: string): string | undefined {
  const d = sha256Of(cid, sha256)
  return d === undefined ? undefined : `sha-256=:${d}:`
}

function sha256B64OfCid(cid: string): string | undefined {
  let c: CID
  try {
    c = CID.parse(cid)
  } catch {
    return undefined
  }
  if (c.code !== RAW || c.multihash.code !== SHA2_256) return undefined
  return Buffer.from(c.multihash.digest).toString('base64')
}

/** The hex SHA-256 of the file where known (as reprDigestOf), for Metalink's `<hash type="sha-256">`. */
export function sha256HexOf(cid: string, sha256?: string): string | undefined {
  const d = sha256Of(cid, sha256)
  return d === undefined ? undefined : Buffer.from(d, 'base64').toString('hex')
}

/** nginx's ETag for bytes the index does not describe: `"<mtime s hex>-<size hex>"` from the stat. */
export function statEtag(mtimeMs: number, size: number): string {
  return `"${Math.floor(mtimeMs / 1000).toString(16)}-${size.toString(16)}"`
}
