import { type Dirent, lstatSync, readdirSync, readlinkSync } from 'node:fs'
import { join } from 'node:path'
import { Readable, type Writable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { CarWriter } from '@ipld/car/writer'
import type { CID } from 'multiformats/cid'
import { CidmirrorError } from '../errors.ts'
import { fsError, UnsupportedEntryError } from './errors.ts'
import { fileBlocks, fileBlocksSync } from './hash.ts'
import { type BlockSink, directoryNode, symlinkNode } from './nodes.ts'
import type { HashPool } from './pool.ts'
import { CHUNK_SIZE } from './profile.ts'
import { cidOfTree } from './tree.ts'
import type { DirEntryCid, NodeCid } from './types.ts'

/** Files at most this big are read with blocking reads. */
const SYNC_MAX = 4 * CHUNK_SIZE

/** The tree changed between the two passes of a CAR export. */
export class TreeChangedError extends CidmirrorError {
  constructor(path: string) {
    super('TREE_CHANGED', `${path} changed while it was being exported`)
    this.name = 'TreeChangedError'
  }
}

export interface Block {
  cid: CID
  bytes: Uint8Array
}

/** Remembers the blocks written lately, so repeated content (zero chunks, copies) is written once. */
class Seen {
  #set = new Set<string>()
  add(cid: CID): boolean {
    const key = Buffer.from(cid.multihash.bytes).toString('base64')
    if (this.#set.has(key)) return false
    if (this.#set.size >= 200_000) this.#set.clear()
    this.#set.add(key)
    return true
  }
}

/**
 * Every block of the UnixFS DAG of `path` (as `ipfs add -r [-H]` builds it), children before parents;
 * the last block is the root. Files are re-read chunk by chunk: memory stays bounded.
 */
export async function* treeBlocks(
  path: string,
  opts: { hidden?: boolean } = {},
): AsyncGenerator<Block, NodeCid> {
  const hidden = opts.hidden ?? false
  const pending: Block[] = []
  const sink: BlockSink = (cid, bytes) => {
    pending.push({ cid, bytes })
  }

  async function* entry(abs: string): AsyncGenerator<Block, NodeCid> {
    let st: ReturnType<typeof lstatSync>
    try {
      st = lstatSync(abs)
    } catch (err) {
      throw fsError(abs, err)
    }
    if (st.isSymbolicLink()) {
      let target: Buffer
      try {
        target = readlinkSync(abs, { encoding: 'buffer' })
      } catch (err) {
        throw fsError(abs, err)
      }
      const node = symlinkNode(target, sink)
      yield* pending.splice(0)
      return node
    }
    if (st.isFile()) {
      if (st.size > SYNC_MAX) return yield* fileBlocks(abs)
      const { blocks, root } = fileBlocksSync(abs)
      yield* blocks
      return root
    }
    if (st.isDirectory()) {
      let dirents: Dirent[]
      try {
        dirents = readdirSync(abs, { withFileTypes: true })
      } catch (err) {
        throw fsError(abs, err)
      }
      const entries: DirEntryCid[] = []
      for (const c of dirents) {
        if (!hidden && c.name.startsWith('.')) continue
        const node = yield* entry(join(abs, c.name))
        entries.push({ name: c.name, cid: node.cid, tsize: node.tsize })
      }
      const node = directoryNode(entries, sink)
      yield* pending.splice(0)
      return node
    }
    throw new UnsupportedEntryError(abs, 'not a file, directory or symlink')
  }

  return yield* entry(path)
}

/**
 * Write a CARv1 of `path` (a file, symlink or directory, as `ipfs add -r [-H]` would add it) to `out`.
 * The root CID goes in the header, so it is computed first (one hashing pass, in `pool` when given);
 * the second pass re-reads and streams the blocks with back-pressure. Memory stays bounded: a
 * directory's entries and one chunk at a time. On failure `out` is destroyed (as `pipeline` does);
 * a tree that changed between the passes fails with TreeChangedError.
 */
export async function exportCar(
  path: string,
  out: NodeJS.WritableStream | Writable,
  opts: { hidden?: boolean; pool?: HashPool } = {},
): Promise<CID> {
  const hidden = opts.hidden ?? false
  let root: NodeCid
  try {
    root = await cidOfTree(path, { hidden, pool: opts.pool })
  } catch (err) {
    // As pipeline would on an error: the stream is not written and not left open.
    ;(out as Writable).destroy?.()
    throw err
  }
  const { writer, out: car } = CarWriter.create([root.cid])
  const piping = pipeline(Readable.from(car), out as Writable)
  const seen = new Seen()
  let last: NodeCid | undefined
  try {
    const blocks = treeBlocks(path, { hidden })
    for (;;) {
      const r = await blocks.next()
      if (r.done) {
        last = r.value
        break
      }
      if (seen.add(r.value.cid)) await writer.put(r.value)
    }
  } finally {
    await writer.close()
    await piping
  }
  if (!last?.cid.equals(root.cid)) throw new TreeChangedError(path)
  return root.cid
}
