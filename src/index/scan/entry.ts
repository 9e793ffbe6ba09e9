/** One path of a scan, in key order: what the walk found there, what the index holds there, or both. */
import type { EntryKind } from '../../cid/index.ts'
import type { StoredRecord } from '../records.ts'
import { Kind } from '../walk-protocol.ts'

/** A file's or symlink's CID, hashed by this scan or taken from an interrupted one's record. */
export interface Hashed {
  cid: string
  /** The CID's bytes when at hand (fresh hashes); parsed from `cid` otherwise. */
  bytes: Uint8Array | undefined
  tsize: number
  size: number
  target?: string
  /** A multi-chunk file's whole SHA-256 (base64), when the scan computes it. */
  sha256?: string
  /** Taken from an interrupted scan's record, not hashed. */
  reused: boolean
}

export interface Entry {
  key: string
  /** What is on disk at `key` now (`Kind.Absent`: nothing the index holds). */
  kind: Kind
  /** The stat the walk found (NaN for a listed file until its hash worker stats it). */
  size: number
  mtimeMs: number
  ctimeMs: number
  ino: number
  /** The committed record at this key. */
  committed: StoredRecord | undefined
  /** An uncommitted record at this key, left by an interrupted scan. */
  leftover: StoredRecord | undefined
  /** The relative path, once computed. */
  path: string | undefined
  /** A hash job for this entry is running (hash-queue.ts). */
  hashing: boolean
  /** The job's answer (or a hint's, `reused`), or its failure. */
  result: Hashed | undefined
  error: unknown
  /** Kind and stat equal the committed record: nothing to hash or write. */
  unchanged: boolean
}

export function newEntry(key: string): Entry {
  return {
    key,
    kind: Kind.Absent,
    size: 0,
    mtimeMs: 0,
    ctimeMs: 0,
    ino: 0,
    committed: undefined,
    leftover: undefined,
    path: undefined,
    hashing: false,
    result: undefined,
    error: undefined,
    unchanged: false,
  }
}

const KIND_NAMES: Record<Exclude<Kind, typeof Kind.Absent>, EntryKind> = {
  [Kind.File]: 'file',
  [Kind.Dir]: 'dir',
  [Kind.Symlink]: 'symlink',
}

/** The record's name of an entry's kind. */
export function kindName(kind: Exclude<Kind, typeof Kind.Absent>): EntryKind {
  return KIND_NAMES[kind]
}

/** The stat the index compares (size, mtime, ctime, inode) is the same in `r` and `e`. */
export function statEqual(r: StoredRecord, e: Entry): boolean {
  return r.size === e.size && r.mtimeMs === e.mtimeMs && r.ctimeMs === e.ctimeMs && r.ino === e.ino
}

/** `r` is a present record of this kind with the entry's stat: its CID stands for what is on disk. */
export function recordMatches(r: StoredRecord | undefined, kind: EntryKind, e: Entry): r is StoredRecord {
  return r !== undefined && r.state === 'present' && r.kind === kind && statEqual(r, e)
}
