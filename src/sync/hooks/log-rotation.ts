import { mkdir, open, readdir, rename, symlink, unlink } from 'node:fs/promises'
import { join } from 'node:path'
import type { JobHook } from './hook.ts'

/**
 * Log rotation (tunasync's loglimit_hook.go): one file per attempt, `<name>_YYYY-MM-DD_HH_MM.log`
 * in the job's log folder, a relative `latest` symlink to it, failed attempts renamed `.log.fail`,
 * the last `keep` files kept. Unlike tunasync, a retry within the same minute gets its own file
 * (`<name>_YYYY-MM-DD_HH_MM-2.log`, `-3`, ...) instead of appending to the first.
 */
export function createLogRotationHook(opts: { keep?: number; now?: () => Date } = {}): JobHook {
  const keep = Math.max(1, opts.keep ?? 10)
  const now = opts.now ?? (() => new Date())
  return {
    name: 'log-rotation',
    async preExec(ctx) {
      const { logDir, name } = ctx.job
      await mkdir(logDir, { recursive: true })
      await prune(logDir, name, keep - 1)
      const stamp = minuteStamp(now())
      for (let n = 1; ; n++) {
        const file = `${name}_${stamp}${n === 1 ? '' : `-${n}`}.log`
        const path = join(logDir, file)
        if (await exists(`${path}.fail`)) continue
        try {
          const fh = await open(path, 'wx')
          await fh.close()
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code === 'EEXIST') continue
          throw err
        }
        await relink(logDir, file)
        ctx.logFile = path
        return
      }
    },
    async postFail(ctx) {
      if (ctx.logFile === '/dev/null') return
      const failed = `${ctx.logFile}.fail`
      try {
        await rename(ctx.logFile, failed)
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err
        return
      }
      await relink(ctx.job.logDir, failed.slice(ctx.job.logDir.length + 1))
      ctx.logFile = failed
    },
  }
}

function minuteStamp(d: Date): string {
  const p = (n: number): string => String(n).padStart(2, '0')
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())}_${p(d.getHours())}_${p(d.getMinutes())}`
}

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')
}

/** This job's log files, oldest first. */
export async function listLogs(logDir: string, name: string): Promise<string[]> {
  const re = new RegExp(
    `^${escapeRegExp(name)}_(\\d{4}-\\d{2}-\\d{2}_\\d{2}_\\d{2})(?:-(\\d+))?\\.log(?:\\.fail)?$`,
  )
  let entries: string[]
  try {
    entries = await readdir(logDir)
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return []
    throw err
  }
  const logs: { file: string; stamp: string; n: number }[] = []
  for (const file of entries) {
    const m = re.exec(file)
    if (m) logs.push({ file, stamp: m[1] as string, n: Number(m[2] ?? 1) })
  }
  logs.sort((a, b) => (a.stamp === b.stamp ? a.n - b.n : a.stamp < b.stamp ? -1 : 1))
  return logs.map((l) => l.file)
}

async function prune(logDir: string, name: string, keep: number): Promise<void> {
  const logs = await listLogs(logDir, name)
  for (const file of logs.slice(0, Math.max(0, logs.length - keep))) {
    await unlink(join(logDir, file)).catch(() => {})
  }
}

/** Points `latest` at `file` (relative), replacing the old link atomically. */
async function relink(logDir: string, file: string): Promise<void> {
  const tmp = join(logDir, `.latest.${process.pid}.${Math.random().toString(36).slice(2)}`)
  await symlink(file, tmp)
  await rename(tmp, join(logDir, 'latest'))
}

async function exists(path: string): Promise<boolean> {
  try {
    const fh = await open(path, 'r')
    await fh.close()
    return true
  } catch {
    return false
  }
}
