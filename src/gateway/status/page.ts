/**
 * The status page as one HTML document: plain HTML and a small stylesheet inline, no script, no build
 * step. It refreshes itself every 30 s; everything on it is in `/_status.json` too.
 */
import type { FetchBackFigures } from '../fetch-back/metrics.ts'
import type { JanitorFigures, MirrorStatus, RecentRequest, StatusData } from './data.ts'

const ESCAPES: Record<string, string> = {
  '&': '&amp;',
  '<': '&lt;',
  '>': '&gt;',
  '"': '&quot;',
  "'": '&#39;',
}

function esc(s: string | number): string {
  return String(s).replace(/[&<>"']/g, (c) => ESCAPES[c]!)
}

/** 1536 -> "1.5 KiB". */
export function humanBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB']
  let v = n
  let u = 0
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024
    u++
  }
  return u === 0 ? `${v} B` : `${v.toFixed(v < 100 ? 1 : 0)} ${units[u]}`
}

/** How long before `now` (or after, for a future time): "5 min ago", "in 2 h". */
export function relative(ms: number, now: number): string {
  const d = Math.round((now - ms) / 1000)
  const a = Math.abs(d)
  const span =
    a < 60
      ? `${a} s`
      : a < 3600
        ? `${Math.round(a / 60)} min`
        : a < 172_800
          ? `${Math.round(a / 3600)} h`
          : `${Math.round(a / 86_400)} d`
  return d >= 0 ? `${span} ago` : `in ${span}`
}

function when(ms: number | string | null | undefined, now: number): string {
  if (ms === null || ms === undefined || ms === 0) return '<span class="dim">never</span>'
  const t = typeof ms === 'string' ? Date.parse(ms) : ms
  if (!Number.isFinite(t)) return '<span class="dim">unknown</span>'
  const isoText = new Date(t).toISOString()
  return `<time datetime="${isoText}" title="${isoText}">${esc(relative(t, now))}</time>`
}

const STATUS_CLASS: Record<string, string> = {
  success: 'ok',
  failed: 'bad',
  syncing: 'busy',
  'pre-syncing': 'busy',
  paused: 'dim',
  disabled: 'dim',
  none: 'dim',
}

function mirrorRow(m: MirrorStatus, now: number): string {
  const job = m.job
  const status = job
    ? `<span class="badge ${STATUS_CLASS[job.status] ?? 'dim'}">${esc(job.status)}</span>`
    : '<span class="dim">no job</span>'
  const error = job?.errorMsg ? `<div class="err">${esc(job.errorMsg)}</div>` : ''
  const idx = m.index
  const root = idx?.rootCid
    ? `<a href="/ipfs/${esc(idx.rootCid)}?format=car&amp;dag-scope=block"><code>${esc(idx.rootCid)}</code></a>`
    : '<span class="dim">not indexed</span>'
  const r = m.replication
  let repl = '<span class="dim">no replication</span>'
  if (r) {
    const copies = Object.entries(r.byVerified)
      .sort(([a], [b]) => Number(a) - Number(b))
      .map(
        ([k, v]) => `${esc(v)} ${v === 1 ? 'file' : 'files'} with ${esc(k)} ${k === '1' ? 'copy' : 'copies'}`,
      )
      .join(', ')
    const health =
      r.under === 0
        ? `<span class="badge ok">n = ${esc(r.n)} met</span>`
        : `<span class="badge bad">${esc(r.under)} under n = ${esc(r.n)}</span>`
    repl =
      `${health}<div class="small">${esc(r.ok)} of ${esc(r.files)} files ok; ${esc(humanBytes(r.bytesUnder))} under-replicated</div>` +
      (copies ? `<div class="small">verified: ${copies}</div>` : '') +
      (r.queue
        ? `<div class="small">tree: ${esc(r.queue.state)}${r.queue.reason ? ` (${esc(r.queue.reason)})` : ''}</div>`
        : '') +
      (r.oldestCheck ? `<div class="small">oldest check ${when(r.oldestCheck, now)}</div>` : '')
  }
  return `<tr>
<th scope="row">${esc(m.name)}${job?.upstream ? `<div class="small dim">${esc(job.upstream)}</div>` : ''}</th>
<td>${status}${error}</td>
<td>${when(job?.lastEnded, now)}${job?.nextSchedule ? `<div class="small">next ${when(job.nextSchedule, now)}</div>` : ''}</td>
<td class="cid">${root}${idx?.lastScan ? `<div class="small">indexed ${when(idx.lastScan, now)} · <a href="${esc(idx.roots)}">past roots</a></div>` : ''}</td>
<td class="num">${idx ? esc(idx.files.toLocaleString('en')) : '–'}</td>
<td class="num">${idx ? esc(humanBytes(idx.bytes)) : '–'}</td>
<td>${repl}</td>
</tr>`
}

