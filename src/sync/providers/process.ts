import { closeSync, openSync, writeSync } from 'node:fs'
import { execa } from 'execa'
import { clearLongTimeout, type LongTimeout, setLongTimeout } from '../../util/long-timer.ts'
import { endGroup, groupAlive } from './process-group.ts'
import { newRunRecord, RUN_ID_ENV, removeRunRecord, writeRunRecord } from './run-record.ts'
import { startWatchdog, type Watchdog } from './watchdog.ts'

/**
 * The one place provider processes are run: in their own process group, output appended to the
 * run's log file, stopped as a group (TERM, then KILL after a grace period) on timeout or abort. A run
 * ends when the whole group is gone, never earlier: what it left behind could otherwise still write
 * into the tree while the next run (or the next stage) starts.
 *
 * Nor does a run outlive the daemon: a watchdog (watchdog.ts) ends the group when this process dies,
 * and the run record (run-record.ts) lets the next daemon find what is left should the watchdog die
 * too.
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
  /** Where the run is recorded while it lasts (see run-record.ts). */
  recordFile: string
}

export interface ProcessOutcome {
  exitCode: number | undefined
  /** Signal name when the process died from one. */
  signal: string | undefined
  timedOut: boolean
  aborted: boolean
  /** The process could not be started (e.g. `ENOENT`). */
  spawnError: Error | undefined
  /**
   * The last signal it took to end the group (timeout, abort, or leftovers of a leader that exited),
   * `SIGKILL` when something outlived TERM by the grace period; undefined when nothing was left.
   */
  ended: 'SIGTERM' | 'SIGKILL' | undefined
}

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
    return {
      exitCode: undefined,
      signal: undefined,
      timedOut: false,
      aborted: true,
      spawnError: undefined,
      ended: undefined,
    }
  }
  let file = spec.file
  let args = spec.args
  if (spec.memoryLimit !== undefined) {
    // No cgroups: an address-space limit (RLIMIT_AS) set by the shell, then the program in its place.
    const kib = Math.max(1, Math.floor(spec.memoryLimit / 1024))
    args = ['-c', 'ulimit -v "$0" || exit 126; exec "$@"', String(kib), file, ...args]
    file = 'sh'
  }

  const record = newRunRecord([spec.file, ...spec.args].join(' ').slice(0, 500))
  try {
    writeRunRecord(spec.recordFile, record)
  } catch (err) {
    return {
      exitCode: undefined,
      signal: undefined,
      timedOut: false,
      aborted: false,
      spawnError: new Error(`cannot write the run record ${spec.recordFile}: ${(err as Error).message}`),
      ended: undefined,
    }
  }

  let fd: number | undefined
  let why: 'timeout' | 'abort' | undefined
  let ending: Promise<ProcessOutcome['ended']> | undefined
  let timeoutTimer: LongTimeout | undefined
  let watchdog: Watchdog | undefined
  let pid: number | undefined
  const stop = (reason: 'timeout' | 'abort') => {
    if (why || pid === undefined) return
    why = reason
    ending = endGroup(pid, spec.killGraceMs)
  }
  const onAbort = () => stop('abort')
  try {
    fd = openSync(spec.logFile, 'a')
    // The log's file descriptor goes straight to the child (no pipe through this process), so output
    // survives a busy event loop and grandchildren holding it never keep the run waiting. execa's
    // types list only fds up to 9; its runtime hands any fd to spawn().
    const logFd = fd as 3
    const child = execa(file, args, {
      cwd: spec.cwd,
      env: { ...spec.env, [RUN_ID_ENV]: record.runId },
      extendEnv: true,
      detached: true,
      stdin: 'ignore',
      stdout: logFd,
      stderr: logFd,
      reject: false,
    })
    pid = child.pid
    if (pid !== undefined) {
      try {
        writeRunRecord(spec.recordFile, { ...record, pgid: pid })
      } catch {} // the record without the group still finds the run by its id
      watchdog = startWatchdog(pid, spec.killGraceMs)
      spec.signal.addEventListener('abort', onAbort, { once: true })
      if (spec.deadline !== undefined) {
        timeoutTimer = setLongTimeout(() => stop('timeout'), Math.max(0, spec.deadline - Date.now()))
      }
    }
    const result = await child
    spec.signal.removeEventListener('abort', onAbort)
    clearLongTimeout(timeoutTimer)
    // The leader is gone; whatever it left in its group goes too (TERM first), and the run lasts
    // until the last of them has exited.
    const ended = pid === undefined ? undefined : await (ending ?? endGroup(pid, spec.killGraceMs))
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
      ended,
    }
  } finally {
    spec.signal.removeEventListener('abort', onAbort)
    clearLongTimeout(timeoutTimer)
    // Only a bug leaves the group alive here; then the watchdog and the record stay for it.
    if (pid === undefined || !groupAlive(pid)) {
      watchdog?.disarm()
      try {
        removeRunRecord(spec.recordFile)
      } catch {}
    }
    if (fd !== undefined) closeSync(fd)
  }
}
