import { randomBytes } from 'node:crypto'
import { base32 } from 'multiformats/bases/base32'
import { describe, expect, it } from 'vitest'
import { fromBase32, toBase32 } from '../src/cid/index.ts'

describe('base32 CID text without CID objects', () => {
  it('agrees with multiformats both ways, at every length', () => {
    for (let n = 0; n <= 80; n++) {
      const bytes = new Uint8Array(randomBytes(n))
      const text = toBase32(bytes)
      expect(text).toBe(base32.encode(bytes))
      expect(fromBase32(text)).toEqual(bytes)
    }
  })

  it('encodes a slice in place', () => {
    const bytes = new Uint8Array(randomBytes(100))
    expect(toBase32(bytes, 10, 46)).toBe(base32.encode(bytes.subarray(10, 46)))
  })

  it('refuses text that is not base32', () => {
    expect(() => fromBase32('zQmfoo')).toThrow(/not a base32 CID/)
    expect(() => fromBase32('bafy!')).toThrow(/not a base32 CID/)
  })
})
