/**
 * A source's plain file bytes checked leaf by leaf against the leaves known beforehand (leaf-plan.ts):
 * the stream is cut at the leaves' boundaries, each leaf's bytes copied into one buffer of its own and
 * hashed in the worker (sha256-pool.ts) while the next leaves arrive, and yielded only once its SHA-256
 * is its CID's (DESIGN promise 2). A wrong leaf throws BlockMismatchError after the leaves before it;
 * a stream that ends early or runs past what was asked throws SourceAnswerError.
 */
import { BlockMismatchError } from '../../ipfs/index.ts'
import { SourceAnswerError } from './errors.ts'
import type { Leaf } from './leaf-plan.ts'
import { sha256Off } from './sha256-pool.ts'

/** Leaves hashed ahead of the consumer (their bytes held meanwhile: about 4 MiB). */
const AHEAD = 4

interface Hashing {
  leaf: Leaf
  done: Promise<{ bytes: Uint8Array; digest: Uint8Array }>
  /** Set once `done` settled: the leaf can go out without waiting. */
  settled: boolean
  /** `done` as a step of the loop below (made once per leaf, raced against each network chunk). */
  ready: Promise<Step>
}

const HASHED: Step = { hashed: true }

type Step = { chunk: IteratorResult<Uint8Array> } | { hashed: true }

/**
 * The file bytes `start..end` (inclusive) from `body`, which holds the file's bytes from the first
 * byte of `leaves[0]` through the last of the final leaf (after `skip` bytes to drop: a server that
 * answered a Range with the whole file). `leaves` are consecutive. A leaf goes out as soon as its hash
 * is checked, even while the source is slow to send the next bytes (time to first byte, a stall).
 */
export async function* leafBytes(
  body: AsyncIterable<Uint8Array>,
  leaves: Leaf[],
  range: { start: number; end: number; skip?: number },
  where: string,
): AsyncGenerator<Uint8Array> {
  let skip = range.skip ?? 0
  let i = 0
  // Each leaf in a buffer of its own (transferred to the worker and back), not zero-filled first.
  let buf: Uint8Array = Buffer.allocUnsafeSlow(leaves[0]!.length)
  let fill = 0
  const queue: Hashing[] = []
  const it = body[Symbol.asyncIterator]()
  let next: Promise<Step> | undefined

  async function* verified(h: Hashing): AsyncGenerator<Uint8Array> {
    const r = await h.done
    if (!Buffer.from(r.digest).equals(h.leaf.cid.multihash.digest))
      throw new BlockMismatchError(h.leaf.cid.toString(), where)
    const from = Math.max(range.start - h.leaf.offset, 0)
    const to = Math.min(range.end + 1 - h.leaf.offset, h.leaf.length)
    if (to > from) yield from === 0 && to === h.leaf.length ? r.bytes : r.bytes.subarray(from, to)
  }

  /** Takes a network chunk into the leaf buffers, queueing each full leaf for hashing. */
  function take(got: Uint8Array): void {
    let chunk = got
    if (skip > 0) {
      const n = Math.min(skip, chunk.length)
      skip -= n
      chunk = chunk.subarray(n)
    }
    while (chunk.length > 0) {
      if (i >= leaves.length)
        throw new SourceAnswerError(
          where,
          `sent more than the ${range.end - range.start + 1} bytes asked for`,
        )
      const n = Math.min(chunk.length, buf.length - fill)
      buf.set(n === chunk.length ? chunk : chunk.subarray(0, n), fill)
      fill += n
      chunk = chunk.subarray(n)
      if (fill < buf.length) continue
      const done = sha256Off(buf)
      const h: Hashing = { leaf: leaves[i]!, done, settled: false, ready: undefined! }
      const settle = (): Step => {
        h.settled = true
        return HASHED
      }
      // A rejection is thrown when its turn comes (verified), not as an unhandled one.
      h.ready = done.then(settle, settle)
      queue.push(h)
      i++
      if (i < leaves.length) {
        buf = Buffer.allocUnsafeSlow(leaves[i]!.length)
        fill = 0
      }
    }
  }

  try {
    for (;;) {
      // Leaves already checked go out first; with AHEAD of them hashing, wait for the oldest.
      while (queue.length > 0 && (queue[0]!.settled || queue.length >= AHEAD)) yield* verified(queue.shift()!)
      next ??= it.next().then((chunk) => ({ chunk }))
      const step: Step = queue.length > 0 ? await Promise.race([next, queue[0]!.ready]) : await next
      if (!('chunk' in step)) continue
      next = undefined
      if (step.chunk.done) break
      take(step.chunk.value)
    }
    while (queue.length > 0) yield* verified(queue.shift()!)
    if (i < leaves.length) {
      const sent = leaves[i]!.offset + fill - leaves[0]!.offset
      const asked = leaves[leaves.length - 1]!.offset + leaves[leaves.length - 1]!.length - leaves[0]!.offset
      throw new SourceAnswerError(where, `the answer ends after ${sent} of ${asked} bytes (truncated)`)
    }
  } finally {
    // Hashes still under way settle in the worker; their results are dropped.
    queue.length = 0
    next?.catch(() => {})
    await it.return?.()
  }
}
