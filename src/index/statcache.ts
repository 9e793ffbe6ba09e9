/**
 * The stat cache: one file per mirror beside the database (`<db>/statcache/<mirror sublevel>`), listing
 * every entry the last plain scan walked, in walk (key) order, with the stat the index compares. Like
 * git's index file, it lets an unchanged rescan be a bare stat walk: the walker threads compare their
 * lstat results with the cache and, when every entry matches, the main thread only records the scan.
 *
 * It is a cache, never the truth: it is believed only when its token equals the database's
 * `meta/statcache` (store.ts), which commits that change path records delete and which is set only after
 * the file is complete and renamed into place; its root must be the scanned root, its checksum must hold,
 * and a scan that finds an interrupted one (`meta/scanning`, a journal) does not believe it. Any doubt
 * costs one full merge, which writes a fresh cache. The walker threads compare with it before those
 * checks are done (they start before the database is read): what they send on a difference are entries
 * as they found them on disk, whatever the cache held, so only the verdict "identical" needs the checks.
 *
 * Format (little-endian; the offsets are `STAT_CACHE_LAYOUT`), written by the walker threads
 * (walk-worker.ts, which gets the layout in its `WalkerData`), or for a first scan, whose walker does not
 * stat regular files, by the scanner (`StatCacheWriter`):
 *
 *   "CIDMSC02"
 *   entries:    u8 kind (walk-protocol.ts `Kind`)  u32 key length  f64 size  f64 mtimeMs  f64 ctimeMs
 *               f64 ino  key (UTF-8, keys.ts form)
 *   footer:     u8 0xff  f64 entries  f64 files  f64 dirs  f64 bytes  header JSON { token, root }
 *               u32 header length
 *   sha256 of everything before it (32 bytes)
 *
 * The header is at the end because the token (the scan id) is known only once the database is read,
 * while the walk, and the writing, have started before.
 */

import { createHash, type Hash, hash } from 'node:crypto'
import {
  closeSync,
  fstatSync,
  fsyncSync,
  mkdirSync,
  openSync,
  readSync,
  renameSync,
  rmSync,
  writeSync,
} from 'node:fs'
import { join } from 'node:path'
import { sublevelName } from './keys.ts'
import { Kind } from './walk-protocol.ts'

/** Byte offsets of the format, for this file and the walker threads (which cannot import it). */
export const STAT_CACHE_LAYOUT = {
  magic: 'CIDMSC02',
  /** Fields of an entry; the key's bytes start at `key`, the fixed part's length. */
  entry: { kind: 0, keyLength: 1, size: 5, mtimeMs: 13, ctimeMs: 21, ino: 29, key: 37 },
  /** Fields of the footer; the header JSON starts at `header`, the fixed part's length. */
  footer: { mark: 0, entries: 1, files: 9, dirs: 17, bytes: 25, header: 33 },
  /** The footer's first byte (no entry starts with it: kinds are small). */
  footerMark: 0xff,
  /** The sha256 at the end. */
  sum: 32,
} as const
export type StatCacheLayout = typeof STAT_CACHE_LAYOUT

const MAGIC = STAT_CACHE_LAYOUT.magic
const E = STAT_CACHE_LAYOUT.entry
const F = STAT_CACHE_LAYOUT.footer
const ENTRY = E.key
const FOOTER = F.header
const MARK = STAT_CACHE_LAYOUT.footerMark
const SUM = STAT_CACHE_LAYOUT.sum
/** The most parts a walk is split into (part files `temp.<i>` to clean up). */
export const MAX_PARTS = 8

export interface StatCacheFiles {
  /** The cache in force. */
  file: string
  /** Where a scan writes its own, before it commits (walker threads i > 0 write `temp.<i>` first). */
  temp: string
}

/**
 * The stat cache files of `mirror` in the database directory `location`. One scan of a mirror runs at
 * a time (the database lock, and `MirrorIndex`), so the temp name needs no scan id: a killed scan's
 * leftover is overwritten by the next.
 */
export function statCacheFiles(location: string, mirror: string): StatCacheFiles {
  const dir = join(location, 'statcache')
  mkdirSync(dir, { recursive: true })
  const file = join(dir, sublevelName(mirror))
  return { file, temp: `${file}.tmp` }
}

