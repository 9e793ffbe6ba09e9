/**
 * `cidmirror audit`: per file its copies and the verdict against n, a summary per mirror, the totals
 * (docs/audit.md). Reads the database when no daemon holds it, else the daemon's
 * `GET /replication/audit`; both give the same lines, so the output is the same. Exit 0 when every
 * listed file meets n, 1 when some do not, 2 on error.
 */
import { existsSync, realpathSync } from 'node:fs'
import { basename, dirname, isAbsolute, join, relative, resolve, sep } from 'node:path'
import { type Command, Option } from 'commander'
import type { AuditLine, AuditQuery } from '../../replicator/index.ts'

interface AuditOptions {
  db?: string
  config?: string
  manager?: string
  token?: string
  mirror?: string
  under?: string
  archive?: boolean
  n?: string
  verify?: boolean
  json?: boolean
  progress: string
}

function absolute(path: string): string {
  const abs = resolve(path)
  const dir = dirname(abs)
  return existsSync(dir) ? join(realpathSync(dir), basename(abs)) : abs
}

function inside(root: string, abs: string): boolean {
  return abs === root || abs.startsWith(root.endsWith(sep) ? root : root + sep)
}

async function count(name: string, text: string | undefined): Promise<number | undefined> {
  if (text === undefined) return undefined
  if (!/^\d{1,4}$/.test(text) || Number(text) > 1000) {
    const { UsageError } = await import('../errors.ts')
    throw new UsageError(`${name}: expected a whole number from 0 to 1000, got ${JSON.stringify(text)}`)
  }
  return Number(text)
}

export function register(program: Command): void {
  program
    .command('audit')
    .description(
      'copies of every file by holder and kind, verified or announced, against n (exit 1 when some are below n)',
    )
    .argument('[target]', 'a path in a mirror tree (a file, or a directory: every file under it), or a CID')
    .option('--mirror <name>', 'only this mirror (with PATH: a path relative to its root is taken too)')
    .option('--under <N>', 'list only files with fewer than N verified copies')
    .option(
      '--archive',
      'also audit what left the tree: deleted files and past versions of changed ones (states deleted, archived), counted toward the exit status',
    )
    .option(
      '-n <N>',
      "minimum verified copies (default: the mirror's replication_n, else [replication] n, else 1)",
    )
    .option('--verify', 'have the daemon re-check the copies first (needs the running daemon)')
    .option('--json', 'NDJSON: a header, one object per file, one per mirror, the totals (docs/audit.md)')
    .option('--db <path>', 'database directory (default $CIDMIRROR_DB or ~/.local/share/cidmirror/db)')
    .option(
      '-c, --config <file>',
      "this daemon config's database and n, or the daemon's read API while the daemon holds it",
    )
    .option('-m, --manager <url>', "ask the read API of the daemon at this URL (the manager's api_base)")
    .option('--token <token>', "bearer token for the read API (default: the config's, or $CIDMIRROR_TOKEN)")
    .addOption(
      new Option('--progress <mode>', 'auto: a bar on a terminal (stderr); bar: a bar even elsewhere; none')
        .choices(['auto', 'bar', 'none'])
        .default('auto'),
    )
    .action(async (target: string | undefined, o: AuditOptions) => {
      const n = await count('-n', o.n)
      const under = await count('--under', o.under)
      const [{ openIndexSource }, { canonicalCid }, idx] = await Promise.all([
        import('../index-source.ts'),
        import('../../cid/index.ts'),
        import('../../index/index.ts'),
      ])
      const source = await openIndexSource(o)
      try {
        const query: AuditQuery = {}
        if (o.mirror !== undefined) query.mirror = idx.checkMirrorName(o.mirror)
        if (under !== undefined) query.under = under
        if (o.archive) query.archive = true
        if (target !== undefined) {
          const cid = !existsSync(target) ? tryCid(canonicalCid, target) : undefined
          if (cid) query.cid = cid
          else {
            const mirrors = await source.reader.mirrors()
            const abs = absolute(target)
            const candidates = o.mirror ? mirrors.filter((m) => m.mirror === o.mirror) : mirrors
            if (o.mirror && candidates.length === 0) throw new idx.MirrorNotIndexedError(o.mirror)
            const m = candidates
              .filter((c) => inside(c.root, abs))
              .sort((a, b) => b.root.length - a.root.length)[0]
            if (m) {
              query.mirror = m.mirror
              query.path = relative(m.root, abs).split(sep).join('/')
            } else if (o.mirror && !isAbsolute(target)) {
              query.path = idx.checkRelPath(target)
            } else {
              throw new idx.PathNotIndexedError(
                target,
                o.mirror ? `mirror ${o.mirror}` : 'any indexed mirror',
              )
            }
          }
        }
        let lines: AsyncIterable<AuditLine>
        if (source.remote) {
          const { AuditClient } = await import('../../api/index.ts')
          const client = new AuditClient(source.remote.base, source.remote.token)
          if (o.verify) {
            const r = await client.check(query.mirror !== undefined ? { mirror: query.mirror } : {})
            process.stderr.write(
              `verify: ${r.checked} of ${r.queued} items re-checked${r.pending.length ? `; still pending: ${r.pending.join(', ')}` : ''}\n`,
            )
          }
          lines = client.audit(query, {
            ...(n !== undefined ? { n } : {}),
            progress: true,
          }) as AsyncIterable<AuditLine>
        } else {
          if (o.verify) {
            const { VerifyNeedsDaemonError } = await import('../errors.ts')
            throw new VerifyNeedsDaemonError(source.via.replace(/^database /, ''))
          }
          const [{ auditStream }, daemon] = await Promise.all([
            import('../../replicator/index.ts'),
            import('../../daemon/index.ts'),
          ])
          // The daemon's rule, from the same config: the audit judges as the replicator stores.
          const repl = source.config ? daemon.readReplicationConfig(source.config) : undefined
          const settings = repl && source.config ? daemon.replicationSettings(repl, source.config) : undefined
          const capacity = daemon.provideCapacity(repl?.ipfs)
          lines = auditStream(source.db as NonNullable<typeof source.db>, query, {
            policyOf: daemon.policyOf(settings, source.config ?? { mirrors: [] }, n),
            progress: true,
            ...(capacity !== undefined ? { provideCapacity: capacity } : {}),
          })
        }
        const verdict = await print(lines, o)
        process.exitCode = verdict === 'ok' ? 0 : 1
      } finally {
        await source.close()
      }
    })
}

