/**
 * CARv1 framing, as a stream pulled by the HTTP response: nothing is read from disk before the socket
 * wants it (Readable.from pulls one block at a time), so memory is one block whatever the DAG's size.
 */
import { Readable } from 'node:stream'
import * as dagCbor from '@ipld/dag-cbor'
import { varint } from 'multiformats'
import type { CID } from 'multiformats/cid'
import type { Block } from './walk.ts'

function carHeader(roots: CID[]): Buffer {
  const header = dagCbor.encode({ roots, version: 1 })
  const prefix = new Uint8Array(varint.encodingLength(header.length))
  varint.encodeTo(header.length, prefix)
  return Buffer.concat([prefix, header])
}

/** A block's frame: its length prefix and CID, then its bytes as they are (no copy of a 1 MiB leaf). */
function carFrame(block: Block): [Buffer, Uint8Array] {
  const len = block.cid.bytes.length + block.bytes.length
  const prefix = Buffer.alloc(varint.encodingLength(len) + block.cid.bytes.length)
  varint.encodeTo(len, prefix)
  prefix.set(block.cid.bytes, prefix.length - block.cid.bytes.length)
  return [prefix, block.bytes]
}

/** A CARv1 byte stream of `blocks` under `roots`. */
export function carStream(roots: CID[], blocks: AsyncIterable<Block>): Readable {
  return Readable.from(
    (async function* () {
      yield carHeader(roots)
      for await (const b of blocks) yield* carFrame(b)
    })(),
    { objectMode: false, highWaterMark: 1 },
  )
}
