/**
 * Packs a mirror's files into CAR pieces for Filecoin Onchain Cloud, from the index's own blocks (the
 * same CIDs as Kubo, read from the mirror tree through the index's block map, verified):
 *
 * - files below `smallFile` bytes go together, up to `pieceTarget` bytes a piece;
 * - larger files go alone;
 * - a file whose CAR would pass the service's upload limit (1,065,353,216 bytes) is split across
 *   several pieces (its DAG's blocks, depth first, cut into parts), all of one data set per provider;
 * - a CAR below the service's minimum (127 bytes) gets a padding block.
 *
 * Each file's blocks lie together in the CAR, so a file's byte range in the piece (`carOffset`,
 * `carLength`) can be read back alone with a Range request on the provider's `/piece/{pieceCid}`.
 * A piece streams with one block in memory at a time.
 */
import * as dagPb from '@ipld/dag-pb'
import { varint } from 'multiformats'
import { CID } from 'multiformats/cid'
import * as Digest from 'multiformats/hashes/digest'
import { profile, sha256 } from '../../cid/index.ts'
import { FilecoinBlockUnavailableError } from '../errors.ts'
import { type FileBytes, FileLeaves } from './file-leaves.ts'
import type { PiecePart, PieceRecord, PlannedFile } from './records.ts'

const RAW = 0x55
const DAG_PB = 0x70
/** CID bytes of a CIDv1 sha2-256 block, and a section's length prefix at most. */
const CID_BYTES = 36
const SECTION_OVERHEAD = CID_BYTES + 4
/** CAR header of one root, with room to spare. */
const HEADER_ONE = 64

export interface PackOptions {
  /** Files at least this big go alone in their piece. */
  smallFile: number
  /** Bytes of small files packed into one piece at most. */
  pieceTarget: number
  /** Largest CAR a piece may be (the service's upload limit, lower in tests). */
  maxPieceBytes: number
}

/** Blocks of a file's DAG under the profile: raw leaves of 1 MiB and balanced nodes of 1024 links. */
export function blocksOfFile(size: number): { leaves: number; nodes: number } {
  const leaves = Math.max(1, Math.ceil(size / profile.CHUNK_SIZE))
  let nodes = 0
  let count = leaves
  while (count > 1) {
    count = Math.ceil(count / profile.FILE_MAX_LINKS)
    nodes += count
  }
  return { leaves, nodes }
}

/** A bound on a file's blocks in a CAR (its data, each block's CID and length, its dag-pb nodes). */
export function carBytesOfFile(size: number): number {
  const { leaves, nodes } = blocksOfFile(size)
  return size + (leaves + nodes) * SECTION_OVERHEAD + nodes * profile.FILE_MAX_LINKS * 48
}

/**
 * Plans pieces for `files` (none planned before): small ones together in the order given, large ones
 * alone, the largest split. Keys are stable: `p:<first file cid>` or `p:<cid>:<part>`.
 */
export function planPieces(files: PlannedFile[], o: PackOptions): PieceRecord[] {
  const out: PieceRecord[] = []
  let open: PlannedFile[] = []
  let openBytes = HEADER_ONE
  const flush = (): void => {
    if (open.length === 0) return
    out.push({ key: `p:${open[0]!.cid}`, files: open, copies: [] })
    open = []
    openBytes = HEADER_ONE
  }
  const seen = new Set<string>()
  for (const f of files) {
    if (seen.has(f.cid)) continue
    seen.add(f.cid)
    const bytes = carBytesOfFile(f.size)
    if (f.size >= o.smallFile || HEADER_ONE + bytes > o.maxPieceBytes) {
      if (HEADER_ONE + bytes <= o.maxPieceBytes) {
        out.push({ key: `p:${f.cid}`, files: [f], copies: [] })
        continue
      }
      const { leaves, nodes } = blocksOfFile(f.size)
      const total = leaves + nodes
      const perPart = Math.max(
        1,
        Math.floor((o.maxPieceBytes - HEADER_ONE) / (profile.CHUNK_SIZE + SECTION_OVERHEAD)),
      )
      const of = Math.ceil(total / perPart)
      for (let i = 0; i < of; i++) {
        const part: PiecePart = { index: i, of, from: i * perPart, to: Math.min(total, (i + 1) * perPart) }
        out.push({ key: `p:${f.cid}:${i}`, files: [f], part, copies: [] })
      }
      continue
    }
    // A root more in the header is one more CID.
    const add = bytes + CID_BYTES + 4
    if (open.length > 0 && (openBytes + add > o.pieceTarget || openBytes + add > o.maxPieceBytes)) flush()
    open.push(f)
    openBytes += add
  }
  flush()
  return out
}

/** Reads one block of the mirror (the index's block map), undefined when no file holds it any more. */
export type GetBlock = (cid: CID) => Promise<Uint8Array | undefined>

/** Where a piece's blocks come from: the mirror, and for leaves no longer on disk, a file's bytes read elsewhere. */
export interface BlockSource {
  get: GetBlock
  elsewhere?: { bytes: FileBytes; signal: AbortSignal }
}

export interface PieceLayout {
  /** CAR bytes written. */
  size: number
  ranges: Record<string, [number, number]>
}

function cborHeader(roots: CID[]): Uint8Array {
  const parts: number[] = [0xa2, 0x65, ...Buffer.from('roots')]
  const n = roots.length
  if (n < 24) parts.push(0x80 + n)
  else if (n < 256) parts.push(0x98, n)
  else if (n < 65536) parts.push(0x99, n >> 8, n & 0xff)
  else parts.push(0x9a, (n >>> 24) & 0xff, (n >> 16) & 0xff, (n >> 8) & 0xff, n & 0xff)
  for (const r of roots) {
    const len = r.bytes.length + 1
    parts.push(0xd8, 0x2a)
    if (len < 24) parts.push(0x40 + len)
    else parts.push(0x58, len)
    parts.push(0x00, ...r.bytes)
  }
  parts.push(0x67, ...Buffer.from('version'), 0x01)
  const body = Uint8Array.from(parts)
  return concat(varint.encodeTo(body.length, new Uint8Array(varint.encodingLength(body.length))), body)
}

