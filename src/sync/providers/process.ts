import { closeSync, openSync, readdirSync, readFileSync, writeSync } from 'node:fs'
import { execa } from 'execa'

/**
 * The one place provider processes are run: in their own process group, output appended to the
 * run's log file, stopped as a group (TERM, then KILL after a grace period) on timeout or abort.
 */
export interface ProcessSpec {
  file: string
  args: string[]
  cwd: string
  /** Added to the worker's environment. */
  env: Record<string, string>
  /** stdout and stderr are appended here. */
  logFile: string
  signal: AbortSignal
  /** `Date.now()` at which the run times out, or undefined for none. */
  deadline: number | undefined
  killGraceMs: number
  /** Address-space limit in bytes (`ulimit -v`), or undefined. */
  memoryLimit: number | undefined
}

export interface ProcessOutcome {
  exitCode: number | undefined
  /** Signal name when the process died from one. */
  signal: string | undefined
  timedOut: boolean
  aborted: boolean
  /** The process could not be started (e.g. `ENOENT`). */
  spawnError: Error | undefined
}

export function killGroup(pgid: number, signal: NodeJS.Signals | 0): boolean {
  try {
    process.kill(-pgid, signal)
    return true
  } catch {
    return false
  }
}

/**
 * True while a live process of the group exists. On Linux this reads /proc and skips zombies (orphans
 * wait there for a PID 1 that may never reap them, e.g. in containers); elsewhere it asks kill(0).
 */
export function groupAlive(pgid: number): boolean {
  if (!killGroup(pgid, 0)) return false
  let entries: string[]
  try {
    entries = readdirSync('/proc')
  } catch {
    return true
  }
  for (const e of entries) {
    if (!/^\d+$/.test(e)) continue
    let stat: string
    try {
      stat = readFileSync(`/proc/${e}/stat`, 'utf8')
    } catch {
      continue
    }
    // pid (comm) state ppid pgrp ...: comm may hold spaces and parentheses, so split after the last ')'
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
    if (Number(fields[2]) === pgid && fields[0] !== 'Z') return true
  }
  return false
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

/** Appends a line to the log (cidmirror's own notes between the processes' output). */
export function appendLog(logFile: string, line: string): void {
  const fd = openSync(logFile, 'a')
  try {
    writeSync(fd, `${line}\n`)
  } finally {
    closeSync(fd)
  }
}

export async function runProcess(spec: ProcessSpec): Promise<ProcessOutcome> {
  if (spec.signal.aborted) {
    return { exitCode: undefined, signal: undefined, timedOut: false, aborted: true, spawnError: undefined }
  }
  let file = spec.file
  let args = spec.args
  if (spec.memoryLimit !== undefined) {
    // No cgroups: an address-space limit (RLIMIT_AS) set by the shell, then the program in its place.
    const kib = Math.max(1, Math.floor(spec.memoryLimit / 1024))
    args = ['-c', 'ulimit -v "$0" || exit 126; exec "$@"', String(kib), file, ...args]
    file = 'sh'
  }

  const fd = openSync(spec.logFile, 'a')
  let why: 'timeout' | 'abort' | undefined
  let graceEnd = 0
  let killTimer: NodeJS.Timeout | undefined
  let timeoutTimer: NodeJS.Timeout | undefined
  let pid: number | undefined
  const stop = (reason: 'timeout' | 'abort') => {
    if (why || pid === undefined) return
    why = reason
    graceEnd = Date.now() + spec.killGraceMs
    killGroup(pid, 'SIGTERM')
    killTimer = setTimeout(() => killGroup(pid as number, 'SIGKILL'), spec.killGraceMs)
  }
  const onAbort = () => stop('abort')
  // The log's file descriptor goes straight to the child (no pipe through this process), so output
  // survives a busy event loop and grandchildren holding it never keep the run waiting. execa's types
  // list only fds up to 9; its runtime hands any fd to spawn().
  const logFd = fd as 3
  try {
    const child = execa(file, args, {
      cwd: spec.cwd,
      env: spec.env,
      extendEnv: true,
      detached: true,
      stdin: 'ignore',
      stdout: logFd,
      stderr: logFd,
      reject: false,
    })
    pid = child.pid
    if (pid !== undefined) {
      spec.signal.addEventListener('abort', onAbort, { once: true })
      if (spec.deadline !== undefined) {
        timeoutTimer = setTimeout(() => stop('timeout'), Math.max(0, spec.deadline - Date.now()))
      }
    }
    const result = await child
    if (pid !== undefined) {
      // The leader is gone; anything it left in its group goes too, TERM first.
      if (!why && groupAlive(pid)) {
        graceEnd = Date.now() + spec.killGraceMs
        killGroup(pid, 'SIGTERM')
      }
      while (groupAlive(pid) && Date.now() < graceEnd) await sleep(50)
      killGroup(pid, 'SIGKILL')
    }
    const spawnError =
      pid === undefined || (result.failed && result.exitCode === undefined && result.signal === undefined)
        ? ((result.cause as Error | undefined) ?? new Error(result.shortMessage ?? 'cannot start'))
        : undefined
    return {
      exitCode: result.exitCode,
      signal: result.signal,
      timedOut: why === 'timeout',
      aborted: why === 'abort',
      spawnError,
    }
  } finally {
    spec.signal.removeEventListener('abort', onAbort)
    clearTimeout(timeoutTimer)
    clearTimeout(killTimer)
    closeSync(fd)
  }
}
