/**
 * Directory listings from the index: HTML in the shape of nginx's autoindex (the `<pre>` of links, the
 * 50-column names, `dd-Mon-yyyy HH:MM` dates in UTC, sizes right-aligned, directories first), with
 * each file's CID after its size and the columns sortable (`?C=N|M|S&O=A|D`, Apache's and fancyindex's
 * parameters), and JSON in nginx's `autoindex_format json` shape (`name`, `type`, `mtime`, `size`)
 * with a `cid`. Evicted files are listed as they were; deleted ones are not. Symlinks are shown as
 * what they lead to, and only when that is inside the mirror.
 */
import { type Dirent, readdirSync, realpathSync, statSync } from 'node:fs'
import type { IncomingMessage, ServerResponse } from 'node:http'
import { join, sep } from 'node:path'
import type { IndexReader, PathRecord } from '../index/index.ts'
import { encodeSegment } from './request-path.ts'

export interface ListEntry {
  name: string
  dir: boolean
  size: number
  /** NaN when unknown (a directory of a past root, read from its DAG): no date is shown. */
  mtimeMs: number
  cid: string | undefined
}

/** Entries past this many are left out of one listing (a line says so). */
export const MAX_LISTING = 100_000

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec']

function nginxDate(ms: number): string {
  const d = new Date(ms)
  const p = (n: number): string => String(n).padStart(2, '0')
  return `${p(d.getUTCDate())}-${MONTHS[d.getUTCMonth()]}-${d.getUTCFullYear()} ${p(d.getUTCHours())}:${p(d.getUTCMinutes())}`
}

