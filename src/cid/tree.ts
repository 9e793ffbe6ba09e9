import { type Dirent, lstatSync, readdirSync, readlinkSync, type Stats, statSync } from 'node:fs'
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
/**
 * With a pool factory, files are hashed in this thread until this many bytes or files have gone by:
 * starting the workers costs about 0.1 s, more than a small tree takes to hash.
 */
const LAZY_POOL_BYTES = 16 * CHUNK_SIZE
const LAZY_POOL_FILES = 1000

export interface TreeOptions {
  /** Include entries whose name starts with a dot, as `ipfs add -H`. */
  hidden: boolean
  /** A pool, or a factory called once the tree proves big enough to be worth the pool's start-up. */
  pool?: HashPool | (() => HashPool) | undefined
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
    const pool =
      typeof opts.pool === 'function' ? (st.size >= LAZY_POOL_BYTES ? opts.pool() : undefined) : opts.pool
    const node = pool ? await pool.hashFile(path, st.size) : await cidOfFileInThread(path, st.size)
    opts.onEntry?.('', 'file', node)
    return node
  }
  return new Walker(opts).run(path)
}

/** A directory being walked: its entries fill in as children finish, in any order. */
interface DirState {
  rel: string
  name: string
  parent: DirState | undefined
  slot: number
  entries: (DirEntryCid | undefined)[]
  /** Children not finished, plus one while the directory itself is being listed. */
  remaining: number
}

/**
 * Walks in this thread (readdir + lstat, in name order) while the pool hashes: each file's callback
 * fills its slot in its directory, and a directory is encoded as soon as its last child is known.
 */
class Walker {
  readonly #opts: TreeOptions
  #pool: HashPool | undefined
  #inThreadBytes = 0
  #inThreadFiles = 0
  #sinceYield = 0
  #failure: unknown
  #resolve!: (n: NodeCid) => void
  #reject!: (err: unknown) => void

  constructor(opts: TreeOptions) {
    this.#opts = opts
    if (opts.pool && typeof opts.pool !== 'function') this.#pool = opts.pool
  }

  /** The pool to hash the next file with, if any: a factory is called once the walk has seen enough. */
  #poolNow(): HashPool | undefined {
    const factory = this.#opts.pool
    if (this.#pool || typeof factory !== 'function') return this.#pool
    if (this.#inThreadBytes >= LAZY_POOL_BYTES || this.#inThreadFiles >= LAZY_POOL_FILES)
      this.#pool = factory()
    return this.#pool
  }

  run(root: string): Promise<NodeCid> {
    const done = new Promise<NodeCid>((resolve, reject) => {
      this.#resolve = resolve
      this.#reject = reject
    })
    const state: DirState = { rel: '', name: '', parent: undefined, slot: 0, entries: [], remaining: 1 }
    this.#walk(root, state).catch((err) => this.#fail(err))
    return done
  }

  #fail(err: unknown): void {
    if (this.#failure) return
    this.#failure = err
    this.#reject(err)
  }

  #childDone(state: DirState): void {
    if (--state.remaining > 0 || this.#failure) return
    let node: NodeCid
    try {
      node = directoryNode(state.entries as DirEntryCid[])
    } catch (err) {
      this.#fail(err)
      return
    }
    this.#opts.onEntry?.(state.rel, 'dir', node)
    const parent = state.parent
    if (!parent) {
      this.#resolve(node)
      return
    }
    parent.entries[state.slot] = { name: state.name, cid: node.cid, tsize: node.tsize }
    this.#childDone(parent)
  }

  async #walk(abs: string, state: DirState): Promise<void> {
    const { hidden, onEntry } = this.#opts
    let dirents: Dirent[]
    try {
      dirents = readdirSync(abs, { withFileTypes: true })
    } catch (err) {
      throw fsError(abs, err)
    }
    const rel = state.rel
    for (const d of dirents) {
      if (this.#failure) return
      const name = d.name
      if (!hidden && name.charCodeAt(0) === 46 /* . */) continue
      const childAbs = `${abs}/${name}`
      const childRel = rel === '' ? name : `${rel}/${name}`
      let kind = kindOf(d)
      let st: Stats | undefined
      const pool = kind === 'file' || kind === undefined ? this.#poolNow() : undefined
      if (kind === undefined || (kind === 'file' && !pool)) {
        st = lstatOrThrow(childAbs)
        kind = kindOf(st)
      }
      if (!kind) throw new UnsupportedEntryError(childAbs, describe(st ?? d))
      if (++this.#sinceYield >= YIELD_EVERY) {
        this.#sinceYield = 0
        await yieldToLoop()
        if (this.#failure) return
      }
      const slot = state.entries.length
      state.entries.push(undefined)
      if (kind === 'file') {
        state.remaining++
        if (pool) {
          if (pool.pending >= MAX_PENDING) await pool.belowLimit(MAX_PENDING / 2)
          // No stat here: the worker stats the file it opens anyway.
          pool.submit(childAbs, st?.size, (err, node) => {
            if (err) {
              this.#fail(err)
              return
            }
            state.entries[slot] = { name, cid: node!.cid, tsize: node!.tsize }
            onEntry?.(childRel, 'file', node!)
            this.#childDone(state)
          })
        } else {
          this.#inThreadBytes += st!.size
          this.#inThreadFiles++
          const node = await cidOfFileInThread(childAbs, st!.size)
          state.entries[slot] = { name, cid: node.cid, tsize: node.tsize }
          onEntry?.(childRel, 'file', node)
          this.#childDone(state)
        }
      } else if (kind === 'symlink') {
        const node = symlinkNode(readSymlink(childAbs))
        state.entries[slot] = { name, cid: node.cid, tsize: node.tsize }
        onEntry?.(childRel, 'symlink', node)
      } else {
        state.remaining++
        const child: DirState = { rel: childRel, name, parent: state, slot, entries: [], remaining: 1 }
        await this.#walk(childAbs, child)
      }
    }
    this.#childDone(state)
  }
}
