/**
 * `cidmirror index`. Registering costs nothing: the database, the index room and the progress bar are
 * imported when the command runs, so other commands (and `--help`) do not load them, and an unchanged
 * rescan does not load the CID engine at all (scan.ts loads it on first hash).
 */
import { homedir } from 'node:os'
import { basename, join, resolve } from 'node:path'
import { type Command, Option } from 'commander'
import type { ScanProgress, ScanSummary } from '../../index/index.ts'
import type { Config } from '../../sync/index.ts'
import { formatSize } from '../../util/units.ts'

/** `--db`, else `$CIDMIRROR_DB`, else `$XDG_DATA_HOME/cidmirror/db` (`~/.local/share/cidmirror/db`). */
export function defaultDbPath(opt?: string): string {
  if (opt) return resolve(opt)
  if (process.env.CIDMIRROR_DB) return resolve(process.env.CIDMIRROR_DB)
  const data = process.env.XDG_DATA_HOME || join(homedir(), '.local', 'share')
  return join(data, 'cidmirror', 'db')
}

function printSummary(s: ScanSummary): void {
  const secs = (Date.parse(s.ended) - Date.parse(s.started)) / 1000
  const rate = secs > 0 ? s.bytesHashed / secs : 0
  const lines = [
    `mirror       ${s.mirror} (scan ${s.id}${s.resumed ? ', resumed an interrupted scan' : ''})`,
    `root         ${s.root}`,
    `files        ${s.files} (${formatSize(s.bytes)}), ${s.dirs} directories${s.evicted ? `, ${s.evicted} evicted` : ''}`,
    `added        ${s.added}`,
    `changed      ${s.changed}${s.touched ? ` (+${s.touched} touched, same CID)` : ''}`,
    `deleted      ${s.deleted}`,
    `unchanged    ${s.unchanged}`,
    `hashed       ${s.filesHashed} files, ${formatSize(s.bytesHashed)}${s.reused ? ` (${s.reused} reused from the interrupted scan)` : ''}`,
    `time         ${secs.toFixed(2)} s, ${formatSize(rate)}/s hashed`,
    `root CID     ${s.rootCid}`,
  ]
  process.stdout.write(`${lines.join('\n')}\n`)
}

/**
 * A progress bar on stderr when it is a terminal; elsewhere (a log file, a pipe) only with `always`,
 * then as a line every 2 s.
 */
async function progressBar(
  always: boolean,
): Promise<{ update: (p: ScanProgress) => void; stop: () => void } | undefined> {
  if (!process.stderr.isTTY && !always) return undefined
  const { SingleBar } = await import('cli-progress')
  const bar = new SingleBar(
    {
      stream: process.stderr,
      format:
        ' {phase} [{bar}] {walked}/{totalText} entries | hashed {hashed} files, {bytes} | queued {queued}',
      hideCursor: true,
      clearOnComplete: true,
      noTTYOutput: always,
      barsize: 24,
    },
    undefined,
  )
  let started = false
  return {
    update(p) {
      const total = Math.max(p.total ?? 0, p.walked)
      const payload = {
        phase: p.phase === 'commit' ? 'committing' : 'indexing',
        walked: p.walked,
        totalText: p.total === undefined ? '?' : String(total),
        hashed: p.filesHashed,
        bytes: formatSize(p.bytesHashed),
        queued: p.filesQueued,
      }
      if (!started) {
        bar.start(total || 1, p.walked, payload)
        started = true
      } else {
        bar.setTotal(total || 1)
        bar.update(p.walked, payload)
      }
    },
    stop() {
      if (started) bar.stop()
    },
  }
}

function progressLines(): { update: (p: ScanProgress) => void; stop: () => void } {
  return {
    update(p) {
      process.stderr.write(`${JSON.stringify(p)}\n`)
    },
    stop() {},
  }
}

/**
 * The database and mirror names to use: `--db` / `$CIDMIRROR_DB` / the default, or with `-c FILE` the
 * daemon's `[database] path` and its mirrors' folders.
 */
export async function databaseTarget(o: {
  db?: string
  config?: string
}): Promise<{ db: string; mirrorAt: (root: string) => string | undefined; config?: Config }> {
  if (!o.config || o.db) return { db: defaultDbPath(o.db), mirrorAt: () => undefined }
  const { loadConfig } = await import('../../sync/index.ts')
  const config = await loadConfig(o.config)
  return {
    db: config.database.path,
    config,
    mirrorAt: (root) => config.mirrors.find((m) => resolve(m.mirrorDir) === root)?.name,
  }
}

export function register(program: Command): void {
  program
    .command('index')
    .description('index a mirror tree: CID, size, mtime and state of every path (incremental)')
    .argument('<dir>', 'the mirror tree')
    .option('--db <path>', 'database directory (default $CIDMIRROR_DB or ~/.local/share/cidmirror/db)')
    .option(
      '-c, --config <file>',
      "use this daemon config's database and mirror names (while no daemon runs)",
    )
    .option('--name <mirror>', 'mirror name (default: the config mirror at DIR, else the directory name)')
    .addOption(
      new Option(
        '--progress <mode>',
        'auto: a bar on a terminal; bar: a bar even elsewhere; lines: JSON lines on stderr',
      )
        .choices(['auto', 'bar', 'lines', 'none'])
        .default('auto'),
    )
    .action(async (dir: string, o: { db?: string; config?: string; name?: string; progress: string }) => {
      const root = resolve(dir)
      const target = await databaseTarget(o)
      const name = o.name ?? target.mirrorAt(root) ?? basename(root)
      const [{ openDatabase }, { listMirrors, openMirrorIndex, MirrorNameTakenError }] = await Promise.all([
        import('../../db.ts'),
        import('../../index/index.ts'),
      ])
      const db = await openDatabase(target.db)
      if (!o.name) {
        // A name taken from the folder must not silently move another mirror's index to this tree.
        const other = (await listMirrors(db)).find((m) => m.mirror === name && m.root !== root)
        if (other) {
          await db.close()
          throw new MirrorNameTakenError(name, other.root, root)
        }
      }
      const bar =
        o.progress === 'lines'
          ? progressLines()
          : o.progress === 'none'
            ? undefined
            : await progressBar(o.progress === 'bar')
      const ac = new AbortController()
      const onSignal = (): void => ac.abort()
      process.once('SIGINT', onSignal)
      process.once('SIGTERM', onSignal)
      try {
        const idx = openMirrorIndex(db, name, root)
        // With -c, the mirror's `whole_file_digest` as the daemon's scans would use it.
        const wholeFileDigest = target.config?.mirrors.find((m) => m.name === name)?.wholeFileDigest === true
        const s = await idx.scan({
          signal: ac.signal,
          wholeFileDigest,
          ...(bar ? { onProgress: bar.update } : {}),
        })
        bar?.stop()
        printSummary(s)
      } finally {
        bar?.stop()
        process.off('SIGINT', onSignal)
        process.off('SIGTERM', onSignal)
        await db.close()
      }
    })
}