function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`)
}

/** A symlink's target as an entry, when it resolves inside `realRoot`. */
function followed(
  abs: string,
  realRoot: string,
): { dir: boolean; size: number; mtimeMs: number } | undefined {
  try {
    const real = realpathSync.native(abs)
    if (real !== realRoot && !real.startsWith(realRoot + sep)) return undefined
    const st = statSync(real)
    if (!st.isFile() && !st.isDirectory()) return undefined
    return { dir: st.isDirectory(), size: st.isFile() ? st.size : 0, mtimeMs: st.mtimeMs }
  } catch {
    return undefined
  }
}

/** The entries of directory `rel` (real path `abs`) of `mirror`: the index's, or the disk's when it has none. */
export async function listEntries(
  reader: IndexReader,
  mirror: string,
  rel: string,
  abs: string,
  realRoot: string,
): Promise<{ entries: ListEntry[]; truncated: boolean }> {
  let indexed: PathRecord[] | undefined
  try {
    const dir = await reader.record(mirror, rel)
    if (dir?.kind === 'dir' && dir.state === 'present') {
      indexed = []
      let after: string | undefined
      for (;;) {
        const page = await reader.children(mirror, rel, { ...(after ? { after } : {}), limit: 10_000 })
        indexed.push(...page.records)
        if (page.next === null || indexed.length >= MAX_LISTING) break
        after = page.next
      }
    }
  } catch {
    indexed = undefined
  }
  const entries: ListEntry[] = []
  if (indexed !== undefined) {
    for (const r of indexed) {
      if (r.state === 'deleted') continue
      const name = r.path.slice(r.path.lastIndexOf('/') + 1)
      if (r.kind === 'symlink') {
        const t = followed(join(abs, name), realRoot)
        if (t) entries.push({ name, ...t, cid: undefined })
        continue
      }
      entries.push({ name, dir: r.kind === 'dir', size: r.size, mtimeMs: r.mtimeMs, cid: r.cid })
    }
    return { entries: entries.slice(0, MAX_LISTING), truncated: indexed.length >= MAX_LISTING }
  }
  // Not indexed yet (a new directory, a mirror before its first scan): the disk, without CIDs.
  let dirents: Dirent[]
  try {
    dirents = readdirSync(abs, { withFileTypes: true })
  } catch {
    dirents = []
  }
  for (const d of dirents.slice(0, MAX_LISTING)) {
    const t = followed(join(abs, d.name), realRoot)
    if (t) entries.push({ name: d.name, ...t, cid: undefined })
  }
  return { entries, truncated: dirents.length > MAX_LISTING }
}

type SortKey = 'N' | 'M' | 'S'

/** `?C=` and `?O=` of a listing's query (defaults: name, ascending; nginx's order, directories first). */
function sortOf(query: string): { key: SortKey; desc: boolean } {
  const q = new URLSearchParams(query.replaceAll(';', '&'))
  const c = q.get('C')
  const key: SortKey = c === 'M' || c === 'S' ? c : 'N'
  return { key, desc: q.get('O') === 'D' }
}

function byteOrder(a: string, b: string): number {
  return a === b ? 0 : Buffer.compare(Buffer.from(a), Buffer.from(b))
}

function sortEntries(entries: ListEntry[], s: { key: SortKey; desc: boolean }): ListEntry[] {
  const dir = s.desc ? -1 : 1
  return entries.sort((a, b) => {
    if (a.dir !== b.dir) return a.dir ? -1 : 1
    let c = 0
    if (s.key === 'M') c = a.mtimeMs - b.mtimeMs
    else if (s.key === 'S') c = a.size - b.size
    if (c === 0) c = byteOrder(a.name, b.name)
    return c * dir
  })
}

function listingHtml(
  urlPath: string,
  entries: ListEntry[],
  s: { key: SortKey; desc: boolean },
  truncated: boolean,
): string {
  const title = escapeHtml(urlPath)
  const sortLink = (key: SortKey, label: string): string => {
    const order = s.key === key && !s.desc ? 'D' : 'A'
    return `<a href="?C=${key}&amp;O=${order}">${label}</a>`
  }
  const lines = [
    '<html>',
    `<head><title>Index of ${title}</title></head>`,
    '<body>',
    `<h1>Index of ${title}</h1><hr><pre>${sortLink('N', 'Name')}${' '.repeat(47)}${sortLink('M', 'Last modified')}${' '.repeat(6)}${sortLink('S', 'Size')}  CID`,
  ]
  const rows: string[] = ['<a href="../">../</a>']
  for (const e of entries) {
    const shown = e.dir ? `${e.name}/` : e.name
    const text = [...shown].length > 50 ? `${[...shown].slice(0, 47).join('')}..>` : shown
    const href = encodeSegment(e.name) + (e.dir ? '/' : '')
    const pad = ' '.repeat(Math.max(1, 51 - [...text].length))
    const size = e.dir ? '-' : String(e.size)
    // A DAG listing (a past root) knows no dates: a dash in the date's width.
    const date = Number.isNaN(e.mtimeMs) ? '-'.padEnd(17) : nginxDate(e.mtimeMs)
    rows.push(
      `<a href="${escapeHtml(href)}">${escapeHtml(text)}</a>${pad}${date} ${size.padStart(19)}${e.cid ? `  ${e.cid}` : ''}`,
    )
  }
  lines.push(rows.join('\n'))
  if (truncated) lines.push(`(only the first ${MAX_LISTING} entries are listed)`)
  lines.push('</pre><hr></body>', '</html>', '')
  return lines.join('\n')
}

/** nginx's `autoindex_format json`, with each entry's CID. */
function listingJson(entries: ListEntry[]): string {
  return JSON.stringify(
    entries.map((e) => {
      const o: Record<string, string | number> = { name: e.name, type: e.dir ? 'directory' : 'file' }
      if (!Number.isNaN(e.mtimeMs)) o.mtime = new Date(e.mtimeMs).toUTCString()
      if (!e.dir) o.size = e.size
      if (e.cid) o.cid = e.cid
      return o
    }),
  )
}

/**
 * Answers 200 with the listing of `urlPath` (sorted by the query's `C`/`O`): JSON when the query says
 * `format=json` or the Accept asks for it, else HTML. Returns the body bytes sent (0 for a HEAD).
 */
export function sendListing(
  req: IncomingMessage,
  res: ServerResponse,
  urlPath: string,
  entries: ListEntry[],
  truncated: boolean,
  query: string,
): number {
  const sort = sortOf(query)
  sortEntries(entries, sort)
  const json =
    new URLSearchParams(query).get('format') === 'json' ||
    (req.headers.accept?.includes('application/json') ?? false)
  const body = json ? listingJson(entries) : listingHtml(urlPath, entries, sort, truncated)
  res.writeHead(200, [
    'Content-Type',
    json ? 'application/json' : 'text/html; charset=utf-8',
    'Content-Length',
    String(Buffer.byteLength(body)),
    'Vary',
    'Accept',
  ])
  res.end(req.method === 'HEAD' ? undefined : body)
  return req.method === 'HEAD' ? 0 : Buffer.byteLength(body)
}
