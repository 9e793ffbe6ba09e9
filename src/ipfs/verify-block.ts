import { createHash } from 'node:crypto'
import { CID } from 'multiformats/cid'
import { BlockMismatchError, InvalidCidError, UnsupportedHashError } from './errors.ts'

const SHA2_256 = 0x12
const IDENTITY = 0x00

/** Parse a CID string; InvalidCidError when it is not one. */
export function parseCid(cid: string): CID {
  try {
    return CID.parse(cid)
  } catch (err) {
    throw new InvalidCidError(cid, { cause: err })
  }
}

/**
 * Throw unless `bytes` hash to `cid` (promise 2: nothing unverified is passed on). sha2-256 is what
 * the `unixfs-v1-2025` profile makes; identity CIDs carry their bytes.
 */
export function verifyBlock(cid: CID, bytes: Uint8Array, where: string): void {
  const mh = cid.multihash
  let ok: boolean
  if (mh.code === SHA2_256) {
    ok = createHash('sha256').update(bytes).digest().equals(mh.digest)
  } else if (mh.code === IDENTITY) {
    ok = Buffer.from(bytes).equals(mh.digest)
  } else {
    throw new UnsupportedHashError(cid.toString(), mh.code)
  }
  if (!ok) throw new BlockMismatchError(cid.toString(), where)
}
