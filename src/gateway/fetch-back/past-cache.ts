/**
 * The cache of past fetches: the bytes of transient fetch-backs (files deleted upstream, past
 * versions, files asked by CID: `EvictedFile.transient`) kept in a folder of their own, one file per
 * CID, at most `maxBytes` in all, the least recently used evicted first. It is never the mirror tree
 * and the index is never told of it (DESIGN promise 6: the index says what the mirror holds), so a
 * second download of a deleted file is read from here, not from the network again.
 *
 * An entry goes in only from a fetch that finished with every block verified as it was written (the
 * fetch-back's own check: the file is not hashed a second time), after its file is synced, then
 * renamed into place: a reader never meets a partial or unverified entry.
 * Temp files of these fetches are written in the same folder (`<random>.part`), so that rename stays
 * on one file system. The entries found at first use are taken in by their mtime (touched on each use).
 */

import { randomBytes } from 'node:crypto'
import type { FileHandle } from 'node:fs/promises'
import { mkdir, open, readdir, rename, stat, unlink, utimes } from 'node:fs/promises'
import { join } from 'node:path'
import { parseCid } from '../../ipfs/index.ts'

export interface PastCacheOptions {
  /** The folder (created at first use), beside the database in the daemon (`<[database] path>-past-cache`). */
  dir: string
  /** The entries' bytes, at most; a file larger than this is never kept. */
  maxBytes: number
}

/** What the cache holds, for `/_status` and the tests. */
export interface PastCacheFigures {
  entries: number
  bytes: number
  maxBytes: number
  hits: number
  kept: number
  evicted: number
}

type LogFn = (obj: Record<string, unknown>, msg: string) => void

/** An entry's name: its CID as base32 CIDv1 (the index's spelling), never a path a request chose. */
function nameOf(cid: string): string | undefined {
  try {
    return parseCid(cid).toV1().toString()
  } catch {
    return undefined
  }
}

export class PastCache {
  readonly dir: string
  readonly #max: number
  /** Entries by name with their sizes, least recently used first (a Map keeps insertion order). */
  readonly #entries = new Map<string, number>()
  #bytes = 0
  #loaded: Promise<void> | undefined
  #hits = 0
  #kept = 0
  #evicted = 0
  /** The files handed to `keep`, admitted one after another. */
  #pending: Promise<void> = Promise.resolve()

  constructor(opts: PastCacheOptions) {
    this.dir = opts.dir
    this.#max = opts.maxBytes
  }

  figures(): PastCacheFigures {
    return {
      entries: this.#entries.size,
      bytes: this.#bytes,
      maxBytes: this.#max,
      hits: this.#hits,
      kept: this.#kept,
      evicted: this.#evicted,
    }
  }

  /** Whether a file of `size` bytes could be kept (its fetch then writes its temp file in `dir`). */
  fits(size: number): boolean {
    return size <= this.#max
  }

  /** The entry's path and open file when the cache holds `cid` with `size` bytes (marked used), else undefined. */
  async open(cid: string, size: number): Promise<{ path: string; fh: FileHandle } | undefined> {
    // A folder that cannot be made or read: no cache, the network as without one.
    if (
      !(await this.#load().then(
        () => true,
        () => false,
      ))
    )
      return undefined
    const name = nameOf(cid)
    if (name === undefined || this.#entries.get(name) !== size) return undefined
    // Opened before it is counted: an eviction that unlinks it now leaves this reader its bytes.
    const path = join(this.dir, name)
    const fh = await open(path, 'r').catch(() => undefined)
    if (!fh) {
      this.#forget(name)
      return undefined
    }
    const st = await fh.stat()
    if (st.size !== size) {
      await fh.close()
      this.#forget(name)
      await unlink(path).catch(() => {})
      return undefined
    }
    this.#entries.delete(name)
    this.#entries.set(name, size)
    this.#hits++
    const now = new Date()
    void utimes(path, now, now).catch(() => {})
    return { path, fh }
  }

  /**
   * Takes `tmp` (a finished fetch of `cid` in `dir`, every block verified as it was written): it is
   * moved aside at once (its fetch's readers read on from their open file), then in the background
   * synced and renamed into place as the entry of `cid`; the least recently used entries past
   * `maxBytes` are then evicted. Never throws: a file not kept is removed, and the
   * download it served is unchanged.
   */
  async keep(tmp: string, cid: string, size: number, log?: LogFn): Promise<void> {
    const name = nameOf(cid)
    if (name === undefined || !this.fits(size)) return
    const staged = join(this.dir, `${randomBytes(8).toString('hex')}.part`)
    try {
      await rename(tmp, staged)
    } catch (err) {
      log?.({ cid, err: (err as Error).message }, 'past fetch not cached')
      return
    }
    this.#pending = this.#pending.then(() => this.#admit(staged, name, size, log))
  }

  async #admit(staged: string, name: string, size: number, log?: LogFn): Promise<void> {
    try {
      await this.#load()
      const fh = await open(staged, 'r+')
      try {
        await fh.sync()
      } finally {
        await fh.close()
      }
      await rename(staged, join(this.dir, name))
      this.#forget(name)
      this.#entries.set(name, size)
      this.#bytes += size
      await this.#evict()
      // Counted once the cap holds again: `kept` moving on says this file's admission is over.
      this.#kept++
    } catch (err) {
      log?.({ cid: name, err: (err as Error).message }, 'past fetch not cached')
      await unlink(staged).catch(() => {})
    }
  }

  #forget(name: string): void {
    const size = this.#entries.get(name)
    if (size === undefined) return
    this.#entries.delete(name)
    this.#bytes -= size
  }

  async #evict(): Promise<void> {
    for (const [name] of this.#entries) {
      if (this.#bytes <= this.#max) return
      this.#forget(name)
      this.#evicted++
      await unlink(join(this.dir, name)).catch(() => {})
    }
  }

  /** The entries already on disk, oldest use first, and the cap applied to them (once). */
  #load(): Promise<void> {
    this.#loaded ??= (async () => {
      await mkdir(this.dir, { recursive: true })
      const found: { name: string; size: number; used: number }[] = []
      for (const name of await readdir(this.dir)) {
        // `.part` files are fetches' temp files (removed by the fetch-back's own clean-up).
        if (name.endsWith('.part') || nameOf(name) !== name) continue
        const st = await stat(join(this.dir, name)).catch(() => undefined)
        if (st?.isFile()) found.push({ name, size: st.size, used: st.mtimeMs })
      }
      found.sort((a, b) => a.used - b.used)
      for (const f of found) {
        this.#entries.set(f.name, f.size)
        this.#bytes += f.size
      }
      await this.#evict()
    })()
    return this.#loaded
  }
}
