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

/**
 * The Tsize of each link of an encoded dag-pb node, read back from its bytes (a link without one
 * reads as -1). Kept apart from the encoder on purpose: a node's cumulative size is derived from what
 * its bytes say, never from the numbers its builder added up alongside (see `dagPbBlock`).
 */
export function linkTsizes(bytes: Uint8Array): number[] {
  const out: number[] = []
  let pos = 0
  while (pos < bytes.length) {
    const tag = bytes[pos++]!
    let len = 0
    let mul = 1
    let b: number
    do {
      b = bytes[pos++]!
      len += (b & 0x7f) * mul
      mul *= 128
    } while (b & 0x80)
    if (tag !== 0x12) {
      pos += len // Data (0x0a): the only other field of a PBNode.
      continue
    }
    const end = pos + len
    let tsize = -1
    while (pos < end) {
      const field = bytes[pos++]!
      let v = 0
      mul = 1
      do {
        b = bytes[pos++]!
        v += (b & 0x7f) * mul
        mul *= 128
      } while (b & 0x80)
      if (field === 0x18) tsize = v
      else if ((field & 7) === 2) pos += v // Hash, Name: length-delimited
    }
    out.push(tsize)
  }
  if (pos !== bytes.length) throw new RangeError('dag-pb block ends inside a field')
  return out
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
