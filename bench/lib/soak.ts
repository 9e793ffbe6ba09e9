/**
 * The /jobs soak: a real `cidmirror daemon` (manager and worker, a few command mirrors that have all
 * run), then many GETs of its public `/jobs`, its RSS read from /proc before and after. Used by
 * `npm run bench` (BENCH_ONLY=soak) and by test/manager-soak.test.ts.
 */
import { type ChildProcess, spawn } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { loadGet, rssMiBOf } from './http-load.ts'

export interface SoakResult {
  jobs: number
  reads: number
  connections: number
  /** RSS of the daemon once its jobs have run, before any read. */
  startMiB: number
  /** After the warm-up reads. */
  warmMiB: number
  /** After the reads, and the highest seen while they ran. */
  endMiB: number
  peakMiB: number
  seconds: number
  failed: number
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer()
    srv.on('error', reject)
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address()
      srv.close(() => resolve(typeof addr === 'object' && addr ? addr.port : 0))
    })
  })
}

/**
 * Runs the daemon of `main` (the CLI entry: dist/cli/main.js or src/cli/main.ts) with `jobs` mirrors,
 * reads `/jobs` `warm` times, then `reads` times over `connections` keep-alive connections.
 */
export async function soakJobs(opts: {
  main: string
  reads: number
  warm: number
  jobs?: number
  connections?: number
}): Promise<SoakResult> {
  const jobs = opts.jobs ?? 8
  const connections = opts.connections ?? 16
  const dir = mkdtempSync(join(tmpdir(), 'cidmirror-soak-'))
  const port = await freePort()
  const config = join(dir, 'cidmirror.toml')
  let mirrors = ''
  for (let i = 0; i < jobs; i++)
    mirrors += `[[mirrors]]\nname = "mirror${i}"\nprovider = "command"\nupstream = "https://upstream.example/mirror${i}/"\ncommand = "echo size 1.5G"\nsize_pattern = "size (\\\\S+)"\n\n`
  writeFileSync(
    config,
    `[global]\nname = "w1"\nmirror_dir = "${dir}/mirrors"\nlog_dir = "${dir}/log/{{.Name}}"\nconcurrent = 4\ninterval = "1h"\n\n` +
      `[manager]\napi_base = "http://127.0.0.1:${port}"\ntoken = "soak-token-0123456789"\n\n` +
      `[server]\nhostname = "127.0.0.1"\nlisten_addr = "127.0.0.1"\nlisten_port = 0\n\n` +
      `[database]\npath = "${dir}/db"\n\n${mirrors}`,
  )
  const child: ChildProcess = spawn(process.execPath, [opts.main, 'daemon', '-c', config], {
    stdio: ['ignore', 'ignore', 'pipe'],
    env: { ...process.env, CIDMIRROR_LOG_LEVEL: 'warn' },
  })
  let log = ''
  child.stderr?.on('data', (d: Buffer) => {
    log = (log + d.toString()).slice(-4000)
  })
  const url = `http://127.0.0.1:${port}/jobs`
  try {
    // Every job has run and its status reached the manager.
    const until = Date.now() + 120_000
    for (;;) {
      if (child.exitCode !== null) throw new Error(`the daemon exited ${child.exitCode}: ${log}`)
      const list = await fetch(url)
        .then((r) => r.json() as Promise<{ status: string }[]>)
        .catch(() => [])
      if (list.length === jobs && list.every((j) => j.status === 'success')) break
      if (Date.now() > until) throw new Error(`the daemon's jobs did not all succeed: ${log}`)
      await new Promise((r) => setTimeout(r, 100))
    }
    const pid = child.pid as number
    const startMiB = rssMiBOf(pid)
    let failed = (await loadGet(url, opts.warm, connections)).failed
    const warmMiB = rssMiBOf(pid)
    let peakMiB = warmMiB
    const sampler = setInterval(() => {
      peakMiB = Math.max(peakMiB, rssMiBOf(pid))
    }, 100)
    const run = await loadGet(url, opts.reads, connections).finally(() => clearInterval(sampler))
    failed += run.failed
    const endMiB = rssMiBOf(pid)
    peakMiB = Math.max(peakMiB, endMiB)
    return {
      jobs,
      reads: opts.reads,
      connections,
      startMiB,
      warmMiB,
      endMiB,
      peakMiB,
      seconds: run.seconds,
      failed,
    }
  } finally {
    if (child.exitCode === null) {
      child.kill('SIGTERM')
      await new Promise((r) => child.once('exit', r))
    }
    rmSync(dir, { recursive: true, force: true })
  }
}