/** Puts a scan's finished cache in force (the caller then records its token). */
export function installStatCache(f: StatCacheFiles): void {
  renameSync(f.temp, f.file)
}

export function discardStatCache(f: StatCacheFiles): void {
  rmSync(f.temp, { force: true })
  for (let i = 1; i < MAX_PARTS; i++) rmSync(`${f.temp}.${i}`, { force: true })
}

/** A stat cache read into shared memory, its footer parsed; not yet checked against the database. */
export interface LoadedStatCache {
  sab: SharedArrayBuffer
  /** The header's token and root, to compare with the database's and the scan's. */
  token: unknown
  root: unknown
  /** Entries: [start, end) bytes, `count` of them. */
  start: number
  end: number
  count: number
  /** Whether the checksum holds (a SHA-256 over the file: call it while the walk runs). */
  checksumOk(): boolean
}

/** The number of entries the cache file says it holds (its footer only); undefined without one. */
export function statCacheEntries(file: string): number | undefined {
  let fd: number
  try {
    fd = openSync(file, 'r')
  } catch {
    return undefined
  }
  try {
    const size = fstatSync(fd).size
    if (size < MAGIC.length + FOOTER + 4 + SUM) return undefined
    const b = Buffer.alloc(4 + FOOTER)
    if (readSync(fd, b, 0, 4, size - SUM - 4) !== 4) return undefined
    const hl = b.readUInt32LE(0)
    const end = size - SUM - 4 - hl - FOOTER
    if (end < MAGIC.length || readSync(fd, b, 0, FOOTER, end) !== FOOTER || b[F.mark] !== MARK)
      return undefined
    const count = b.readDoubleLE(F.entries)
    return Number.isSafeInteger(count) && count >= 0 ? count : undefined
  } catch {
    return undefined
  } finally {
    closeSync(fd)
  }
}

/** Reads the cache file into shared memory; undefined when absent or not of this format. */
export function loadStatCache(file: string): LoadedStatCache | undefined {
  let fd: number
  try {
    fd = openSync(file, 'r')
  } catch {
    return undefined
  }
  let sab: SharedArrayBuffer
  let buf: Buffer
  try {
    const size = fstatSync(fd).size
    if (size < MAGIC.length + FOOTER + 4 + SUM) return undefined
    sab = new SharedArrayBuffer(size)
    buf = Buffer.from(sab)
    let off = 0
    while (off < size) {
      const n = readSync(fd, buf, off, size - off, off)
      if (n === 0) return undefined
      off += n
    }
  } catch {
    return undefined
  } finally {
    closeSync(fd)
  }
  const len = buf.length
  if (buf.toString('latin1', 0, MAGIC.length) !== MAGIC) return undefined
  const hl = buf.readUInt32LE(len - SUM - 4)
  const end = len - SUM - 4 - hl - FOOTER
  if (end < MAGIC.length || buf[end + F.mark] !== MARK) return undefined
  let header: { token?: unknown; root?: unknown }
  try {
    header = JSON.parse(buf.toString('utf8', end + FOOTER, end + FOOTER + hl))
  } catch {
    return undefined
  }
  const count = buf.readDoubleLE(end + F.entries)
  if (!Number.isSafeInteger(count) || count < 0) return undefined
  return {
    sab,
    token: header.token,
    root: header.root,
    start: MAGIC.length,
    end,
    count,
    checksumOk: () => {
      const sum = hash('sha256', buf.subarray(0, len - SUM), 'buffer') as Buffer
      return sum.equals(buf.subarray(len - SUM))
    },
  }
}

/** One walker thread's part: keys [lo, hi) (undefined: from the root, to the end), cache bytes [start, end). */
export interface WalkPart {
  lo?: string
  hi?: string
  start: number
  end: number
}

/**
 * Splits the cached walk into `parts` runs of about equal entry counts, at entry boundaries: the key
 * of a run's first entry is where its thread starts walking (at any depth: a tree with one top-level
 * directory splits as well). A run's entries are exactly the cache's entries within its key range.
 * One part when the cache is too small or its entries do not parse.
 */
