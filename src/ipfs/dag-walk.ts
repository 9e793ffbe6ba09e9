import { CarWriter } from '@ipld/car/writer'
import * as dagPb from '@ipld/dag-pb'
import { UnixFS } from 'ipfs-unixfs'
import type { CID } from 'multiformats/cid'

const RAW = 0x55
const DAG_PB = 0x70

/** Reads one block from the node's own store; undefined when the node does not hold it. */
export type LocalBlock = (cid: CID) => Promise<Uint8Array | undefined>

/**
 * The raw leaves under `root` that the node holds a parent for: the blocks an in-place reference
 * reads from a file (a raw root is its own leaf). Internal dag-pb nodes the node lacks are skipped,
 * with what lies below them: nothing of that part is referenced here.
 */
export async function* rawLeaves(root: CID, get: LocalBlock): AsyncGenerator<CID> {
  if (root.code === RAW) {
    yield root
    return
  }
  if (root.code !== DAG_PB) return
  const bytes = await get(root)
  if (!bytes) return
  for (const link of dagPb.decode(bytes).Links) yield* rawLeaves(link.Hash, get)
}

/**
 * The blocks of `root`'s UnixFS entity, depth first (the trustless gateway's `dag-scope=entity`): a
 * file's whole DAG; a directory's own node, and for a HAMT its shard nodes, not the entries' DAGs;
 * a symlink or raw block alone.
 */
export async function* entityBlocks(
  root: CID,
  get: (cid: CID) => Promise<Uint8Array>,
): AsyncGenerator<{ cid: CID; bytes: Uint8Array }> {
  const bytes = await get(root)
  yield { cid: root, bytes }
  if (root.code !== DAG_PB) return
  const node = dagPb.decode(bytes)
  const type = node.Data ? UnixFS.unmarshal(node.Data).type : 'raw'
  if (type === 'file' || type === 'raw') {
    for (const link of node.Links) yield* fileBlocks(link.Hash, get)
  } else if (type === 'hamt-sharded-directory') {
    // A HAMT link named by its bucket prefix alone (two hex digits) leads to a sub-shard; a longer
    // name is an entry of the directory, which the entity does not include.
    for (const link of node.Links) {
      if ((link.Name ?? '').length === 2) yield* entityBlocks(link.Hash, get)
    }
  }
}

async function* fileBlocks(
  cid: CID,
  get: (cid: CID) => Promise<Uint8Array>,
): AsyncGenerator<{ cid: CID; bytes: Uint8Array }> {
  const bytes = await get(cid)
  yield { cid, bytes }
  if (cid.code !== DAG_PB) return
  for (const link of dagPb.decode(bytes).Links) yield* fileBlocks(link.Hash, get)
}

/**
 * A CARv1 of `blocks` rooted at `root`, as its bytes are written. A failure of the feeding side
 * surfaces after the bytes written so far, so a reader sees a cut CAR and then the error.
 */
export async function* carOf(
  root: CID,
  blocks: AsyncIterable<{ cid: CID; bytes: Uint8Array }>,
): AsyncGenerator<Uint8Array> {
  const { writer, out } = CarWriter.create([root])
  const feed = (async () => {
    try {
      for await (const b of blocks) await writer.put(b)
    } finally {
      await writer.close()
    }
  })()
  feed.catch(() => {})
  yield* out
  await feed
}

/** The root block alone, for `dag-scope=block`. */
export async function* rootBlock(
  root: CID,
  get: (cid: CID) => Promise<Uint8Array>,
): AsyncGenerator<{ cid: CID; bytes: Uint8Array }> {
  yield { cid: root, bytes: await get(root) }
}
