/**
 * A Metalink 4 document (RFC 5854) for one file: its size, its SHA-256 where the index knows it (a
 * single-chunk file's CID, or the record's `sha256` for a larger one), and the URLs that serve the same bytes: this gateway first, then sibling
 * mirrors and the copies' retrieval URLs. Download managers (aria2c `--metalink-file`, wget2) fetch
 * from several at once and check the hash.
 */
import { sha256HexOf } from './integrity.ts'
import type { FileMeta } from './mirror-files.ts'

function xml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`)
}

export function metalinkOf(meta: FileMeta, selfUrl: string): string {
  const name = meta.rel.slice(meta.rel.lastIndexOf('/') + 1)
  const hash = meta.cid !== undefined ? sha256HexOf(meta.cid, meta.record?.sha256) : undefined
  const urls = [selfUrl, ...meta.duplicates]
  return [
    '<?xml version="1.0" encoding="UTF-8"?>',
    '<metalink xmlns="urn:ietf:params:xml:ns:metalink">',
    '  <generator>cidmirror</generator>',
    `  <file name="${xml(name)}">`,
    `    <size>${meta.size}</size>`,
    ...(hash ? [`    <hash type="sha-256">${hash}</hash>`] : []),
    ...urls.map((u, i) => `    <url priority="${i + 1}">${xml(u)}</url>`),
    '  </file>',
    '</metalink>',
    '',
  ].join('\n')
}
