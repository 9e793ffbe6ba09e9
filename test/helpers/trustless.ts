/**
 * A trustless client's checks, done by the test and not by the gateway: CAR parsing with `@ipld/car`,
 * every block hashed against its CID with `multiformats`, UnixFS files reassembled and paths (HAMT
 * shards included) resolved from the CAR's blocks alone.
 */
import { CarBufferReader } from '@ipld/car'
import * as dagPb from '@ipld/dag-pb'
import { murmur364 } from '@multiformats/murmur3'
import { UnixFS } from 'ipfs-unixfs'
import type { CID } from 'multiformats/cid'
import { sha256 } from 'multiformats/hashes/sha2'
import { request } from 'undici'

export interface Got {
  status: number
  headers: Record<string, string>
  body: Buffer
}

export async function get(
  base: string,
  path: string,
  headers: Record<string, string> = {},
  method = 'GET',
): Promise<Got> {
  const r = await request(`${base}${path}`, { method: method as 'GET', headers })
  const body = Buffer.from(await r.body.arrayBuffer())
  const h: Record<string, string> = {}
  for (const [k, v] of Object.entries(r.headers)) h[k] = Array.isArray(v) ? v.join(', ') : String(v)
  return { status: r.statusCode, headers: h, body }
}

/** Reads a streamed body to its end: what came, and the error that cut it (undefined for a clean end). */
export async function readToEnd(body: AsyncIterable<unknown>): Promise<{ got: Buffer; err: unknown }> {
  const chunks: Buffer[] = []
  try {
    for await (const c of body) chunks.push(c as Buffer)
    return { got: Buffer.concat(chunks), err: undefined }
  } catch (err) {
    return { got: Buffer.concat(chunks), err }
  }
}

export async function hashesTo(cid: CID, bytes: Uint8Array): Promise<boolean> {
  if (cid.multihash.code === 0) return Buffer.from(cid.multihash.digest).equals(Buffer.from(bytes))
  const mh = await sha256.digest(bytes)
  return Buffer.from(mh.digest).equals(Buffer.from(cid.multihash.digest))
}

export interface ParsedCar {
  roots: string[]
  /** In stream order, each verified against its CID. */
  blocks: { cid: CID; bytes: Uint8Array }[]
  cids: string[]
  byCid: Map<string, Uint8Array>
}

/** Parses a CAR and throws unless every block hashes to its CID. */
export async function readCar(body: Uint8Array): Promise<ParsedCar> {
  const reader = CarBufferReader.fromBytes(body)
  const blocks = reader.blocks().map((b) => ({ cid: b.cid, bytes: b.bytes }))
  for (const b of blocks)
    if (!(await hashesTo(b.cid, b.bytes))) throw new Error(`block ${b.cid} does not hash to its CID`)
  return {
    roots: reader.getRoots().map((r) => r.toString()),
    blocks,
    cids: blocks.map((b) => b.cid.toV1().toString()),
    byCid: new Map(blocks.map((b) => [b.cid.toV1().toString(), b.bytes])),
  }
}

/** A UnixFS file's bytes from the CAR's blocks only (throws when one is missing). */
export function fileFromCar(car: ParsedCar, cid: CID): Buffer {
  const bytes = car.byCid.get(cid.toV1().toString())
  if (!bytes) throw new Error(`CAR lacks ${cid}`)
  if (cid.code === 0x55) return Buffer.from(bytes)
  const pb = dagPb.decode(bytes)
  const fs = UnixFS.unmarshal(pb.Data!)
  return Buffer.concat([Buffer.from(fs.data ?? []), ...pb.Links.map((l) => fileFromCar(car, l.Hash))])
}

function murmur(name: string): Uint8Array {
  const d = murmur364.digest(new TextEncoder().encode(name))
  if (d instanceof Promise) throw new Error('async murmur3')
  return d.digest
}

/** Resolves `segments` from `root` through basic and HAMT directories using the CAR's blocks only. */
export function resolveInCar(car: ParsedCar, root: CID, segments: string[]): CID {
  let cur = root
  for (const seg of segments) {
    let bytes = car.byCid.get(cur.toV1().toString())
    if (!bytes) throw new Error(`CAR lacks ${cur}`)
    let pb = dagPb.decode(bytes)
    let fs = UnixFS.unmarshal(pb.Data!)
    let next: CID | undefined
    if (fs.type === 'directory') next = pb.Links.find((l) => l.Name === seg)?.Hash
    else if (fs.type === 'hamt-sharded-directory') {
      const hash = murmur(seg)
      for (let depth = 0; !next; depth++) {
        const slot = hash[depth]!.toString(16).toUpperCase().padStart(2, '0')
        const link = pb.Links.find((l) => l.Name?.startsWith(slot))
        if (!link) break
        if (link.Name === slot) {
          bytes = car.byCid.get(link.Hash.toV1().toString())
          if (!bytes) throw new Error(`CAR lacks shard ${link.Hash}`)
          pb = dagPb.decode(bytes)
          fs = UnixFS.unmarshal(pb.Data!)
        } else if (link.Name === slot + seg) next = link.Hash
        else break
      }
    }
    if (!next) throw new Error(`no ${seg} under ${cur}`)
    cur = next
  }
  return cur
}