function requestRow(r: RecentRequest, now: number): string {
  const cls = r.status >= 500 ? 'bad' : r.status >= 400 ? 'warn' : 'ok'
  return `<tr><td>${when(r.time, now)}</td><td>${esc(r.method)}</td><td class="path"><code>${esc(r.path)}</code></td><td><span class="badge ${cls}">${esc(r.status)}</span></td><td class="num">${esc(humanBytes(r.bytes))}</td><td class="num">${esc(r.durationMs.toFixed(1))} ms</td></tr>`
}

/** The janitor's part: evictions and bytes freed since the daemon started, and its last pass. */
function janitorPart(j: JanitorFigures | null, now: number): string {
  if (!j) return ''
  const last = j.lastRun
    ? ` · last pass ${when(j.lastRun.at, now)}${j.lastRun.dryRun ? ' (dry run)' : ''}: ${esc(j.lastRun.eligible)} eligible, ${esc(j.lastRun.evicted)} evicted, ${esc(humanBytes(j.lastRun.bytesFreed))} freed`
    : ' · no pass yet'
  return `<h2>Cache janitor</h2>
<p class="small">${esc(j.evictions)} file${j.evictions === 1 ? '' : 's'} evicted, ${esc(humanBytes(j.bytesFreed))} freed in ${esc(j.runs)} pass${j.runs === 1 ? '' : 'es'} since the daemon started${j.failures ? `, <span class="bad">${esc(j.failures)} failed</span>` : ''}${last}</p>
`
}

/** The fetch-back's part: fetches running and waiting, then one row per source that was tried. */
function fetchBackPart(f: FetchBackFigures | null): string {
  if (!f) return ''
  const rows = f.sources.length
    ? f.sources
        .map(
          (s) =>
            `<tr><td><code>${esc(s.source)}</code></td><td>${esc(s.kind)}</td><td class="num">${esc(humanBytes(s.bytes))}</td><td class="num">${esc(s.fetches)}</td><td class="num">${s.failures ? `<span class="bad">${esc(s.failures)}</span>` : '0'}</td><td class="num">${s.meanTtfbMs === undefined ? '–' : `${esc(s.meanTtfbMs.toFixed(1))} ms`}</td><td class="err">${esc(s.lastError ?? '')}</td></tr>`,
        )
        .join('\n')
    : '<tr><td colspan="7" class="dim">No evicted file fetched back yet.</td></tr>'
  return `<h2>Fetch-back</h2>
<p class="small">${esc(f.active)} running, ${esc(f.queued)} waiting (${esc(humanBytes(f.bytesInFlight))} in flight) · ${esc(f.completed)} cached again, ${esc(f.failed)} failed, ${esc(f.joined)} requests joined a running fetch</p>
${
  f.pastCache
    ? `<p class="small">Past fetches kept: ${esc(f.pastCache.entries)} files, ${esc(humanBytes(f.pastCache.bytes))} of ${esc(humanBytes(f.pastCache.maxBytes))} · ${esc(f.pastCache.hits)} downloads read from them, ${esc(f.pastCache.evicted)} evicted</p>
`
    : ''
}<table>
<thead><tr><th>Source</th><th>Kind</th><th class="num">Bytes</th><th class="num">Fetches</th><th class="num">Failures</th><th class="num">First byte</th><th>Last error</th></tr></thead>
<tbody>
${rows}
</tbody>
</table>
`
}

