/**
 * Past versions: the files and symlinks that left a mirror's tree. When a scan deletes a path, or
 * gives it new content (a new CID, or a directory in its place), the record it held goes here, with
 * the scans it was part of, so the archive keeps it: the replicator stores its CID before the tree
 * pin moves on (issue 13, "files that leave the mirror stay in the archive"), and the gateway serves
 * `/_deleted/` paths and past roots from it.
 *
 *   index/m.<name>/v/<left scan, 12 digits>\x00<path key>            -> stored version   by scan
 *   index/m.<name>/vp/<path key>\x00\x00<left scan, 12 digits>       -> stored version   by path
 *   index/m.<name>/vc/<cid>\x00<path key>\x00\x00<left scan, 12 d.>  -> stored version   by CID
 *
 * (A name is never empty, so `<path key>\x00\x00` starts no other path's key.) All three are written
 * by the commit of the scan the version left in, in the batches that apply its journal (store.ts
 * `applyCommit`): the journal entry carries the record it replaces, so a process killed during the
 * apply writes the same versions when it finishes the commit on the next open. Entries of a scan that
 * has not committed are never read (`visible`). Directories are not versioned: every directory node
 * ever written stays in the block map (`index/nodes/<cid>`), and past roots are resolved through them.
 */
import { type KeyRange, rangePages, readValues } from '../db.ts'
import { pathOf, SEP } from './keys.ts'
import { decodeRecord, encodeRecord, type StoredRecord } from './records.ts'
import type { MirrorStore } from './store.ts'

/** One version of a path that is no longer in the current tree. */
export interface PastVersion {
  /** Relative to the mirror root, `/`-separated. */
  path: string
  kind: 'file' | 'symlink'
  cid: string
  tsize: number
  size: number
  /** The upstream mtime the version had (what Last-Modified said while it was served). */
  mtimeMs: number
  ctimeMs: number
  ino: number
  /** Symlinks only: the target, as read. */
  target?: string
  /** Multi-chunk files indexed with `whole_file_digest`: the SHA-256 in base64. */
  sha256?: string
  /** ISO time of the first scan that saw the path. */
  firstSeen: string
  /** ISO time of the scan that indexed this version. */
  lastSynced: string
  /** First committed scan whose tree held this version at this path. */
  firstScan: number
  /** Last committed scan whose tree held it (the one before `leftScan`). */
  lastScan: number
  /** The scan that removed it from the tree. */
  leftScan: number
  /**
   * deleted: the path left the tree (or became a directory); replaced: the path holds other content
   * from `leftScan` on.
   */
  reason: 'deleted' | 'replaced'
  /**
   * Whether the bytes were on this disk when the version left (false: it was evicted). The bytes of a
   * past version are never on disk under its path any more; they are wherever its copies are.
   */
  wasPresent: boolean
}

/** Which versions `MirrorIndex.versions` lists: those that left in scans after `after`, up to `upTo`. */
export interface VersionRange {
  after?: number
  upTo?: number
}

const REASONS = ['deleted', 'replaced'] as const

function leftKey(id: number): string {
  return String(id).padStart(12, '0') // store.ts `scanKey`
}

/** The record of the version that journal entry `rec` makes leave the tree, if it makes one leave. */
export function leavingVersion(
  committed: StoredRecord | undefined,
  rec: StoredRecord,
): StoredRecord | undefined {
  if (!committed || committed.kind === 'dir' || committed.state === 'deleted') return undefined
  if (rec.state === 'deleted' || rec.kind !== committed.kind || rec.cid !== committed.cid) return committed
  return undefined
}

/**
 * The three puts (full keys on the root database, text values) that record version `old` of path key
 * `key` leaving in scan `left`, replaced by `rec`; `lastScan`: the last scan committed before `left`.
 */
export function versionPuts(
  prefixes: { v: string; vp: string; vc: string },
  key: string,
  old: StoredRecord,
  rec: StoredRecord,
  left: number,
  lastScan: number,
): [string, string][] {
  const reason = rec.state === 'deleted' || rec.kind === 'dir' ? 0 : 1
  const value = `[${left},${lastScan},${reason},${encodeRecord(old)}]`
  const l = leftKey(left)
  return [
    [`${prefixes.v}${l}${SEP}${key}`, value],
    [`${prefixes.vp}${key}${SEP}${SEP}${l}`, value],
    [`${prefixes.vc}${old.cid}${SEP}${key}${SEP}${SEP}${l}`, value],
  ]
}

function decodeVersion(path: string, v: unknown): PastVersion {
  const [leftScan, lastScan, reason, raw] = v as [number, number, number, unknown]
  const r = decodeRecord(raw)
  const out: PastVersion = {
    path,
    kind: r.kind as 'file' | 'symlink',
    cid: r.cid,
    tsize: r.tsize,
    size: r.size,
    mtimeMs: r.mtimeMs,
    ctimeMs: r.ctimeMs,
    ino: r.ino,
    firstSeen: new Date(r.firstSeen).toISOString(),
    lastSynced: new Date(r.lastSynced).toISOString(),
    firstScan: r.since ?? r.scan,
    lastScan,
    leftScan,
    reason: REASONS[reason]!,
    wasPresent: r.state === 'present',
  }
  if (r.target !== undefined) out.target = r.target
  if (r.sha256 !== undefined) out.sha256 = r.sha256
  return out
}

/** Scan id of a `vp` or `vc` key (its last 12 characters). */
function leftOf(key: string): number {
  return Number(key.slice(-12))
}

/** Versions that left in committed scans of `range`, by scan, then path (key order). */
export async function* versionsLeft(
  store: MirrorStore,
  range: VersionRange = {},
): AsyncGenerator<PastVersion> {
  await store.ready()
  const upTo = Math.min(range.upTo ?? store.last, store.last)
  const from = (range.after ?? 0) + 1
  if (from > upTo) return
  const keys: KeyRange = { gte: leftKey(from), lt: leftKey(upTo + 1) }
  for await (const page of rangePages(store.versions, keys)) {
    for (const [k, v] of page) {
      const left = Number(k.slice(0, 12))
      if (!store.visible(left)) continue
      yield decodeVersion(pathOf(k.slice(13)), v)
    }
  }
}

/** Past versions of path key `key`, oldest first. */
export async function versionsOfKey(store: MirrorStore, key: string): Promise<PastVersion[]> {
  await store.ready()
  const out: PastVersion[] = []
  const path = pathOf(key)
  for (const v of await readValues(store.versionsByPath, {
    gte: `${key}${SEP}${SEP}`,
    lt: `${key}${SEP}\x01`,
  })) {
    const version = decodeVersion(path, v)
    if (store.visible(version.leftScan)) out.push(version)
  }
  return out
}

/** Past versions holding `cid`, by path, then oldest first. */
export async function versionsOfCid(store: MirrorStore, cid: string): Promise<PastVersion[]> {
  await store.ready()
  const out: PastVersion[] = []
  for await (const page of rangePages(store.versionsByCid, { gte: `${cid}${SEP}`, lt: `${cid}\x01` })) {
    for (const [k, v] of page) {
      if (!store.visible(leftOf(k))) continue
      out.push(decodeVersion(pathOf(k.slice(cid.length + 1, -14)), v))
    }
  }
  return out
}
