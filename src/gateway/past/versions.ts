/**
 * The index's past versions (src/index/versions.ts) as the past routes read them: by CID, and the file
 * at a path in a given scan's tree, for the mirrors this gateway serves.
 */
import type { MirrorIndex, PastVersion, PathRecord } from '../../index/index.ts'
import type { PastEntry, PastFile, PastVersions } from './routes.ts'

type Versioned = { path: string; kind: string; cid: string; size: number; mtimeMs: number; sha256?: string }

function entryOf(mirror: string, v: PathRecord | PastVersion): PastEntry | undefined {
  if (v.kind !== 'file' && v.kind !== 'symlink') return undefined
  return {
    mirror,
    path: v.path,
    kind: v.kind,
    cid: v.cid,
    size: v.size,
    mtimeMs: v.mtimeMs,
    ...(v.sha256 !== undefined ? { sha256: v.sha256 } : {}),
    ...(v.target !== undefined ? { target: v.target } : {}),
    ...('leftScan' in v ? { left: { scan: v.leftScan, lastScan: v.lastScan, reason: v.reason } } : {}),
  }
}

function fileOf(mirror: string, v: Versioned): PastFile | undefined {
  if (v.kind !== 'file') return undefined
  return {
    mirror,
    path: v.path,
    cid: v.cid,
    size: v.size,
    mtimeMs: v.mtimeMs,
    ...(v.sha256 !== undefined ? { sha256: v.sha256 } : {}),
  }
}

/** Past versions through each mirror's index (`indexOf` gives undefined for a mirror not served). */
export function pastVersionsOf(indexOf: (mirror: string) => MirrorIndex | undefined): PastVersions {
  return {
    async byCid(mirror, cid) {
      const idx = indexOf(mirror)
      if (!idx) return []
      const out: PastFile[] = []
      for (const v of await idx.versionsByCid(cid)) {
        const f = fileOf(mirror, v)
        if (f) out.push(f)
      }
      return out
    },
    async at(mirror, path, scan) {
      const idx = indexOf(mirror)
      const v = idx ? await idx.recordAt(path, scan) : undefined
      return v ? fileOf(mirror, v) : undefined
    },
    async entryAt(mirror, path, scan) {
      const idx = indexOf(mirror)
      const v = idx ? await idx.recordAt(path, scan) : undefined
      return v ? entryOf(mirror, v) : undefined
    },
    async symlinksOf(mirror, path) {
      const idx = indexOf(mirror)
      const out: PastEntry[] = []
      for (const v of idx ? await idx.versionsOf(path) : []) {
        const e = v.kind === 'symlink' ? entryOf(mirror, v) : undefined
        if (e) out.push(e)
      }
      return out
    },
  }
}
