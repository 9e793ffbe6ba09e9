import { readdirSync, readFileSync } from 'node:fs'

/**
 * Process groups as Linux shows them in /proc: who is in one, whether any of it still lives, and
 * ending it (TERM, KILL after a grace period, then waiting until the last member is gone).
 */

export function killGroup(pgid: number, signal: NodeJS.Signals | 0): boolean {
  try {
    process.kill(-pgid, signal)
    return true
  } catch {
    return false
  }
}

/** The fields of /proc/PID/stat this module reads. */
export interface ProcStat {
  pid: number
  /** One letter: R, S, D, Z, T ... */
  state: string
  ppid: number
  pgrp: number
  /** Clock ticks after boot at which the process started: with the boot id, who a PID was. */
  startTime: number
}

export function procStat(pid: number): ProcStat | undefined {
  let stat: string
  try {
    stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
  } catch {
    return undefined
  }
  // pid (comm) state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt utime stime
  // cutime cstime priority nice threads itrealvalue starttime: comm may hold spaces and parentheses,
  // so count from the last ')'.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  return {
    pid,
    state: fields[0] ?? '',
    ppid: Number(fields[1]),
    pgrp: Number(fields[2]),
    startTime: Number(fields[19]),
  }
}

/** Every PID in /proc. */
export function allPids(): number[] {
  let entries: string[]
  try {
    entries = readdirSync('/proc')
  } catch {
    return []
  }
  return entries.filter((e) => /^\d+$/.test(e)).map(Number)
}

/**
 * The live (not zombie) members of a group. Zombies are skipped: orphans wait there for a PID 1 that
 * may never reap them (e.g. in containers), and they hold nothing.
 */
export function groupMembers(pgid: number): ProcStat[] {
  if (!killGroup(pgid, 0)) return []
  const out: ProcStat[] = []
  for (const pid of allPids()) {
    const s = procStat(pid)
    if (s && s.pgrp === pgid && s.state !== 'Z') out.push(s)
  }
  return out
}

/** True while a live process of the group exists. */
export function groupAlive(pgid: number): boolean {
  return groupMembers(pgid).length > 0
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

/**
 * Resolves once `alive()` is false (true), or at `until` (false; never, when undefined). Polls:
 * nothing signals the end of processes that are not our children. The pause grows from 10 to 200 ms.
 */
export async function waitUntilGone(alive: () => boolean, until?: number): Promise<boolean> {
  for (let pause = 10; ; pause = Math.min(200, pause * 2)) {
    if (!alive()) return true
    if (until !== undefined && Date.now() >= until) return false
    await sleep(until === undefined ? pause : Math.max(0, Math.min(pause, until - Date.now())))
  }
}

/**
 * Ends processes: `send(SIGTERM)`, `send(SIGKILL)` when something outlives `graceMs`, then waits
 * until `alive()` is false. Resolves with the last signal it had to send, or undefined when nothing
 * was alive.
 */
export async function endProcesses(
  send: (signal: 'SIGTERM' | 'SIGKILL') => void,
  alive: () => boolean,
  graceMs: number,
): Promise<'SIGTERM' | 'SIGKILL' | undefined> {
  if (!alive()) return undefined
  send('SIGTERM')
  if (await waitUntilGone(alive, Date.now() + graceMs)) return 'SIGTERM'
  send('SIGKILL')
  await waitUntilGone(alive)
  return 'SIGKILL'
}

/** Ends what is left of a group (see endProcesses); a signal goes only to a group seen alive just before. */
export function endGroup(pgid: number, graceMs: number): Promise<'SIGTERM' | 'SIGKILL' | undefined> {
  return endProcesses(
    (sig) => killGroup(pgid, sig),
    () => groupAlive(pgid),
    graceMs,
  )
}
