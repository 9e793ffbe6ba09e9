/**
 * Index files: the files clients read to find the rest (apt's Release and Packages, yum's repomd.xml,
 * PyPI's simple pages, signatures). The janitor never evicts them: a client that cannot read them
 * cannot ask for anything else. A pattern without `/` is matched against the file's name, one with `/`
 * against its path from the mirror root (Node's `path.matchesGlob`: `*`, `**`, `?`, `[...]`, `{a,b}`).
 */
import { matchesGlob } from 'node:path'

export const DEFAULT_KEEP = [
  'Release',
  'Release.gpg',
  'InRelease',
  'Packages*',
  'Sources*',
  'repomd.xml',
  '**/simple/**',
  '*.sig',
  '*.asc',
] as const

/** The first pattern of `patterns` that `path` (relative, `/`-separated) matches, or undefined. */
export function keptBy(patterns: readonly string[], path: string): string | undefined {
  const name = path.slice(path.lastIndexOf('/') + 1)
  for (const p of patterns) if (matchesGlob(p.includes('/') ? path : name, p)) return p
  return undefined
}
