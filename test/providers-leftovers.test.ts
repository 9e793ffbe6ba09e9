import { type ChildProcess, spawn } from 'node:child_process'
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { loadConfig } from '../src/sync/config/index.ts'
import type { RunContext } from '../src/sync/provider.ts'
import { createProvider } from '../src/sync/providers/index.ts'
import { waitFor } from './jobs-helpers.ts'

/**
 * A run never outlives its daemon, and what a dead daemon's run left is ended before the job syncs
 * again: the watchdog, the run record, and the run id that tells a run's processes from others.
 */

const RUN_PROVIDER = join(import.meta.dirname, 'helpers', 'run-provider.ts')
const BOOT_ID = readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim()

let tmp: string
let strays: number[] = []
let children: ChildProcess[] = []
beforeEach(() => {
  tmp = mkdtempSync(join(tmpdir(), 'cidmirror-leftovers-'))
})
afterEach(async () => {
  for (const c of children) {
    if (c.exitCode === null && c.signalCode === null) {
      c.kill('SIGKILL')
      await new Promise((r) => c.once('exit', r))
    }
  }
  children = []
  for (const pid of strays) {
    try {
      process.kill(pid, 'SIGKILL')
    } catch {}
  }
  strays = []
  rmSync(tmp, { recursive: true, force: true })
})

/** A config of one command mirror `job` in `tmp` (logs in tmp/logs/job); returns its path. */
function config(command: string, file = 'cidmirror.toml', extra = ''): string {
  const path = join(tmp, file)
  writeFileSync(
    path,
    `[global]\nmirror_dir = "mirrors"\nlog_dir = "logs/{{.Name}}"\n[[mirrors]]\nname = "job"\nprovider = "command"\nupstream = "https://example.org/src/"\ncommand = ${JSON.stringify(command)}\nkill_grace = "500ms"\n${extra}\n`,
  )
  return path
}

async function provider(configFile: string) {
  const c = await loadConfig(configFile)
  return createProvider(c.mirrors[0]!, c)
}

let n = 0
function ctx(): RunContext {
  n++
  mkdirSync(join(tmp, 'logs', 'job'), { recursive: true })
  return {
    logFile: join(tmp, 'logs', 'job', `run${n}.log`),
    signal: new AbortController().signal,
    env: {},
    extraArgs: [],
  }
}

const read = (p: string) => readFileSync(p, 'utf8')
const record = () => join(tmp, 'logs', 'job', 'job.run')

/** Alive and not a zombie (PID 1 here may not reap orphans). */
function alive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z'
  } catch {
    return false
  }
}

function childrenOf(pid: number): number[] {
  try {
    return read(`/proc/${pid}/task/${pid}/children`).trim().split(/\s+/).filter(Boolean).map(Number)
  } catch {
    return []
  }
}

const cmdline = (pid: number) => {
  try {
    return read(`/proc/${pid}/cmdline`).split('\0').join(' ')
  } catch {
    return ''
  }
}

/** The program's processes: `sh` leading, a sleep, and a shell that ignores TERM (exec'd into sleep). */
function slowCommand(pids: string): string {
  return `sleep 300 & echo $! >> ${pids}; sh -c 'trap "" TERM; echo $$ >> ${pids}; exec sleep 300' & echo $$ >> ${pids}; wait`
}

/**
 * Runs the mirror of `configFile` in a Node process of its own, until its command wrote 3 PIDs, the
 * run is recorded with its group, and its watchdog is up.
 */
async function runElsewhere(
  configFile: string,
  pids: string,
): Promise<{ daemon: ChildProcess; pids: number[]; watchdog: number }> {
  const daemon = spawn(process.execPath, [RUN_PROVIDER, configFile, join(tmp, 'elsewhere.log')], {
    stdio: 'ignore',
  })
  children.push(daemon)
  const list = await waitFor(() => {
    const l = existsSync(pids) ? read(pids).trim().split('\n').filter(Boolean).map(Number) : []
    return l.length === 3 ? l : undefined
  }, 'the command to start')
  strays.push(...list)
  await waitFor(() => existsSync(record()) && JSON.parse(read(record())).pgid, 'the run record')
  const watchdog = await waitFor(
    () => childrenOf(daemon.pid!).find((pid) => cmdline(pid).includes('cidmirror-watchdog')),
    'the watchdog',
  )
  return { daemon, pids: list, watchdog }
}

async function kill9(child: ChildProcess): Promise<void> {
  child.kill('SIGKILL')
  await new Promise((r) => child.once('exit', r))
}