function concat(...a: Uint8Array[]): Uint8Array {
  return Buffer.concat(a)
}

function section(cid: CID, bytes: Uint8Array): Uint8Array {
  const len = cid.bytes.length + bytes.length
  return concat(varint.encodeTo(len, new Uint8Array(varint.encodingLength(len))), cid.bytes, bytes)
}

/**
 * The CAR of a planned piece, as chunks: the header, then each file's blocks (depth first, each block
 * once per file), then padding up to `minBytes`. `layout` is filled as it goes: complete when the
 * generator is done. A leaf the mirror no longer has is cut from the file's bytes read elsewhere
 * (`source.elsewhere`, in file order: one forward stream per file), hashed against its CID.
 */
export async function* pieceChunks(
  piece: PieceRecord,
  source: BlockSource,
  layout: PieceLayout,
  minBytes: number,
): AsyncGenerator<Uint8Array> {
  const roots = piece.files.map((f) => CID.parse(f.cid))
  const header = cborHeader(roots)
  layout.size = header.length
  layout.ranges = {}
  yield header
  for (const file of piece.files) {
    const start = layout.size
    const seen = new Set<string>()
    let index = 0
    /** File offset of the next leaf in the walk. */
    let pos = 0
    const from = piece.part?.from ?? 0
    const to = piece.part?.to ?? Number.POSITIVE_INFINITY
    const name = `${file.mirror}/${file.path}`
    const elsewhere = source.elsewhere
    const leaves = elsewhere && new FileLeaves(file, elsewhere.bytes, elsewhere.signal)
    const read = async (cid: CID): Promise<Uint8Array> => {
      const bytes = await source.get(cid)
      if (!bytes)
        throw new FilecoinBlockUnavailableError(cid.toString(), name, 'not in the block map', file.cid)
      return bytes
    }
    const readLeaf = async (cid: CID, offset: number, length: number): Promise<Uint8Array> => {
      const bytes = (await source.get(cid)) ?? (length === 0 ? emptyBlock(cid) : undefined)
      if (bytes) return bytes
      if (!leaves)
        throw new FilecoinBlockUnavailableError(cid.toString(), name, 'no fetch-back runs', file.cid)
      let got: Uint8Array | undefined
      try {
        got = await leaves.leaf(cid, offset, length)
      } catch (err) {
        throw new FilecoinBlockUnavailableError(
          cid.toString(),
          name,
          `the fetch-back could not get them: ${(err as Error).message}`,
          file.cid,
        )
      }
      if (!got)
        throw new FilecoinBlockUnavailableError(
          cid.toString(),
          name,
          'the bytes fetched back ended early or did not hash to it',
          file.cid,
        )
      return got
    }
    async function* walk(cid: CID, tsize: number | undefined): AsyncGenerator<Uint8Array> {
      const i = index++
      if (i >= to) return
      const inRange = i >= from
      if (cid.code === RAW) {
        // A raw leaf's Tsize is its length; a one-chunk file's root is the whole file.
        const offset = pos
        const length = tsize ?? file.size
        pos += length
        if (!inRange) return
        const key = cid.toString()
        if (seen.has(key)) return
        seen.add(key)
        yield section(cid, await readLeaf(cid, offset, length))
        return
      }
      const bytes = await read(cid)
      if (inRange && !seen.has(cid.toString())) {
        seen.add(cid.toString())
        yield section(cid, bytes)
      }
      if (cid.code !== DAG_PB) return
      for (const link of dagPb.decode(bytes).Links) {
        if (index >= to) return
        yield* walk(link.Hash, link.Tsize)
      }
    }
    try {
      for await (const chunk of walk(CID.parse(file.cid), undefined)) {
        layout.size += chunk.length
        yield chunk
      }
    } finally {
      await leaves?.close()
    }
    layout.ranges[file.cid] = [start, layout.size - start]
  }
  if (layout.size < minBytes) {
    const pad = new Uint8Array(Math.max(1, minBytes - layout.size))
    const cid = CID.createV1(RAW, Digest.create(0x12, sha256(pad)))
    const chunk = section(cid, pad)
    layout.size += chunk.length
    yield chunk
  }
}

/** An empty file's one block: known without a source, when `cid` is its hash. */
function emptyBlock(cid: CID): Uint8Array | undefined {
  const empty = new Uint8Array(0)
  return cid.multihash.code === 0x12 && Buffer.compare(sha256(empty), cid.multihash.digest) === 0
    ? empty
    : undefined
}

/** `pieceChunks` as a web ReadableStream (what the SDK's streaming upload takes), pulled on demand. */
export function pieceStream(
  piece: PieceRecord,
  source: BlockSource,
  layout: PieceLayout,
  minBytes: number,
  /** Told the error the stream ends with (the SDK's own error around it keeps only its text). */
  onError?: (err: unknown) => void,
): ReadableStream<Uint8Array> {
  const it = pieceChunks(piece, source, layout, minBytes)
  return new ReadableStream<Uint8Array>(
    {
      async pull(controller) {
        try {
          const r = await it.next()
          if (r.done) controller.close()
          else controller.enqueue(r.value)
        } catch (err) {
          onError?.(err)
          controller.error(err)
        }
      },
      async cancel() {
        await it.return(undefined)
      },
    },
    { highWaterMark: 1 },
  )
}
