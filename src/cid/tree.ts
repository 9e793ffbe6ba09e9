import { type Dirent, lstatSync, readdirSync, readlinkSync, type Stats, statSync } from 'node:fs'
import { join } from 'node:path'
import { setImmediate as yieldToLoop } from 'node:timers/promises'
import { fsError, UnsupportedEntryError } from './errors.ts'
import { hashFileAsync, hashFileSync, mainThreadBuffer } from './hash.ts'
import { directoryNode, symlinkNode } from './nodes.ts'
import type { HashPool } from './pool.ts'
import { CHUNK_SIZE } from './profile.ts'
import type { DirEntryCid, EntryKind, FileCid, NodeCid } from './types.ts'

/** Files at most this big are hashed with blocking reads: one read, no thread-pool round trips. */
const SYNC_MAX = 4 * CHUNK_SIZE
/** Files handed to the pool and not yet hashed, before the walk waits. */
const MAX_PENDING = 20_000
/** Entries walked between two turns of the event loop (so pool replies flow during a walk). */
const YIELD_EVERY = 256

export interface TreeOptions {
  /** Include entries whose name starts with a dot, as `ipfs add -H`. */
  hidden: boolean
  pool?: HashPool | undefined
  /**
   * Called once per entry when its CID is known: files as they finish hashing (not in walk order),
   * a directory after all its children. `relPath` is relative to the tree root, `/`-separated; the
   * root itself is `''`.
   */
  onEntry?: ((relPath: string, kind: EntryKind, node: NodeCid) => void) | undefined
}

function lstatOrThrow(path: string): Stats {
  try {
    return lstatSync(path)
  } catch (err) {
    throw fsError(path, err)
  }
}

/** A file's CID in this thread. */
export async function cidOfFileInThread(path: string, size?: number): Promise<FileCid> {
  if (size === undefined) {
    try {
      size = statSync(path).size
    } catch (err) {
      throw fsError(path, err)
    }
  }
  return size <= SYNC_MAX ? hashFileSync(path, mainThreadBuffer()) : hashFileAsync(path)
}

function readSymlink(path: string): Buffer {
  try {
    return readlinkSync(path, { encoding: 'buffer' })
  } catch (err) {
    throw fsError(path, err)
  }
}

function kindOf(st: Stats | Dirent): EntryKind | undefined {
  if (st.isFile()) return 'file'
  if (st.isDirectory()) return 'dir'
  if (st.isSymbolicLink()) return 'symlink'
  return undefined
}

function describe(st: Stats | Dirent): string {
  if (st.isFIFO()) return 'fifo'
  if (st.isSocket()) return 'socket'
  if (st.isCharacterDevice()) return 'character device'
  if (st.isBlockDevice()) return 'block device'
  return 'unknown'
}

/** The root CID of `path` as `ipfs add -r [-H]` computes it (files, symlinks, directories). */
export async function cidOfTree(path: string, opts: TreeOptions): Promise<NodeCid> {
  const st = lstatOrThrow(path)
  const kind = kindOf(st)
  if (!kind) throw new UnsupportedEntryError(path, describe(st))
  if (kind === 'symlink') {
    const node = symlinkNode(readSymlink(path))
    opts.onEntry?.('', 'symlink', node)
    return node
  }
  if (kind === 'file') {
    const node = opts.pool ? await opts.pool.hashFile(path, st.size) : await cidOfFileInThread(path, st.size)
    opts.onEntry?.('', 'file', node)
    return node
  }
  const walker = new Walker(opts)
  const root = await walker.dir(path, '')
  return root.done
}

/** A directory whose walk is over; its CID resolves once every file below it is hashed. */
interface WalkedDir {
  done: Promise<NodeCid>
}

class Walker {
  readonly #opts: TreeOptions
  #sinceYield = 0
  #failure: unknown

  constructor(opts: TreeOptions) {
    this.#opts = opts
  }

  #track<T>(p: Promise<T>): Promise<T> {
    // Remember the first failure so the walk stops early; the promise is still awaited by its parent.
    p.catch((err) => {
      this.#failure ??= err
    })
    return p
  }

  async dir(abs: string, rel: string): Promise<WalkedDir> {
    const { hidden, pool, onEntry } = this.#opts
    let dirents: Dirent[]
    try {
      dirents = readdirSync(abs, { withFileTypes: true })
    } catch (err) {
      throw fsError(abs, err)
    }
    const children: Promise<DirEntryCid>[] = []
    for (const d of dirents) {
      if (this.#failure) throw this.#failure
      const name = d.name
      if (!hidden && name.startsWith('.')) continue
      const childAbs = join(abs, name)
      const childRel = rel === '' ? name : `${rel}/${name}`
      let kind = kindOf(d)
      let st: Stats | undefined
      if (kind === 'file' || kind === undefined) {
        st = lstatOrThrow(childAbs)
        kind = kindOf(st)
      }
      if (!kind) throw new UnsupportedEntryError(childAbs, describe(st ?? d))
      if (++this.#sinceYield >= YIELD_EVERY) {
        this.#sinceYield = 0
        await yieldToLoop()
      }
      if (kind === 'file') {
        const size = st!.size
        let p: Promise<FileCid>
        if (pool) {
          if (pool.pending >= MAX_PENDING) await pool.belowLimit(MAX_PENDING / 2)
          p = pool.hashFile(childAbs, size)
        } else {
          p = Promise.resolve(await cidOfFileInThread(childAbs, size))
        }
        children.push(
          this.#track(
            p.then((node) => {
              onEntry?.(childRel, 'file', node)
              return { name, cid: node.cid, tsize: node.tsize }
            }),
          ),
        )
      } else if (kind === 'symlink') {
        const node = symlinkNode(readSymlink(childAbs))
        onEntry?.(childRel, 'symlink', node)
        children.push(Promise.resolve({ name, ...node }))
      } else {
        const sub = await this.dir(childAbs, childRel)
        children.push(this.#track(sub.done.then((node) => ({ name, cid: node.cid, tsize: node.tsize }))))
      }
    }
    const done = Promise.all(children).then((entries) => {
      const node = directoryNode(entries)
      onEntry?.(rel, 'dir', node)
      return node
    })
    return { done: this.#track(done) }
  }
}