describe('a run and its daemon', () => {
  it('every process of a run carries its run id; the run is recorded while it lasts', async () => {
    const p = await provider(
      config(
        `sh -c 'echo "child=$CIDMIRROR_RUN_ID"'; echo "leader=$$"; until grep -q '"pgid":[0-9]' ${record()}; do sleep 0.01; done; cat ${record()}; echo`,
      ),
    )
    const c = ctx()
    await p.run(c)
    const log = read(c.logFile)
    const id = /^child=(\S+)$/m.exec(log)?.[1]
    expect(id).toMatch(/^[0-9a-f-]{36}$/)
    const leader = Number(/^leader=(\d+)$/m.exec(log)?.[1])
    const rec = JSON.parse(/^\{.*\}$/m.exec(log)![0])
    expect(rec).toMatchObject({ runId: id, bootId: BOOT_ID, daemonPid: process.pid, pgid: leader })
    expect(rec.command).toContain('sh -c')
    expect(existsSync(record())).toBe(false)
  })

  it('kill -9 of the daemon: its watchdog ends the whole group (no restart needed)', async () => {
    const pids = join(tmp, 'pids')
    const { daemon, pids: list } = await runElsewhere(config(slowCommand(pids), 'a.toml'), pids)
    await kill9(daemon)
    // TERM, then KILL after kill_grace for the shell that ignores TERM
    await waitFor(() => list.every((pid) => !alive(pid)), 'the group to be gone', 20_000)
    // The record stays behind (the daemon never removed it); the next run finds nothing alive.
    const left = JSON.parse(read(record()))
    expect(left.daemonPid).toBe(daemon.pid)
    expect(list).toContain(left.pgid)
    const p = await provider(config('echo ran'))
    const c = ctx()
    await p.run(c)
    expect(read(c.logFile)).not.toContain('left by a run')
    expect(existsSync(record())).toBe(false)
  })

  it('kill -9 of the daemon and its watchdog: the next run ends the orphans before it starts', async () => {
    const pids = join(tmp, 'pids')
    const { daemon, pids: list, watchdog } = await runElsewhere(config(slowCommand(pids), 'a.toml'), pids)
    process.kill(watchdog, 'SIGKILL')
    await waitFor(() => !alive(watchdog), 'the watchdog to be gone')
    await kill9(daemon)
    for (const pid of list) expect(alive(pid)).toBe(true) // orphans under PID 1

    const p = await provider(config(`echo ran; cat ${JSON.stringify(record())}`))
    const c = ctx()
    await p.run(c)
    // Checked at once: the run started only after they were gone.
    for (const pid of list) expect(alive(pid)).toBe(false)
    const log = read(c.logFile)
    const ended = new RegExp(
      `^cidmirror: ended (\\d+) processes \\(PID ([\\d, ]+)\\) left by a run of daemon ${daemon.pid} started \\S+, with SIGKILL$`,
      'm',
    ).exec(log)
    expect(ended, log).not.toBeNull()
    const endedPids = ended![2]!.split(', ').map(Number)
    for (const pid of list) expect(endedPids).toContain(pid)
    // The log says it before the new run's output, and the new run has its own record.
    expect(log.indexOf('cidmirror: ended')).toBeLessThan(log.indexOf('ran\n'))
    expect(log).toMatch(new RegExp(`"daemonPid":${process.pid}`))
    expect(existsSync(record())).toBe(false)
  })

  it('a record never ends a process that is not of its run: a reused PID, another boot', async () => {
    const p = await provider(config('echo ran'))
    mkdirSync(join(tmp, 'logs', 'job'), { recursive: true })
    const start = (env: Record<string, string>) => {
      const c = spawn('sleep', ['300'], { detached: true, stdio: 'ignore', env: { ...process.env, ...env } })
      children.push(c)
      return c.pid!
    }
    const write = (r: object) => writeFileSync(record(), JSON.stringify(r))
    const base = { daemonPid: 1, startedAt: new Date().toISOString(), command: 'rsync' }

    // A PID (and group) the record names, now another program's: no run id in its environment.
    const other = start({})
    write({ ...base, runId: 'f00d', bootId: BOOT_ID, pgid: other })
    let c = ctx()
    await p.run(c)
    expect(alive(other)).toBe(true)
    expect(read(c.logFile)).not.toContain('left by a run')

    // The run's id, but the record is from another boot.
    const marked = start({ CIDMIRROR_RUN_ID: 'beef' })
    write({ ...base, runId: 'beef', bootId: 'another-boot', pgid: marked })
    c = ctx()
    await p.run(c)
    expect(alive(marked)).toBe(true)
    expect(read(c.logFile)).not.toContain('left by a run')

    // This boot, this run id: ended (TERM is enough for sleep).
    write({ ...base, runId: 'beef', bootId: BOOT_ID, pgid: marked })
    c = ctx()
    await p.run(c)
    expect(alive(marked)).toBe(false)
    expect(read(c.logFile)).toContain(`cidmirror: ended 1 process (PID ${marked}) left by a run of daemon 1`)
    expect(alive(other)).toBe(true)
  })
})
