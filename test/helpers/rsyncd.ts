import { type ChildProcess, spawn } from 'node:child_process'
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { connect, createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { tool } from './tools.ts'

/**
 * A real `rsync --daemon` on 127.0.0.1 serving one module from a temporary folder: the upstream of
 * sync tests. No chroot, no uid/gid switch, symlinks served as they are.
 *
 *   const up = await startRsyncd()
 *   writeFileSync(join(up.root, 'a.txt'), 'x')
 *   mirror.upstream = up.url          // rsync://127.0.0.1:PORT/mirror/
 *   await up.stop()
 */
export interface Rsyncd {
  /** Folder served by the module; write the upstream tree here. */
  root: string
  module: string
  port: number
  /** `rsync://127.0.0.1:PORT/MODULE/` (trailing slash, as rsync upstreams need). */
  url: string
  /** The daemon's own log (connections, transfers, errors). */
  log(): string
  /** Kills the daemon and the transfers it forked (SIGKILL to its process group): "upstream went away". */
  kill(): void
  /** Stops the daemon and removes its temporary folder (unless `root` was given). */
  stop(): Promise<void>
}

export interface RsyncdOptions {
  /** Serve this folder instead of a new temporary one. */
  root?: string
  /** Module name, default `mirror`. */
  module?: string
  /** Require daemon authentication with this user and password. */
  auth?: { user: string; password: string }
  /** Extra lines for the module section of rsyncd.conf. */
  moduleConfig?: string[]
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer()
    srv.unref()
    srv.on('error', reject)
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address()
      const port = typeof addr === 'object' && addr ? addr.port : 0
      srv.close(() => resolve(port))
    })
  })
}

function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect({ host: '127.0.0.1', port })
    s.once('connect', () => {
      s.destroy()
      resolve(true)
    })
    s.once('error', () => resolve(false))
  })
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

export async function startRsyncd(options: RsyncdOptions = {}): Promise<Rsyncd> {
  const rsync = tool('rsync')
  const dir = mkdtempSync(join(tmpdir(), 'cidmirror-rsyncd-'))
  const root = options.root ?? join(dir, 'root')
  mkdirSync(root, { recursive: true })
  const module = options.module ?? 'mirror'
  const logFile = join(dir, 'rsyncd.log')
  const lines = [
    `log file = ${logFile}`,
    `lock file = ${join(dir, 'rsyncd.lock')}`,
    'use chroot = no',
    'reverse lookup = no',
    'max connections = 0',
  ]
  // As root the daemon would switch to nobody; stay who we are.
  if (process.getuid?.() === 0) lines.push('uid = 0', 'gid = 0')
  lines.push(`[${module}]`, `path = ${root}`, 'read only = yes', 'munge symlinks = no', 'list = yes')
  if (options.auth) {
    const secrets = join(dir, 'rsyncd.secrets')
    writeFileSync(secrets, `${options.auth.user}:${options.auth.password}\n`, { mode: 0o600 })
    lines.push(`auth users = ${options.auth.user}`, `secrets file = ${secrets}`)
  }
  lines.push(...(options.moduleConfig ?? []))
  const conf = join(dir, 'rsyncd.conf')
  writeFileSync(conf, `${lines.join('\n')}\n`)

  let child: ChildProcess | undefined
  let port = 0
  let stderr = ''
  for (let attempt = 0; attempt < 5 && !child; attempt++) {
    port = await freePort()
    const c = spawn(
      rsync,
      ['--daemon', '--no-detach', `--config=${conf}`, `--port=${port}`, '--address=127.0.0.1'],
      {
        stdio: ['ignore', 'ignore', 'pipe'],
        detached: true,
      },
    )
    c.stderr?.on('data', (d: Buffer) => {
      stderr += d.toString()
    })
    let exited = false
    c.once('exit', () => {
      exited = true
    })
    const until = Date.now() + 10_000
    while (!exited && Date.now() < until) {
      if (await canConnect(port)) break
      await sleep(50)
    }
    if (!exited && (await canConnect(port))) child = c
    else if (!exited) c.kill('SIGKILL')
  }
  if (!child) {
    rmSync(dir, { recursive: true, force: true })
    throw new Error(`rsync --daemon did not start: ${stderr.trim() || 'no connection'}`)
  }
  const daemon = child
  const pid = daemon.pid as number
  const exited = new Promise<void>((r) => {
    if (daemon.exitCode !== null || daemon.signalCode !== null) r()
    else daemon.once('exit', () => r())
  })
  const killAll = (sig: NodeJS.Signals) => {
    try {
      process.kill(-pid, sig)
    } catch {}
  }
  return {
    root,
    module,
    port,
    url: `rsync://127.0.0.1:${port}/${module}/`,
    log: () => {
      try {
        return readFileSync(logFile, 'utf8')
      } catch {
        return ''
      }
    },
    kill: () => killAll('SIGKILL'),
    stop: async () => {
      killAll('SIGTERM')
      const t = setTimeout(() => killAll('SIGKILL'), 3000)
      await exited
      clearTimeout(t)
      killAll('SIGKILL')
      rmSync(dir, { recursive: true, force: true })
    },
  }
}

/**
 * The temporary file rsync is receiving `name` into (`.NAME.XXXXXX` in the same folder), once it
 * holds at least `minBytes`: the sign that a transfer is in the middle of that file.
 */
export function partialFile(dir: string, name: string, minBytes = 1): string | undefined {
  let entries: string[]
  try {
    entries = readdirSync(dir)
  } catch {
    return undefined
  }
  for (const e of entries) {
    if (!e.startsWith(`.${name}.`) || e.length !== name.length + 8) continue
    try {
      if (statSync(join(dir, e)).size >= minBytes) return join(dir, e)
    } catch {}
  }
  return undefined
}
