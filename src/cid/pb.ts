/**
 * A lean dag-pb encoder for the hot paths (directories with many links, File nodes): the same bytes as
 * `@ipld/dag-pb`'s `encode` (Links, each Hash/Name/Tsize, then Data), without its per-link validation
 * and re-encoding of names. Links must already be in canonical (byte) order; tests compare the output
 * with `@ipld/dag-pb` and with Kubo.
 */

export interface RawLink {
  /** CID bytes. */
  hash: Uint8Array
  /** UTF-8 name bytes. */
  name: Uint8Array
  tsize: number
}

export function varintLen(n: number): number {
  let len = 1
  while (n >= 0x80) {
    n = Math.floor(n / 128)
    len++
  }
  return len
}

function putVarint(buf: Uint8Array, pos: number, n: number): number {
  while (n >= 0x80) {
    buf[pos++] = (n % 128) | 0x80
    n = Math.floor(n / 128)
  }
  buf[pos++] = n
  return pos
}

function linkBodyLen(l: RawLink): number {
  return (
    1 +
    varintLen(l.hash.length) +
    l.hash.length +
    1 +
    varintLen(l.name.length) +
    l.name.length +
    1 +
    varintLen(l.tsize)
  )
}

/** Encode a dag-pb node: links (in the order given) then Data. */
export function encodePB(links: readonly RawLink[], data: Uint8Array): Uint8Array {
  let size = 1 + varintLen(data.length) + data.length
  const bodies = new Array<number>(links.length)
  for (let i = 0; i < links.length; i++) {
    const body = linkBodyLen(links[i]!)
    bodies[i] = body
    size += 1 + varintLen(body) + body
  }
  const buf = new Uint8Array(size)
  let pos = 0
  for (let i = 0; i < links.length; i++) {
    const l = links[i]!
    buf[pos++] = 0x12
    pos = putVarint(buf, pos, bodies[i]!)
    buf[pos++] = 0x0a
    pos = putVarint(buf, pos, l.hash.length)
    buf.set(l.hash, pos)
    pos += l.hash.length
    buf[pos++] = 0x12
    pos = putVarint(buf, pos, l.name.length)
    buf.set(l.name, pos)
    pos += l.name.length
    buf[pos++] = 0x18
    pos = putVarint(buf, pos, l.tsize)
  }
  buf[pos++] = 0x0a
  pos = putVarint(buf, pos, data.length)
  buf.set(data, pos)
  return buf
}