export function splitStatCache(c: LoadedStatCache, parts: number): WalkPart[] {
  const whole: WalkPart[] = [{ start: c.start, end: c.end }]
  if (parts < 2 || c.count < parts * 2) return whole
  const buf = Buffer.from(c.sab)
  const out: WalkPart[] = []
  let p = c.start
  let prev: WalkPart = { start: c.start, end: c.end }
  out.push(prev)
  let next = 1
  let target = Math.floor((c.count * next) / parts)
  for (let i = 0; i < c.count && next < parts; i++) {
    if (p + ENTRY > c.end) return whole
    const kl = buf.readUInt32LE(p + E.keyLength)
    if (p + ENTRY + kl > c.end) return whole
    if (i === target && i > 0) {
      const key = buf.toString('utf8', p + ENTRY, p + ENTRY + kl)
      if (key === '') return whole
      prev.end = p
      prev.hi = key
      prev = { lo: key, start: p, end: c.end }
      out.push(prev)
      next++
      target = Math.floor((c.count * next) / parts)
    }
    p += ENTRY + kl
  }
  return out.length === parts ? out : whole
}

/**
 * Writes a stat cache on the main thread, entry by entry in key order: used by a first scan, whose
 * walker sends regular files unstat'ed (the hash workers stat them), so only the scanner knows every
 * entry's stat. Any failure turns it off; `finish` then says the cache was not written.
 */
export class StatCacheWriter {
  readonly #file: string
  #fd = -1
  #buf: Buffer | undefined = Buffer.allocUnsafe(1 << 20)
  #pos = 0
  readonly #sum: Hash = createHash('sha256')
  #entries = 0
  #files = 0
  #dirs = 0
  #bytes = 0

  constructor(file: string) {
    this.#file = file
    try {
      this.#fd = openSync(file, 'w', 0o600)
      this.#pos = this.#buf!.write(MAGIC, 0, 'latin1')
    } catch {
      this.abort()
    }
  }

  #out(chunk: Buffer): void {
    this.#sum.update(chunk)
    let off = 0
    while (off < chunk.length) off += writeSync(this.#fd, chunk, off, chunk.length - off)
  }

  /** One entry (kind: walk-protocol.ts `Kind`). */
  add(key: string, kind: Kind, size: number, mtimeMs: number, ctimeMs: number, ino: number): void {
    let b = this.#buf
    if (!b) return
    try {
      const need = ENTRY + key.length * 3
      if (this.#pos + need > b.length) {
        this.#out(b.subarray(0, this.#pos))
        this.#pos = 0
        if (need > b.length) {
          b = Buffer.allocUnsafe(need * 2)
          this.#buf = b
        }
      }
      const p = this.#pos
      const kl = b.write(key, p + ENTRY, 'utf8')
      b[p + E.kind] = kind
      b.writeUInt32LE(kl, p + E.keyLength)
      b.writeDoubleLE(size, p + E.size)
      b.writeDoubleLE(mtimeMs, p + E.mtimeMs)
      b.writeDoubleLE(ctimeMs, p + E.ctimeMs)
      b.writeDoubleLE(ino, p + E.ino)
      this.#pos = p + ENTRY + kl
      this.#entries++
      if (kind === Kind.Dir) this.#dirs++
      else {
        this.#files++
        if (kind === Kind.File) this.#bytes += size
      }
    } catch {
      this.abort()
    }
  }

  /** Writes the footer (tagged with the scan id `token`) and the checksum; whether the file is complete. */
  finish(token: number, root: string): boolean {
    const b = this.#buf
    if (!b) return false
    try {
      this.#out(b.subarray(0, this.#pos))
      b[F.mark] = MARK
      b.writeDoubleLE(this.#entries, F.entries)
      b.writeDoubleLE(this.#files, F.files)
      b.writeDoubleLE(this.#dirs, F.dirs)
      b.writeDoubleLE(this.#bytes, F.bytes)
      const hl = b.write(JSON.stringify({ token, root }), FOOTER, 'utf8')
      b.writeUInt32LE(hl, FOOTER + hl)
      this.#out(b.subarray(0, FOOTER + hl + 4))
      writeSync(this.#fd, this.#sum.digest())
      fsyncSync(this.#fd)
      closeSync(this.#fd)
      this.#fd = -1
      this.#buf = undefined
      return true
    } catch {
      this.abort()
      return false
    }
  }

  /** Stops writing and removes the partial file. */
  abort(): void {
    this.#buf = undefined
    if (this.#fd >= 0) {
      try {
        closeSync(this.#fd)
      } catch {}
      this.#fd = -1
    }
    rmSync(this.#file, { force: true })
  }
}
