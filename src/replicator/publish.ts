/**
 * The local node follows the index: after a scan commits, the files it added or changed are referenced
 * in place (promise 5: no second copy), the directory nodes it rebuilt (from the index's records,
 * evicted files included, so the root is the upstream tree's) are put as blocks, and the block map is
 * brought up to date. Then the mirror's root is everything a remote `pin add ROOT` needs from us.
 */
import { join } from 'node:path'
import { CarWriter } from '@ipld/car/writer'
import type { Logger } from 'pino'
import type { CID } from '../cid/index.ts'
import { FileChangedError } from '../cid/index.ts'
import type { Database } from '../db.ts'
import { type MirrorIndex, mapBlocks } from '../index/index.ts'
import { type IpfsNode, ReferenceMismatchError } from '../ipfs/index.ts'

export interface PublishSummary {
  mirror: string
  scan: number
  rootCid: string
  filesReferenced: number
  bytesReferenced: number
  nodes: number
  /** Files whose bytes changed since the scan (referenced again after the next scan). */
  stale: string[]
  ms: number
}

export interface PublishProgress {
  files: number
  bytes: number
}

/**
 * Brings `node` and the block map up to date with `index` for records written by scan `since` or
 * later (0: all). Idempotent: referencing what is referenced changes nothing.
 */
export async function publishMirror(
  db: Database,
  index: MirrorIndex,
  node: IpfsNode | undefined,
  opts: {
    since?: number
    signal?: AbortSignal
    log?: Logger
    onProgress?: (p: PublishProgress) => void
  } = {},
): Promise<PublishSummary> {
  const started = Date.now()
  const since = opts.since ?? 0
  const last = await index.lastScan()
  const out: PublishSummary = {
    mirror: index.mirror,
    scan: last?.id ?? 0,
    rootCid: last?.rootCid ?? '',
    filesReferenced: 0,
    bytesReferenced: 0,
    nodes: 0,
    stale: [],
    ms: 0,
  }
  const nodes: { cid: CID; bytes: Uint8Array }[] = []
  const map = await mapBlocks(db, index.mirror, index.root, {
    since,
    signal: opts.signal,
    onNode: node ? (cid, bytes) => nodes.push({ cid, bytes }) : undefined,
  })
  out.stale.push(...map.stale)
  out.nodes = nodes.length
  if (node) {
    const sizes = new Map<string, number>()
    const rel = new Map<string, string>()
    const records = index.records()
    async function* files(): AsyncGenerator<{ path: string; expect: string }> {
      for await (const r of records) {
        opts.signal?.throwIfAborted()
        if (r.kind !== 'file' || r.state !== 'present' || r.scan < since) continue
        const abs = join(index.root, r.path)
        sizes.set(abs, r.size)
        rel.set(abs, r.path)
        yield { path: abs, expect: r.cid }
      }
    }
    // referenceFiles takes a plain iterable; the list is the scan's new and changed files only.
    const list: { path: string; expect: string }[] = []
    for await (const f of files()) list.push(f)
    for await (const res of node.referenceFiles(list, { signal: opts.signal })) {
      if ('cid' in res) {
        out.filesReferenced++
        out.bytesReferenced += sizes.get(res.path) ?? 0
        opts.onProgress?.({ files: out.filesReferenced, bytes: out.bytesReferenced })
      } else if (res.error instanceof ReferenceMismatchError || res.error instanceof FileChangedError)
        out.stale.push(rel.get(res.path) ?? res.path)
      else throw res.error
    }
    if (nodes.length > 0) await node.putBlocks(carOf(nodes), { signal: opts.signal })
    // Keeps the tree's blocks from the node's GC without a pin (a pin would fetch evicted files).
    if (out.rootCid) await node.retain(index.mirror, out.rootCid, { signal: opts.signal })
  }
  out.ms = Date.now() - started
  opts.log?.info({ publish: out }, 'mirror published to the local node')
  return out
}

async function* carOf(blocks: { cid: CID; bytes: Uint8Array }[]): AsyncGenerator<Uint8Array> {
  const { writer, out } = CarWriter.create([blocks[blocks.length - 1]!.cid])
  const feed = (async () => {
    for (const b of blocks) await writer.put(b)
    await writer.close()
  })()
  yield* out
  await feed
}