const STYLE = `
:root { color-scheme: light dark; --fg: #1d232a; --bg: #fff; --line: #d8dee4; --dim: #6a737d; --ok: #1a7f37; --bad: #cf222e; --busy: #0969da; --warn: #9a6700; }
@media (prefers-color-scheme: dark) { :root { --fg: #e6edf3; --bg: #0d1117; --line: #30363d; --dim: #8b949e; --ok: #3fb950; --bad: #f85149; --busy: #58a6ff; --warn: #d29922; } }
body { font: 15px/1.45 system-ui, sans-serif; color: var(--fg); background: var(--bg); margin: 2rem auto; max-width: 78rem; padding: 0 1rem; }
h1 { font-size: 1.5rem; margin: 0 0 .25rem; } h2 { font-size: 1.15rem; margin: 2rem 0 .5rem; }
table { border-collapse: collapse; width: 100%; } th, td { text-align: left; vertical-align: top; padding: .45rem .6rem; border-bottom: 1px solid var(--line); }
thead th { font-size: .8rem; text-transform: uppercase; letter-spacing: .04em; color: var(--dim); }
.num { text-align: right; white-space: nowrap; } .cid code { font-size: .8rem; word-break: break-all; } .path code { word-break: break-all; }
.small { font-size: .82rem; } .dim { color: var(--dim); } .err { color: var(--bad); font-size: .85rem; }
.badge { display: inline-block; padding: 0 .45rem; border-radius: .6rem; border: 1px solid currentColor; font-size: .8rem; }
.ok { color: var(--ok); } .bad { color: var(--bad); } .busy { color: var(--busy); } .warn { color: var(--warn); }
a { color: var(--busy); }
`

/** The last syncs' roots of each mirror, each a link to its tree. */
function rootsPart(mirrors: MirrorStatus[], now: number): string {
  const rows = mirrors.flatMap((m) =>
    (m.index?.pastRoots ?? []).map(
      (r) =>
        `<tr><td>${esc(m.name)}</td><td class="num">${esc(r.scan)}</td><td>${when(r.ended, now)}</td><td class="cid"><code>${esc(r.rootCid)}</code></td><td><a href="/ipfs/${esc(r.rootCid)}/">tree</a></td></tr>`,
    ),
  )
  if (rows.length === 0) return ''
  return `<h2>Past roots</h2>
<p class="small dim">Each sync's tree stays browsable and downloadable at its root; every root of a mirror: <code>/_roots/&lt;mirror&gt;</code>. Files deleted upstream: <code>/_deleted/</code>.</p>
<table>
<thead><tr><th>Mirror</th><th class="num">Scan</th><th>Finished</th><th>Root CID</th><th></th></tr></thead>
<tbody>
${rows.join('\n')}
</tbody>
</table>
`
}

export function statusPage(data: StatusData, title: string): string {
  const now = Date.parse(data.generated)
  const mirrors = data.mirrors.length
    ? data.mirrors.map((m) => mirrorRow(m, now)).join('\n')
    : '<tr><td colspan="7" class="dim">No mirrors configured or indexed.</td></tr>'
  const recent = data.recent.length
    ? data.recent.map((r) => requestRow(r, now)).join('\n')
    : '<tr><td colspan="6" class="dim">No requests yet.</td></tr>'
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="refresh" content="30">
<title>${esc(title)}</title>
<style>${STYLE}</style>
</head>
<body>
<h1>${esc(title)}</h1>
<p class="small dim">As of <time datetime="${esc(data.generated)}">${esc(data.generated)}</time> · <a href="/_status.json">JSON</a></p>
<h2>Mirrors</h2>
<table>
<thead><tr><th>Mirror</th><th>Sync</th><th>Last sync</th><th>Root CID</th><th class="num">Files</th><th class="num">Size</th><th>Replication</th></tr></thead>
<tbody>
${mirrors}
</tbody>
</table>
${janitorPart(data.janitor, now)}${fetchBackPart(data.fetchBack)}<h2>Recent requests</h2>
<table>
<thead><tr><th>When</th><th>Method</th><th>Path</th><th>Status</th><th class="num">Bytes</th><th class="num">Time</th></tr></thead>
<tbody>
${recent}
</tbody>
</table>
${rootsPart(data.mirrors, now)}</body>
</html>
`
}