function tryCid(canonical: (t: string) => string, text: string): string | undefined {
  try {
    return canonical(text)
  } catch {
    return undefined
  }
}

async function print(lines: AsyncIterable<AuditLine>, o: AuditOptions): Promise<'ok' | 'under'> {
  const fmt = o.json ? undefined : await import('../audit-format.ts')
  const bar =
    o.progress === 'none' || (!process.stderr.isTTY && o.progress !== 'bar')
      ? undefined
      : await progressBar(o.progress === 'bar')
  const out: string[] = []
  const flush = (): void => {
    if (out.length) process.stdout.write(`${out.join('\n')}\n`)
    out.length = 0
  }
  let verdict: 'ok' | 'under' = 'ok'
  let headerShown = false
  try {
    for await (const l of lines) {
      if (l.type === 'progress') {
        bar?.update(l.mirror, l.done, l.total)
        continue
      }
      if (o.json) out.push(JSON.stringify(l))
      else if (fmt) {
        if (l.type === 'file') {
          if (!headerShown) out.push(fmt.FILE_HEADER)
          headerShown = true
          out.push(fmt.formatFile(l))
        } else if (l.type === 'mirror') {
          out.push(fmt.formatMirror(l))
          headerShown = false
        } else if (l.type === 'totals') out.push(fmt.formatTotals(l))
      }
      if (l.type === 'totals') verdict = l.verdict
      if (out.length >= 200) {
        bar?.clear()
        flush()
      }
    }
  } finally {
    bar?.stop()
    flush()
  }
  return verdict
}

/** A bar on stderr, per mirror (cli-progress, as `index` draws it). */
async function progressBar(always: boolean): Promise<{
  update: (mirror: string, done: number, total?: number) => void
  clear: () => void
  stop: () => void
}> {
  const { SingleBar } = await import('cli-progress')
  const bar = new SingleBar(
    {
      stream: process.stderr,
      format: ' auditing {mirror} [{bar}] {value}/{totalText} files',
      hideCursor: true,
      clearOnComplete: true,
      noTTYOutput: always,
      barsize: 24,
    },
    undefined,
  )
  let started = false
  return {
    update(mirror, done, total) {
      const t = Math.max(total ?? 0, done) || 1
      const payload = { mirror, totalText: total === undefined ? '?' : String(t) }
      if (!started) {
        bar.start(t, done, payload)
        started = true
      } else {
        bar.setTotal(t)
        bar.update(done, payload)
      }
    },
    clear() {
      // Lines printed while the bar is drawn would be overwritten: stop it, it starts again at the next update.
      if (started) bar.stop()
      started = false
    },
    stop() {
      if (started) bar.stop()
      started = false
    },
  }
}
