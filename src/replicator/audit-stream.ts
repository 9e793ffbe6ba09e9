/**
 * The audit as one stream of lines (docs/audit.md): a header, each listed file, each mirror's summary
 * after its files, then the totals. The daemon's `GET /replication/audit` sends these lines as NDJSON
 * and the offline CLI makes them itself from the database, so both print the same.
 */

import { canonicalCid } from '../cid/index.ts'
import type { Database } from '../db.ts'
import {
  checkMirrorName,
  checkRelPath,
  listMirrors,
  MirrorNotIndexedError,
  openMirrorIndex,
} from '../index/index.ts'
import { AUDIT_SCHEMA, type AuditFile, type AuditMirror, auditMirror } from './audit.ts'
import type { ReplicationPolicy } from './policy.ts'

/** Where a mirror's n came from: `-n`/`n=`, the config (`[replication]` or the mirror's override), or the default 1. */
export type PolicySource = 'flag' | 'config' | 'mirror' | 'default'

export interface AuditQuery {
  mirror?: string
  /** Relative to the mirror root; needs `mirror`. */
  path?: string
  cid?: string
  under?: number
  /** Also audit deleted files and past versions (`--archive`): listed, and counted toward the verdict. */
  archive?: boolean
}

export interface AuditHeader {
  type: 'audit'
  schema: typeof AUDIT_SCHEMA
  filter: AuditQuery
}
export type AuditFileLine = { type: 'file' } & AuditFile
export type AuditMirrorLine = { type: 'mirror'; nFrom: PolicySource } & AuditMirror
export interface AuditProgressLine {
  type: 'progress'
  mirror: string
  done: number
  total?: number
}
export interface AuditTotals {
  type: 'totals'
  mirrors: number
  /** Files of the audited mirrors (present and evicted; deleted ones are not audited). */
  files: number
  ok: number
  under: number
  bytesUnder: number
  /** With `archive`: deleted and archived files of the audited mirrors, as the mirrors' `archive`. */
  archive?: { files: number; ok: number; under: number; bytesUnder: number }
  /** Files that passed the filter and were listed; `listedUnder` of them are below their n. */
  listed: number
  listedUnder: number
  /** `ok` when every listed file meets its n: the CLI's exit 0, else 1. */
  verdict: 'ok' | 'under'
}
export type AuditLine = AuditHeader | AuditFileLine | AuditMirrorLine | AuditProgressLine | AuditTotals

export interface AuditStreamOptions {
  policyOf: (mirror: string) => { policy: ReplicationPolicy; from: PolicySource }
  provideCapacity?: number
  /** Send `progress` lines (every 1000 files of a mirror). */
  progress?: boolean
  now?: number
}

/** Checks the query and canonicalizes its CID; throws the index's 4xx errors for bad input. */
export function checkAuditQuery(q: AuditQuery): AuditQuery {
  const out: AuditQuery = {}
  if (q.mirror !== undefined) out.mirror = checkMirrorName(q.mirror)
  if (q.path !== undefined) {
    const p = checkRelPath(q.path)
    if (p !== '') out.path = p
  }
  if (q.cid !== undefined) out.cid = canonicalCid(q.cid)
  if (q.under !== undefined) out.under = q.under
  if (q.archive) out.archive = true
  return out
}

/**
 * The audit's lines. Input is checked and the mirrors looked up before the header is given, so a
 * caller that awaits the first line learns of a bad query before it starts answering.
 */
export async function* auditStream(
  db: Database,
  query: AuditQuery,
  opts: AuditStreamOptions,
): AsyncGenerator<AuditLine> {
  const q = checkAuditQuery(query)
  const all = await listMirrors(db)
  const mirrors = q.mirror === undefined ? all : all.filter((m) => m.mirror === q.mirror)
  if (q.mirror !== undefined && mirrors.length === 0) throw new MirrorNotIndexedError(q.mirror)
  yield { type: 'audit', schema: AUDIT_SCHEMA, filter: q }
  const totals: AuditTotals = {
    type: 'totals',
    mirrors: 0,
    files: 0,
    ok: 0,
    under: 0,
    bytesUnder: 0,
    listed: 0,
    listedUnder: 0,
    verdict: 'ok',
  }
  if (q.archive) totals.archive = { files: 0, ok: 0, under: 0, bytesUnder: 0 }
  for (const m of mirrors) {
    const { policy, from } = opts.policyOf(m.mirror)
    // auditMirror reports through callbacks; lines wait here until the consumer takes them.
    const pending: AuditLine[] = []
    let wake: (() => void) | undefined
    const push = (l: AuditLine): void => {
      pending.push(l)
      wake?.()
    }
    let finished = false
    let failed: unknown
    let summary: AuditMirror | undefined
    const filter = {
      ...(q.path !== undefined ? { path: q.path } : {}),
      ...(q.cid !== undefined ? { cid: q.cid } : {}),
      ...(q.under !== undefined ? { under: q.under } : {}),
      ...(q.archive ? { archive: true } : {}),
    }
    const run = auditMirror(db, openMirrorIndex(db, m.mirror, m.root), policy, {
      filter,
      onFile: (f) => {
        totals.listed++
        if (f.verdict === 'under') totals.listedUnder++
        push({ type: 'file', ...f })
      },
      ...(opts.progress
        ? {
            onProgress: (done: number, total?: number) =>
              push({ type: 'progress', mirror: m.mirror, done, ...(total !== undefined ? { total } : {}) }),
          }
        : {}),
      ...(opts.provideCapacity !== undefined ? { provideCapacity: opts.provideCapacity } : {}),
      ...(opts.now !== undefined ? { now: opts.now } : {}),
    }).then(
      (s) => {
        summary = s
        finished = true
        wake?.()
      },
      (err: unknown) => {
        failed = err
        finished = true
        wake?.()
      },
    )
    for (;;) {
      while (pending.length > 0) yield pending.shift() as AuditLine
      if (finished) break
      await new Promise<void>((resolve) => {
        wake = resolve
      })
      wake = undefined
    }
    await run
    if (failed !== undefined) throw failed
    const s = summary as AuditMirror
    totals.mirrors++
    totals.files += s.states.present + s.states.evicted
    totals.ok += s.ok
    totals.under += s.under
    totals.bytesUnder += s.bytesUnder
    if (totals.archive && s.archive) {
      totals.archive.files += s.archive.files
      totals.archive.ok += s.archive.ok
      totals.archive.under += s.archive.under
      totals.archive.bytesUnder += s.archive.bytesUnder
    }
    yield { type: 'mirror', nFrom: from, ...s }
  }
  if (totals.listedUnder > 0) totals.verdict = 'under'
  yield totals
}
