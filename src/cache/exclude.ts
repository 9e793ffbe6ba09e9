/**
 * Promise 4, no re-download: the evicted paths of a mirror as an rsync exclude list. rsync neither
 * fetches an excluded path nor deletes it (`--delete` leaves excluded files alone unless
 * `--delete-excluded`), so an evicted file stays evicted. An excluded path is invisible to rsync, so
 * the upstream is asked about those paths on their own (`rsync --list-only --files-from`): one the
 * upstream no longer has is marked gone (the next scan records it deleted), one it changed is left
 * out of the list and downloaded as any change.
 */
import { execFile } from 'node:child_process'
import { mkdirSync, mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import type { EvictedRecord, MirrorIndex } from '../index/index.ts'

/** rsync reads a pattern's backslashes as escapes only when it holds a wildcard; escape those then. */
const WILDCARD = /[*?[]/

/**
 * One exclude rule matching exactly the path (relative, `/`-separated) from the transfer root:
 * anchored with a leading `/`, wildcards and backslashes escaped when there are any.
 */
export function excludeRule(path: string): string {
  const p = WILDCARD.test(path) ? path.replace(/[*?[\\]/g, (c) => `\\${c}`) : path
  return `/${p}`
}

/** What the upstream said of the evicted paths it was asked about. */
export interface UpstreamCheck {
  /** Still there with the indexed size and mtime: stay excluded. */
  same: number
  /** Gone upstream: marked, the next scan records them deleted. */
  deleted: string[]
  /** Size or mtime differ upstream: downloaded again by this sync (left out of the list). */
  changed: string[]
  /** Why the upstream could not be asked (everything stays excluded then). */
  error?: string
  /** Paths the answer said nothing certain of (HTTP check: another status, an error): still excluded. */
  unchecked?: { path: string; why: string }[]
}

/** Asks an upstream about evicted paths (checkUpstream over rsync, checkHttpUpstream over HTTP). */
export type UpstreamChecker = (evicted: EvictedRecord[]) => Promise<UpstreamCheck>

export interface UpstreamSource {
  /** The rsync upstream (`rsync://host/module/`, `host::module/`, a local path). */
  upstream: string
  /** The rsync binary (default `rsync`). */
  rsync?: string
  /** Environment for it (USER, RSYNC_PASSWORD). */
  env?: Record<string, string>
  /** Extra arguments (`--timeout=N`, `-4`). */
  args?: string[]
  signal?: AbortSignal
}

/** Is `upstream` an rsync daemon's URL (`rsync://host/module/`, `host::module/`)? */
export function isRsyncUrl(upstream: string): boolean {
  return /^rsync:\/\/[^/]/i.test(upstream) || /^[^/:]+::/.test(upstream)
}

const LISTED = /^([-dlcbps])[-rwxsStT]{9}\s+(\d+) (\d{4})\/(\d\d)\/(\d\d) (\d\d):(\d\d):(\d\d) (.*)$/

/**
 * Parses `rsync --list-only --no-human-readable -8` output (run with TZ=UTC): path -> kind, size and
 * mtime in whole seconds.
 */
export function parseListing(text: string): Map<string, { file: boolean; size: number; mtimeS: number }> {
  const out = new Map<string, { file: boolean; size: number; mtimeS: number }>()
  for (const line of text.split('\n')) {
    const m = LISTED.exec(line)
    if (!m) continue
    const [, type, size, y, mo, d, h, mi, s, name] = m
    const mtimeS = Date.UTC(Number(y), Number(mo) - 1, Number(d), Number(h), Number(mi), Number(s)) / 1000
    out.set(type === 'l' ? name!.replace(/ -> .*$/, '') : name!, {
      file: type === '-',
      size: Number(size),
      mtimeS,
    })
  }
  return out
}

/** Asks the upstream about `evicted` in one `rsync --list-only --files-from` run. */
export function checkUpstream(evicted: EvictedRecord[], src: UpstreamSource): Promise<UpstreamCheck> {
  if (evicted.length === 0) return Promise.resolve({ same: 0, deleted: [], changed: [] })
  const tmp = mkdtempSync(join(tmpdir(), 'cidmirror-upstream-check-'))
  const list = join(tmp, 'files')
  const dest = join(tmp, 'dest')
  mkdirSync(dest)
  writeFileSync(list, evicted.map((e) => `${e.path}\0`).join(''))
  const args = [
    '--list-only',
    '--no-human-readable',
    '-8',
    '--from0',
    `--files-from=${list}`,
    '--ignore-missing-args',
    ...(src.args ?? []),
    src.upstream,
    dest,
  ]
  return new Promise<UpstreamCheck>((resolve) => {
    execFile(
      src.rsync ?? 'rsync',
      args,
      {
        env: { ...process.env, ...src.env, TZ: 'UTC' },
        maxBuffer: 1 << 30,
        ...(src.signal ? { signal: src.signal } : {}),
      },
      (err, stdout, stderr) => {
        rmSync(tmp, { recursive: true, force: true })
        if (err) {
          const why = stderr.trim().split('\n').pop() || err.message
          resolve({ same: 0, deleted: [], changed: [], error: why })
          return
        }
        const listed = parseListing(stdout)
        const out: UpstreamCheck = { same: 0, deleted: [], changed: [] }
        for (const e of evicted) {
          const u = listed.get(e.path)
          if (!u) out.deleted.push(e.path)
          else if (!u.file || u.size !== e.size || u.mtimeS !== Math.floor(e.mtimeMs / 1000))
            out.changed.push(e.path)
          else out.same++
        }
        resolve(out)
      },
    )
  })
}

/** What the pre-exec step did for one sync of a mirror. */
export interface ExcludeResult {
  /** The list file (written even when empty, so a command provider always finds it). */
  file: string
  excluded: number
  check?: UpstreamCheck
}

/**
 * Writes the mirror's exclude list to `file` (temp file and rename, so a sync never reads half a
 * list). With `upstream`, asks it about the evicted paths first: deleted ones are marked gone in the
 * index, changed ones left out of the list.
 */
export async function writeExcludeList(
  index: MirrorIndex,
  file: string,
  upstream?: UpstreamChecker,
): Promise<ExcludeResult> {
  const evicted: EvictedRecord[] = []
  for await (const e of index.local.evicted()) evicted.push(e)
  let check: UpstreamCheck | undefined
  let keep = evicted
  if (upstream && evicted.length > 0) {
    check = await upstream(evicted)
    if (check.error === undefined) {
      if (check.deleted.length > 0) await index.local.markGoneUpstream(check.deleted)
      const drop = new Set(check.changed)
      keep = evicted.filter((e) => !drop.has(e.path))
    }
  }
  mkdirSync(dirname(file), { recursive: true })
  const tmp = `${file}.tmp`
  // A path holding a newline cannot be one line: rsync would read two rules. Such a path is left out
  // (rsync then fetches it again: a re-download, never a loss).
  const lines = keep
    .filter((e) => !e.path.includes('\n') && !e.path.includes('\r'))
    .map((e) => excludeRule(e.path))
  writeFileSync(tmp, lines.length > 0 ? `${lines.join('\n')}\n` : '')
  renameSync(tmp, file)
  const out: ExcludeResult = { file, excluded: lines.length }
  if (check) out.check = check
  return out
}
