/**
 * Multibase base32 (RFC 4648 lower case, no padding, prefix `b`): the text form of CIDv1, without
 * building CID objects. The hash workers encode file CIDs with it; the index parses stored CIDs back to
 * bytes when it re-encodes a directory.
 */

const ALPHABET = 'abcdefghijklmnopqrstuvwxyz234567'
const DECODE = new Int8Array(128).fill(-1)
for (let i = 0; i < ALPHABET.length; i++) DECODE[ALPHABET.charCodeAt(i)] = i

/** `b` + base32 of `bytes`. */
export function toBase32(bytes: Uint8Array, start = 0, end = bytes.length): string {
  let out = 'b'
  let bits = 0
  let value = 0
  for (let i = start; i < end; i++) {
    value = ((value << 8) | bytes[i]!) & 0xffff
    bits += 8
    while (bits >= 5) {
      bits -= 5
      out += ALPHABET[(value >>> bits) & 31]
    }
  }
  if (bits > 0) out += ALPHABET[(value << (5 - bits)) & 31]
  return out
}

/** The bytes of a `b`-prefixed base32 string (a CIDv1 in text); throws on anything else. */
export function fromBase32(text: string): Uint8Array {
  if (text.charCodeAt(0) !== 98) throw new Error(`not a base32 CID: ${text}`)
  const out = new Uint8Array(((text.length - 1) * 5) >> 3)
  let bits = 0
  let value = 0
  let pos = 0
  for (let i = 1; i < text.length; i++) {
    const c = text.charCodeAt(i)
    const v = c < 128 ? DECODE[c]! : -1
    if (v < 0) throw new Error(`not a base32 CID: ${text}`)
    value = ((value << 5) | v) & 0xffff
    bits += 5
    if (bits >= 8) {
      bits -= 8
      out[pos++] = (value >>> bits) & 0xff
    }
  }
  return out
}
