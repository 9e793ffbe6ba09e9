/**
 * The audit of a 100,000-file mirror (records and copies) against a bare scan of its index (every
 * record read, no copies looked up), in one process over one warm LevelDB: the audit's cost per file
 * beyond reading the records. Also the CLI's `audit --json` end to end, as users run it.
 *
 * Copies: two holders of the whole tree (tree pins, as the default Kubo and Cluster targets make) and
 * one holder of every file (a per-file pin), so each file's judgement reads a real copy record.
 */
import { spawnSync } from 'node:child_process'
import { existsSync, writeFileSync } from 'node:fs'
import { openDatabase } from '../../src/db.ts'
import { type CopyRecord, CopyStore, openMirrorIndex } from '../../src/index/index.ts'
import { auditStream } from '../../src/replicator/index.ts'

export interface AuditFigures {
  files: number
  auditSeconds: number
  scanSeconds: number
  cliSeconds: number
}

const MIRROR = 'bench'

function copy(cid: string, holder: string, over: Partial<CopyRecord>): CopyRecord {
  const now = Date.now()
  return {
    cid,
    holder,
    kind: 'ipfs-node',
    how: 'pinned',
    status: 'verified',
    scope: 'entity',
    local: false,
    checkedAt: now,
    since: now,
    ...over,
  }
}

/** Indexes `tree` into `db` once (cached beside it) and records its copies. */
async function prepare(cli: string, tree: string, db: string): Promise<void> {
  const done = `${db}.done`
  if (existsSync(done)) return
  const r = spawnSync(
    process.execPath,
    [cli, 'index', tree, '--db', db, '--name', MIRROR, '--progress', 'none'],
    {
      stdio: ['ignore', 'ignore', 'inherit'],
    },
  )
  if (r.status !== 0) throw new Error(`cidmirror index ${tree} exited ${r.status}`)
  const d = await openDatabase(db)
  try {
    const idx = openMirrorIndex(d, MIRROR, tree)
    const last = await idx.lastScan()
    if (!last) throw new Error('bench: the audit tree has no committed scan')
    const copies = new CopyStore(d)
    for (const holder of ['kubo:TreeHolderB', 'kubo:TreeHolderC'])
      await copies.put(copy(last.rootCid, holder, { scope: 'tree', mirror: MIRROR, scan: last.id }))
    const puts: Promise<void>[] = []
    for await (const rec of idx.records()) {
      if (rec.kind === 'dir') continue
      puts.push(
        copies.put(
          copy(rec.cid, 'psa:https://pins.example', {
            kind: 'pinning-service',
            how: 'pinning-service',
            status: 'announced',
          }),
        ),
      )
      if (puts.length >= 1000) await Promise.all(puts.splice(0))
    }
    await Promise.all(puts)
  } finally {
    await d.close()
  }
  writeFileSync(done, 'ok\n')
}

function seconds(start: bigint): number {
  return Number(process.hrtime.bigint() - start) / 1e9
}

export async function benchAudit(opts: {
  cli: string
  tree: string
  db: string
  rounds: number
}): Promise<AuditFigures> {
  await prepare(opts.cli, opts.tree, opts.db)
  let auditSeconds = Number.POSITIVE_INFINITY
  let scanSeconds = Number.POSITIVE_INFINITY
  let files = 0
  const d = await openDatabase(opts.db)
  try {
    const idx = openMirrorIndex(d, MIRROR, opts.tree)
    for (let round = 0; round < opts.rounds; round++) {
      let t = process.hrtime.bigint()
      let scanned = 0
      for await (const rec of idx.records({ deleted: true })) if (rec.kind !== 'dir') scanned++
      scanSeconds = Math.min(scanSeconds, seconds(t))
      t = process.hrtime.bigint()
      let listed = 0
      let under = 0
      for await (const l of auditStream(
        d,
        { mirror: MIRROR },
        { policyOf: () => ({ policy: { n: 2 }, from: 'flag' }) },
      )) {
        if (l.type === 'file') listed++
        if (l.type === 'totals') under = l.under
      }
      auditSeconds = Math.min(auditSeconds, seconds(t))
      if (listed !== scanned || under !== 0)
        throw new Error(`bench: the audit listed ${listed} files (${under} under n) of ${scanned} records`)
      files = scanned
    }
  } finally {
    await d.close()
  }
  let cliSeconds = Number.POSITIVE_INFINITY
  for (let round = 0; round < opts.rounds; round++) {
    const t = process.hrtime.bigint()
    const r = spawnSync(process.execPath, [opts.cli, 'audit', '--db', opts.db, '--json', '-n', '2'], {
      stdio: ['ignore', 'ignore', 'pipe'],
      maxBuffer: 1 << 26,
    })
    if (r.status !== 0) throw new Error(`cidmirror audit exited ${r.status}: ${r.stderr}`)
    cliSeconds = Math.min(cliSeconds, seconds(t))
  }
  return { files, auditSeconds, scanSeconds, cliSeconds }
}
