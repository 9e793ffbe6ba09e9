import { type BlockSink, type FileChild, fileNode, rawCid } from './nodes.ts'
import { CHUNK_SIZE, FILE_MAX_LINKS } from './profile.ts'
import type { FileCid } from './types.ts'

/** The CID of the empty file: a raw block of zero bytes (Kubo with raw leaves). */
const EMPTY_DIGEST = new Uint8Array(
  Buffer.from('e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855', 'hex'),
)

/**
 * Boxo's balanced layout, built bottom-up as leaves arrive: every 1024 children make a File node one
 * level up. At the end each partial level is closed upward, so the root sits at the smallest depth
 * that holds all leaves, every subtree but the last one full, exactly as `balanced.Layout` with
 * `fillNodeRec` builds it. One leaf alone is the root (a raw CID). Memory: at most 1024 children per
 * level.
 */
export class BalancedLayout {
  readonly #levels: FileChild[][] = [[]]
  readonly #sink: BlockSink | undefined
  #leaves = 0

  constructor(sink?: BlockSink) {
    this.#sink = sink
  }

  /**
   * Add the next leaf: the sha2-256 digest of its bytes and their count. With a sink, pass the bytes
   * too (kept by the sink, not copied).
   */
  addLeaf(digest: Uint8Array, size: number, bytes?: Uint8Array): void {
    this.#leaves++
    const cid = rawCid(digest)
    if (bytes) this.#sink?.(cid, bytes)
    this.#push(0, { cid, tsize: size, size })
  }

  #push(level: number, child: FileChild): void {
    let row = this.#levels[level]
    if (!row) {
      row = []
      this.#levels[level] = row
    }
    row.push(child)
    if (row.length === FILE_MAX_LINKS) {
      this.#levels[level] = []
      this.#push(level + 1, fileNode(row, this.#sink))
    }
  }

  /** Close the tree and return the file's root. */
  finish(): FileCid {
    if (this.#leaves === 0) {
      const cid = rawCid(EMPTY_DIGEST)
      this.#sink?.(cid, new Uint8Array(0))
      return { cid, tsize: 0, size: 0 }
    }
    for (let level = 0; ; level++) {
      const row = this.#levels[level] ?? []
      const higher = this.#levels.slice(level + 1).some((r) => r.length > 0)
      if (!higher && row.length === 1) {
        const root = row[0]!
        return { cid: root.cid, tsize: root.tsize, size: root.size }
      }
      if (row.length > 0) {
        this.#levels[level] = []
        this.#push(level + 1, fileNode(row, this.#sink))
      }
    }
  }
}

/** A file's root from its leaf digests (32 bytes each, in order) and total size. */
export function layoutFromDigests(digests: Uint8Array, size: number, sink?: BlockSink): FileCid {
  const layout = new BalancedLayout(sink)
  const n = digests.length / 32
  for (let i = 0; i < n; i++) {
    const leafSize = i < n - 1 ? CHUNK_SIZE : size - (n - 1) * CHUNK_SIZE
    layout.addLeaf(digests.subarray(i * 32, i * 32 + 32), leafSize)
  }
  return layout.finish()
}
