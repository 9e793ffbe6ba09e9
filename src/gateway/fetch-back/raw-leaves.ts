/**
 * A trustless-only gateway (one that serves no plain bytes) read leaf by leaf when the file's leaves
 * are known (leaf-plan.ts): `GET /ipfs/{leaf}?format=raw` for each leaf in the range, a few at once
 * (a gateway across a WAN answers each after a round trip), each block hashed in the worker against
 * its CID and yielded in file order (DESIGN promise 2). The gateway's first answer decides: anything
 * but a raw block (400, 406, another type) means it serves none, and nothing was yielded.
 */
import { type Dispatcher, request } from 'undici'
import { BlockMismatchError } from '../../ipfs/index.ts'
import { SourceAnswerError } from './errors.ts'
import type { Leaf } from './leaf-plan.ts'
import { sha256Off } from './sha256-pool.ts'

/** Leaf requests in flight at once (their bytes held meanwhile: about 4 MiB). */
const IN_FLIGHT = 4

const RAW_TYPE = 'application/vnd.ipld.raw'

type Answer =
  | { ok: true; bytes: Uint8Array; digest: Uint8Array }
  | { ok: false; status: number; type: string }

async function fetchLeaf(
  base: string,
  leaf: Leaf,
  signal: AbortSignal,
  dispatcher: Dispatcher | undefined,
): Promise<Answer> {
  const res = await request(`${base}/ipfs/${leaf.cid}?format=raw`, {
    headers: { accept: RAW_TYPE },
    signal,
    dispatcher,
  })
  const type = String(res.headers['content-type'] ?? '')
  if (res.statusCode !== 200 || !type.startsWith(RAW_TYPE)) {
    await res.body.dump({ limit: 64 * 1024 }).catch(() => {})
    return { ok: false, status: res.statusCode, type }
  }
  // An ArrayBuffer of its own: transferred to the hashing worker and back.
  const bytes = new Uint8Array(await res.body.arrayBuffer())
  if (bytes.length !== leaf.length) return { ok: true, bytes, digest: new Uint8Array(0) }
  return { ok: true, ...(await sha256Off(bytes)) }
}

/**
 * The file bytes `range.start..range.end` from the raw blocks of `leaves` (consecutive, covering the
 * range); returns false, having yielded nothing, when the gateway does not serve raw blocks.
 */
export async function* rawLeaves(
  base: string,
  where: string,
  leaves: Leaf[],
  range: { start: number; end: number },
  signal: AbortSignal,
  dispatcher?: Dispatcher,
): AsyncGenerator<Uint8Array, boolean> {
  const queue: Promise<Answer>[] = []
  let next = 0
  // One request until the gateway showed it serves raw blocks, then IN_FLIGHT.
  let window = 1
  const fill = () => {
    while (queue.length < window && next < leaves.length) {
      const p = fetchLeaf(base, leaves[next++]!, signal, dispatcher)
      // A rejection is thrown when its turn comes, not as an unhandled one.
      p.catch(() => {})
      queue.push(p)
    }
  }
  fill()
  for (let i = 0; i < leaves.length; i++) {
    const leaf = leaves[i]!
    const a = await queue.shift()!
    if (!a.ok) {
      if (i === 0) return false
      throw new SourceAnswerError(
        where,
        `answered HTTP ${a.status} (${a.type || 'no type'}) for leaf ${leaf.cid}`,
      )
    }
    if (a.bytes.length !== leaf.length)
      throw new SourceAnswerError(
        where,
        `block ${leaf.cid} holds ${a.bytes.length} bytes, its parent says ${leaf.length}`,
      )
    if (!Buffer.from(a.digest).equals(leaf.cid.multihash.digest))
      throw new BlockMismatchError(leaf.cid.toString(), where)
    window = IN_FLIGHT
    fill()
    const from = Math.max(range.start - leaf.offset, 0)
    const to = Math.min(range.end + 1 - leaf.offset, leaf.length)
    if (to > from) yield from === 0 && to === leaf.length ? a.bytes : a.bytes.subarray(from, to)
  }
  return true
}
