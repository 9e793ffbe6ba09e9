import { existsSync, realpathSync } from 'node:fs'
import { basename, dirname, join, relative, resolve, sep } from 'node:path'
import type { Command } from 'commander'
import type { PathRecord } from '../../index/index.ts'
import { formatSize } from '../../util/units.ts'

/** The absolute path with its parent directories resolved (the last component is not followed). */
function absolute(path: string): string {
  const abs = resolve(path)
  const dir = dirname(abs)
  return existsSync(dir) ? join(realpathSync(dir), basename(abs)) : abs
}

function inside(root: string, abs: string): boolean {
  return abs === root || abs.startsWith(root.endsWith(sep) ? root : root + sep)
}

function printRecord(mirror: string, r: PathRecord): void {
  const rows: [string, string][] = [
    ['mirror', mirror],
    ['path', r.path === '' ? '.' : r.path],
    ['kind', r.kind],
    ['state', r.state],
    ['cid', r.cid],
    ['size', r.kind === 'dir' ? '-' : `${r.size} (${formatSize(r.size)})`],
    ['tsize', String(r.tsize)],
  ]
  if (r.target !== undefined) rows.push(['target', r.target])
  rows.push(
    ['mtime', new Date(r.mtimeMs).toISOString()],
    ['ctime', new Date(r.ctimeMs).toISOString()],
    ['inode', String(r.ino)],
    ['first seen', r.firstSeen],
    ['last synced', r.lastSynced],
    ['scan', String(r.scan)],
  )
  process.stdout.write(`${rows.map(([k, v]) => `${k.padEnd(12)} ${v}`).join('\n')}\n`)
}

export function register(program: Command): void {
  program
    .command('stat')
    .description("print one path's index record (CID, size, mtime, inode, state, first seen, last synced)")
    .argument('<path>', 'a path inside an indexed mirror tree')
    .option('--db <path>', 'database directory (default $CIDMIRROR_DB or ~/.local/share/cidmirror/db)')
    .option(
      '-c, --config <file>',
      "this daemon config's database, or the daemon's read API while the daemon holds it",
    )
    .option('-m, --manager <url>', "ask the read API of the daemon at this URL (the manager's api_base)")
    .option('--token <token>', "bearer token for the read API (default: the config's, or $CIDMIRROR_TOKEN)")
    .option('--name <mirror>', 'the mirror (default: the indexed mirror whose root holds PATH)')
    .option('--json', 'print the record as JSON')
    .action(async (path: string, o: StatOptions) => {
      const abs = absolute(path)
      // Imported here so that registering the command loads nothing heavy.
      const [{ openIndexSource }, { PathNotIndexedError, MirrorNotIndexedError }] = await Promise.all([
        import('../index-source.ts'),
        import('../../index/index.ts'),
      ])
      const source = await openIndexSource(o)
      try {
        const mirrors = await source.reader.mirrors()
        const candidates = o.name ? mirrors.filter((m) => m.mirror === o.name) : mirrors
        if (o.name && candidates.length === 0) throw new MirrorNotIndexedError(o.name)
        const m = candidates
          .filter((c) => inside(c.root, abs))
          .sort((a, b) => b.root.length - a.root.length)[0]
        if (!m) throw new PathNotIndexedError(path, o.name ? `mirror ${o.name}` : 'any indexed mirror')
        const rel = relative(m.root, abs).split(sep).join('/')
        const rec = await source.reader.record(m.mirror, rel)
        if (!rec) throw new PathNotIndexedError(path, `the index of mirror ${m.mirror}`)
        if (o.json) process.stdout.write(`${JSON.stringify({ mirror: m.mirror, ...rec }, null, 2)}\n`)
        else printRecord(m.mirror, rec)
      } finally {
        await source.close()
      }
    })
}

interface StatOptions {
  db?: string
  config?: string
  manager?: string
  token?: string
  name?: string
  json?: boolean
}
