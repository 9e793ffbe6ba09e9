import { CID } from 'multiformats/cid'
import { MalformedCidError } from './errors.ts'

/** Longest CID text accepted (a CIDv1 of a sha2-512 digest in base32 is about 120 characters). */
const MAX_CID_TEXT = 200

/**
 * The text form the index stores for a CID given in any form `multiformats` parses (CIDv1 in base32,
 * CIDv0 `Qm...`, base58btc `z...`): CIDv1 in base32. Throws MalformedCidError for anything else.
 */
export function canonicalCid(text: string): string {
  if (text.length === 0 || text.length > MAX_CID_TEXT) throw new MalformedCidError(text)
  try {
    return CID.parse(text).toV1().toString()
  } catch (err) {
    throw new MalformedCidError(text, { cause: err })
  }
}
