/**
 * Integrity headers from what the index already knows, with no hashing per request: the CID as the
 * ETag, `X-Ipfs-Roots` (the CIDs along the path, as Kubo's gateway sends them), and RFC 9530's
 * `Repr-Digest` where the CID is the file's SHA-256: a file of one chunk has a raw-leaf CID whose
 * multihash is sha2-256 of its bytes.
 */
import { CID } from 'multiformats/cid'

const RAW = 0x55
const SHA2_256 = 0x12

/** `sha-256=:<base64>:` when `cid` is a raw block hashed with sha2-256 (the whole file's SHA-256). */
export function reprDigestOf(cid: string): string | undefined {
  let c: CID
  try {
    c = CID.parse(cid)
  } catch {
    return undefined
  }
  if (c.code !== RAW || c.multihash.code !== SHA2_256) return undefined
  return `sha-256=:${Buffer.from(c.multihash.digest).toString('base64')}:`
}

/** The hex SHA-256 of a single-chunk file, for Metalink's `<hash type="sha-256">`. */
export function sha256HexOf(cid: string): string | undefined {
  try {
    const c = CID.parse(cid)
    if (c.code !== RAW || c.multihash.code !== SHA2_256) return undefined
    return Buffer.from(c.multihash.digest).toString('hex')
  } catch {
    return undefined
  }
}

/** nginx's ETag for bytes the index does not describe: `"<mtime s hex>-<size hex>"` from the stat. */
export function statEtag(mtimeMs: number, size: number): string {
  return `"${Math.floor(mtimeMs / 1000).toString(16)}-${size.toString(16)}"`
}
