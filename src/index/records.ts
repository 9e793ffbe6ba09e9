import type { EntryKind } from '../cid/index.ts'

export type PathState = 'present' | 'evicted' | 'deleted'

/** What the index knows about one path of a mirror. */
export interface PathRecord {
  /** Relative to the mirror root, `/`-separated; '' is the root directory. */
  path: string
  kind: EntryKind
  /** CIDv1 (base32) as `ipfs add --cid-version=1` under `unixfs-v1-2025` gives it. */
  cid: string
  /** Cumulative DAG size (the Tsize of a link to this node). */
  tsize: number
  /** Bytes of a file, bytes of a symlink's target, 0 for a directory. */
  size: number
  mtimeMs: number
  ctimeMs: number
  ino: number
  /** Symlinks only: the target, as read (not followed). */
  target?: string
  /**
   * Files of more than one chunk, when the scan was asked for it (`whole_file_digest`): the whole
   * file's SHA-256 in base64, as RFC 9530's `Repr-Digest` carries it. Hashed from the same bytes as
   * `cid`, so it stands for the file exactly when the CID does. (A one-chunk file's CID is its digest.)
   */
  sha256?: string
  /** ISO time of the first scan that saw this path. */
  firstSeen: string
  /** ISO time of the scan that indexed the current version (content or metadata last changed). */
  lastSynced: string
  /**
   * present: on disk as indexed. evicted: removed from disk on purpose, still part of the mirror.
   * deleted: gone from the mirror (kept as a record).
   */
  state: PathState
  /** Id of the scan that wrote this record. */
  scan: number
}

/** A record as stored under the path key (no path; times in epoch ms). Fields are added, never renamed. */
export type StoredRecord = Omit<PathRecord, 'path' | 'firstSeen' | 'lastSynced'> & {
  firstSeen: number
  lastSynced: number
  /**
   * The scan from which the path has held this CID, when an earlier one than `scan` (a later scan only
   * changed its metadata and rewrote the record). Unset: `scan`. What a past version's `firstScan` is.
   */
  since?: number
}

/** One scan of a mirror. Counts are of files and symlinks; directories are counted in `dirs` only. */
export interface ScanSummary {
  mirror: string
  id: number
  root: string
  started: string
  ended: string
  /** Present regular files and symlinks after the scan (evicted ones not included). */
  files: number
  dirs: number
  /** Bytes of the present files. */
  bytes: number
  added: number
  /** Content changed (new CID) or kind changed. */
  changed: number
  /** Metadata changed (size, mtime, ctime or inode) but the re-hash gave the same CID. */
  touched: number
  deleted: number
  unchanged: number
  /** Records kept as evicted (absent from disk on purpose). */
  evicted: number
  /** Files hashed by this scan and their bytes. */
  filesHashed: number
  bytesHashed: number
  /** Files whose CID came from an interrupted earlier scan instead of being hashed again. */
  reused: number
  /** True when an interrupted scan's work was found. */
  resumed: boolean
  /** Tree CID of the root directory, as `ipfs add -r -H --cid-version=1` gives it. */
  rootCid: string
  /** Total DAG size of the tree. */
  rootTsize: number
  /** Set (true) when the scan kept multi-chunk files' whole SHA-256 (`whole_file_digest`). */
  wholeFileDigest?: boolean
}

export interface ScanProgress {
  phase: 'scan' | 'commit'
  /** Entries (files, symlinks, directories) walked so far. */
  walked: number
  /** Entries of the previous scan, when there was one: the expected `walked` at the end. */
  total?: number
  filesHashed: number
  bytesHashed: number
  /** Files and bytes queued for hashing and not done yet. */
  filesQueued: number
  bytesQueued: number
}

export function toPathRecord(path: string, r: StoredRecord): PathRecord {
  const out: PathRecord = {
    path,
    kind: r.kind,
    cid: r.cid,
    tsize: r.tsize,
    size: r.size,
    mtimeMs: r.mtimeMs,
    ctimeMs: r.ctimeMs,
    ino: r.ino,
    firstSeen: new Date(r.firstSeen).toISOString(),
    lastSynced: new Date(r.lastSynced).toISOString(),
    state: r.state,
    scan: r.scan,
  }
  if (r.target !== undefined) out.target = r.target
  if (r.sha256 !== undefined) out.sha256 = r.sha256
  return out
}

const KIND_CODES: Record<EntryKind, number> = { file: 0, dir: 1, symlink: 2 }
const KIND_NAMES: EntryKind[] = ['file', 'dir', 'symlink']
const STATE_CODES: Record<PathState, number> = { present: 0, evicted: 1, deleted: 2 }
const STATE_NAMES: PathState[] = ['present', 'evicted', 'deleted']

/**
 * A record's stored text: a JSON array `[kind, cid, tsize, size, mtimeMs, ctimeMs, ino, firstSeen,
 * lastSynced, state, scan(, target(, sha256(, since)))]` with kind and state as small numbers; a
 * position left empty before a later one that is set holds `null`. Positions are added at the end, never moved, so records
 * written before a field existed decode as they did. Half the bytes of a JSON object, and built
 * without JSON.stringify (base64 needs no escaping).
 */
export function encodeRecord(r: StoredRecord): string {
  const head = `[${KIND_CODES[r.kind]},"${r.cid}",${r.tsize},${r.size},${r.mtimeMs},${r.ctimeMs},${r.ino},${r.firstSeen},${r.lastSynced},${STATE_CODES[r.state]},${r.scan}`
  const target = r.target === undefined ? 'null' : JSON.stringify(r.target)
  if (r.since !== undefined)
    return `${head},${target},${r.sha256 === undefined ? 'null' : `"${r.sha256}"`},${r.since}]`
  if (r.sha256 !== undefined) return `${head},${target},"${r.sha256}"]`
  return r.target === undefined ? `${head}]` : `${head},${target}]`
}

type RecordArray = [
  number,
  string,
  number,
  number,
  number,
  number,
  number,
  number,
  number,
  number,
  number,
  (string | null)?,
  (string | null)?,
  number?,
]

/** A record from its parsed stored JSON (`encodeRecord`'s array). */
export function decodeRecord(v: unknown): StoredRecord {
  const a = v as RecordArray
  const r: StoredRecord = {
    kind: KIND_NAMES[a[0]]!,
    cid: a[1],
    tsize: a[2],
    size: a[3],
    mtimeMs: a[4],
    ctimeMs: a[5],
    ino: a[6],
    firstSeen: a[7],
    lastSynced: a[8],
    state: STATE_NAMES[a[9]]!,
    scan: a[10],
  }
  if (a[11] !== undefined && a[11] !== null) r.target = a[11]
  if (a[12] !== undefined && a[12] !== null) r.sha256 = a[12]
  if (a[13] !== undefined) r.since = a[13]
  return r
}
