/**
 * The directory stack: the directories the merge is inside, innermost last, each collecting its
 * children's links in key order (which is Kubo's link order). When the merge leaves a directory it is
 * closed: re-encoded if anything below it changed (`dirty`), else its committed CID is kept; then
 * linked into its parent (the root's CID is the tree's) and recorded if its CID or stat changed.
 */
import type { DirEntryLike } from '../../cid/index.ts'
import { isAncestor, SEP } from '../keys.ts'
import { loadCid } from './cid-lib.ts'
import { type Entry, statEqual } from './entry.ts'
import type { ScanWrites } from './writes.ts'

/** A child of a directory, as its link will be. */
interface Link {
  key: string
  cid: string
  /** The CID's bytes when at hand; parsed from `cid` otherwise. */
  bytes: Uint8Array | undefined
  tsize: number
}

export class OpenDir {
  readonly dir: Entry
  readonly links: Link[] = []
  /** Some child's CID differs from the committed one, or a child was added or deleted. */
  dirty = false

  constructor(dir: Entry) {
    this.dir = dir
  }

  /** Adds a child's link; `changed`: the child is not as committed, so this directory's CID may differ. */
  link(key: string, cid: string, bytes: Uint8Array | undefined, tsize: number, changed: boolean): void {
    this.links.push({ key, cid, bytes, tsize })
    if (changed) this.dirty = true
  }
}

export class DirStack {
  readonly #open: OpenDir[] = []
  readonly #writes: ScanWrites
  /** The root directory's CID and Tsize, once it is closed. */
  root: { cid: string; tsize: number } | undefined

  constructor(writes: ScanWrites) {
    this.#writes = writes
  }

  /** Enters a directory (the entries that follow in key order, up to its last descendant, are in it). */
  open(dir: Entry): void {
    this.#open.push(new OpenDir(dir))
  }

  /** The innermost open directory (callers know one is open: the root is, until the end). */
  get top(): OpenDir {
    return this.#open[this.#open.length - 1]!
  }

  /** The innermost open directory holds `key` (at any depth): nothing needs closing before it. */
  holds(key: string): boolean {
    const top = this.#open[this.#open.length - 1]
    return top !== undefined && isAncestor(top.dir.key, key)
  }

  /** The innermost open directory if it is `key`'s parent (after `closeUntil(key)`). */
  parentOf(key: string): OpenDir | undefined {
    const top = this.#open[this.#open.length - 1]
    if (top === undefined || !isAncestor(top.dir.key, key)) return undefined
    return key.lastIndexOf(SEP) === (top.dir.key === '' ? -1 : top.dir.key.length) ? top : undefined
  }

  /** Closes the open directories that do not hold `key` (all of them for undefined), innermost first. */
  async closeUntil(key: string | undefined): Promise<void> {
    for (;;) {
      const top = this.#open[this.#open.length - 1]
      if (!top || (key !== undefined && isAncestor(top.dir.key, key))) return
      this.#open.pop()
      await this.#close(top)
    }
  }

  async #close(d: OpenDir): Promise<void> {
    const e = d.dir
    const committed = e.committed
    const wasDir = committed !== undefined && committed.kind === 'dir' && committed.state === 'present'
    let cid: string
    let bytes: Uint8Array | undefined
    let tsize: number
    if (!d.dirty && wasDir) {
      cid = committed.cid
      tsize = committed.tsize
    } else {
      const lib = await loadCid()
      const off = e.key === '' ? 0 : e.key.length + 1
      const entries: DirEntryLike[] = d.links.map((c) => {
        const b = c.bytes ?? lib.fromBase32(c.cid)
        return { name: c.key.slice(off), cid: { bytes: b, byteLength: b.length }, tsize: c.tsize }
      })
      const n = await lib.cidOfDirectory(entries)
      bytes = n.cid.bytes
      cid = n.cid.toString()
      tsize = n.tsize
    }
    const changed = !(wasDir && committed.cid === cid)
    const parent = this.#open[this.#open.length - 1]
    if (parent) parent.link(e.key, cid, bytes, tsize, changed)
    else this.root = { cid, tsize }
    if (changed || !statEqual(committed!, e))
      this.#writes.record(e, this.#writes.newRecord(e, 'dir', cid, tsize, 0))
  }
}
