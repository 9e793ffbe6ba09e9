/**
 * The raw leaves of a file whose bytes are not on this disk (evicted, or deleted before it was ever
 * stored on Filecoin), cut from one stream of its bytes read elsewhere (`FileBytes`: the daemon passes
 * the gateway's fetch-back). The packer asks for the leaves in file order (its walk is depth first),
 * so one forward stream serves a whole file or split part; a leaf is released only when it hashes to
 * its CID (promise 2), so what reaches a provider is the block the index names.
 */
import type { CID } from 'multiformats/cid'
import { sha256 } from '../../cid/index.ts'
import type { PlannedFile } from './records.ts'

/**
 * A file's bytes from `start` to its end, read from elsewhere than the mirror tree, verified against
 * its CID; throws when no source has them.
 */
export type FileBytes = (
  file: PlannedFile,
  start: number,
  signal: AbortSignal,
) => Promise<AsyncIterable<Uint8Array>>

const SHA2_256 = 0x12

export class FileLeaves {
  readonly #file: PlannedFile
  readonly #open: FileBytes
  readonly #signal: AbortSignal
  #it: AsyncIterator<Uint8Array> | undefined
  /** File offset of `#buf[0]`'s first byte. */
  #pos = 0
  #buf: Uint8Array[] = []
  #buffered = 0

  constructor(file: PlannedFile, open: FileBytes, signal: AbortSignal) {
    this.#file = file
    this.#open = open
    this.#signal = signal
  }

  /** The leaf `cid` at `offset` of the file, `length` bytes; undefined when its bytes do not hash to it. */
  async leaf(cid: CID, offset: number, length: number): Promise<Uint8Array | undefined> {
    if (!this.#it || offset < this.#pos) await this.#restart(offset)
    // Past what is buffered: drop it and read on to the leaf.
    while (this.#pos + this.#buffered <= offset) {
      this.#pos += this.#buffered
      this.#buf = []
      this.#buffered = 0
      if (!(await this.#more())) return undefined
    }
    while (this.#pos + this.#buffered < offset + length) if (!(await this.#more())) return undefined
    const all = this.#buf.length === 1 ? this.#buf[0]! : Buffer.concat(this.#buf)
    const from = offset - this.#pos
    const bytes = all.subarray(from, from + length)
    // Keep what follows the leaf for the next one.
    const rest = all.subarray(from + length)
    this.#pos = offset + length
    this.#buf = rest.length > 0 ? [rest] : []
    this.#buffered = rest.length
    if (cid.multihash.code !== SHA2_256) return undefined
    return Buffer.compare(sha256(bytes), cid.multihash.digest) === 0 ? Uint8Array.from(bytes) : undefined
  }

  async #restart(offset: number): Promise<void> {
    await this.close()
    this.#it = (await this.#open(this.#file, offset, this.#signal))[Symbol.asyncIterator]()
    this.#pos = offset
    this.#buf = []
    this.#buffered = 0
  }

  async #more(): Promise<boolean> {
    const r = await this.#it!.next()
    if (r.done) return false
    this.#buf.push(r.value)
    this.#buffered += r.value.length
    return true
  }

  async close(): Promise<void> {
    const it = this.#it
    this.#it = undefined
    await it?.return?.()
  }
}
