/**
 * The audit's lines as text for a terminal (docs/audit.md): a table row per file with its copies
 * under it, a summary per mirror, the totals. Pure: the same lines print the same text, whether they
 * came from the database or from a daemon.
 */
import type { AuditFileLine, AuditMirrorLine, AuditTotals } from '../replicator/index.ts'
import { formatSize } from '../util/units.ts'

export const FILE_HEADER = `${'VERDICT'.padEnd(8)}${'COPIES'.padEnd(10)}${'STATE'.padEnd(10)}${'LAST CHECK'.padEnd(22)}PATH  CID`

/** `2v 1a` (+ `1l` when local copies exist): verified, announced, local (never counted). */
function counts(f: { verified: number; announced: number; local: number }): string {
  return `${f.verified}v ${f.announced}a${f.local ? ` ${f.local}l` : ''}`
}

function when(iso: string | undefined): string {
  return iso ? iso.replace(/\.\d{3}Z$/, 'Z') : '-'
}

export function formatFile(f: AuditFileLine): string {
  const head = `${(f.verdict === 'ok' ? 'ok' : 'UNDER').padEnd(8)}${counts(f).padEnd(10)}${f.state.padEnd(10)}${when(f.oldestCheck).padEnd(22)}${f.mirror}/${f.path}  ${f.cid}`
  const rows = [head]
  for (const c of f.copies) {
    const status = c.local ? `${c.status}, local: not counted` : c.status
    rows.push(
      `    ${c.holder}  ${c.kind}/${c.how}  ${status}  ${c.scope}  checked ${when(c.checkedAt)}${c.error ? `  error: ${c.error}` : ''}`,
    )
    const d = c.detail
    if (c.kind === 'filecoin' && d?.dataSetId !== undefined)
      rows.push(
        `      provider ${d.provider ?? '-'}  data set ${d.dataSetId}  piece ${d.pieceId ?? '-'} ${d.pieceCid ?? ''}${d.parts ? ` (${d.parts} parts)` : ''}  last proof ${when(d.lastProven as string | undefined)}  next proof due ${when(d.nextProofDue as string | undefined)}`,
      )
  }
  if (f.shortfall) rows.push(`    short: ${f.shortfall}`)
  if (f.queue) rows.push(`    queue: ${f.queue.state}${f.queue.reason ? `: ${f.queue.reason}` : ''}`)
  return rows.join('\n')
}

const NFROM: Record<AuditMirrorLine['nFrom'], string> = {
  flag: 'from -n',
  mirror: "from the mirror's replication_n",
  config: 'from [replication] n',
  default: 'the default: the config sets no [replication] n',
}

export function formatMirror(m: AuditMirrorLine): string {
  const byVerified = Object.keys(m.byVerified)
    .sort((a, b) => Number(a) - Number(b))
    .map((k) => `${k}: ${m.byVerified[k]}`)
    .join(', ')
  const rows = [
    `mirror ${m.mirror}: n = ${m.n} (${NFROM[m.nFrom]})`,
    `  root          ${m.rootCid ?? '-'}${m.scan !== undefined ? ` (scan ${m.scan}, ${when(m.lastScan)})` : ''}`,
    `  files         ${m.states.present + m.states.evicted} (${formatSize(m.bytes)}): ${m.states.present} present, ${m.states.evicted} evicted; ${m.states.deleted} deleted`,
    `  meet n        ${m.ok}; under ${m.under} (${formatSize(m.bytesUnder)} under-replicated)`,
    `  by verified   ${byVerified || '-'}`,
    `  oldest check  ${when(m.oldestCheck)}`,
    `  queue         ${m.queue ? `${m.queue.state}${m.queue.reason ? `: ${m.queue.reason}` : ''} (last check ${when(m.queue.lastCheck)}, next ${when(m.queue.nextCheck)})` : 'not tracked by a replicator'}`,
  ]
  if (m.archive)
    rows.push(
      `  archive       ${m.archive.files} files (${formatSize(m.archive.bytes)}) deleted or replaced: ${m.archive.ok} meet n; under ${m.archive.under} (${formatSize(m.archive.bytesUnder)})`,
    )
  if (m.provide)
    rows.push(
      `  provide       ${m.provide.roots} roots against ${m.provide.capacity} per reprovide cycle${m.provide.exceeded ? ': EXCEEDED' : ''}`,
    )
  return rows.join('\n')
}

export function formatTotals(t: AuditTotals): string {
  return [
    `total: ${t.mirrors} mirror${t.mirrors === 1 ? '' : 's'}, ${t.files} files, ${t.ok} meet n, ${t.under} under (${formatSize(t.bytesUnder)})`,
    ...(t.archive
      ? [
          `archive: ${t.archive.files} files, ${t.archive.ok} meet n, ${t.archive.under} under (${formatSize(t.archive.bytesUnder)})`,
        ]
      : []),
    `listed: ${t.listed} files, ${t.listedUnder} under n: ${t.verdict === 'ok' ? 'all listed files meet n' : 'some listed files are below n'}`,
  ].join('\n')
}
