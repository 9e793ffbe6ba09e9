/**
 * CARv1 framing, as a stream pulled by the HTTP response: nothing is read from disk before the socket
 * wants it (Readable.from pulls one block at a time), so memory is one block whatever the DAG's size.
 */
import { Readable } from 'node:stream'
import * as dagCbor from '@ipld/dag-cbor'
import { varint } from 'multiformats'
import type { CID } from 'multiformats/cid'
import type { Block } from './walk.ts'

function withLength(parts: Uint8Array[]): Buffer {
  const len = parts.reduce((n, p) => n + p.length, 0)
  const prefix = new Uint8Array(varint.encodingLength(len))
  varint.encodeTo(len, prefix)
  return Buffer.concat([prefix, ...parts])
}

export function carHeader(roots: CID[]): Buffer {
  return withLength([dagCbor.encode({ roots, version: 1 })])
}

export function carFrame(block: Block): Buffer {
  return withLength([block.cid.bytes, block.bytes])
}

/** A CARv1 byte stream of `blocks` under `roots`. */
export function carStream(roots: CID[], blocks: AsyncIterable<Block>): Readable {
  return Readable.from(
    (async function* () {
      yield carHeader(roots)
      for await (const b of blocks) yield carFrame(b)
    })(),
    { objectMode: false, highWaterMark: 1 },
  )
}
