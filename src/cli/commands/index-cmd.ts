/**
 * `cidmirror index`. Registering costs nothing: the database, the index room and the progress bar are
 * imported when the command runs, so other commands (and `--help`) do not load them, and an unchanged
 * rescan does not load the CID engine at all (scan.ts loads it on first hash).
 */
import { homedir } from 'node:os'
import { basename, join, resolve } from 'node:path'
import type { Command } from 'commander'
import type { ScanProgress, ScanSummary } from '../../index/index.ts'
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

async function progressBar(): Promise<{ update: (p: ScanProgress) => void; stop: () => void } | undefined> {
  if (!process.stderr.isTTY) return undefined
  const { SingleBar } = await import('cli-progress')
  const bar = new SingleBar(
    {
      stream: process.stderr,
      format:
        ' {phase} [{bar}] {walked}/{totalText} entries | hashed {hashed} files, {bytes} | queued {queued}',
      hideCursor: true,
      clearOnComplete: true,
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

export function register(program: Command): void {
  program
    .command('index')
    .description('index a mirror tree: CID, size, mtime and state of every path (incremental)')
    .argument('<dir>', 'the mirror tree')
    .option('--db <path>', 'database directory (default $CIDMIRROR_DB or ~/.local/share/cidmirror/db)')
    .option('--name <mirror>', 'mirror name (default: the directory name)')
    .option('--progress <mode>', 'bar (on a terminal), lines (JSON lines on stderr) or none', 'auto')
    .action(async (dir: string, o: { db?: string; name?: string; progress: string }) => {
      const root = resolve(dir)
      const name = o.name ?? basename(root)
      const [{ openDatabase }, { openMirrorIndex }] = await Promise.all([
        import('../../db.ts'),
        import('../../index/index.ts'),
      ])
      const db = await openDatabase(defaultDbPath(o.db))
      const bar =
        o.progress === 'lines' ? progressLines() : o.progress === 'none' ? undefined : await progressBar()
      const ac = new AbortController()
      const onSignal = (): void => ac.abort()
      process.once('SIGINT', onSignal)
      process.once('SIGTERM', onSignal)
      try {
        const idx = openMirrorIndex(db, name, root)
        const s = await idx.scan({ signal: ac.signal, ...(bar ? { onProgress: bar.update } : {}) })
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
