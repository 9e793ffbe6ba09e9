import { randomUUID } from 'node:crypto'
import { readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs'
import type { Leftovers } from '../provider.ts'
import { allPids, endProcesses, type ProcStat, procStat } from './process-group.ts'

/**
 * The record of a run in progress, a small JSON file per job (`<log_dir>/<name>.run`), written before
 * its program starts and removed once its whole process group is gone. A file left behind means a
 * previous daemon died during the run; before the job syncs that tree again, `endLeftovers` ends what
 * is still alive of that run, so there are never two syncs on one tree.
 *
 * Who belongs to the run is decided without trusting PIDs, which the kernel reuses: every process of
 * a run carries `CIDMIRROR_RUN_ID=<random id>` in its environment (children inherit it), and the
 * record holds that id and the boot id. A process counts only when it runs on the same boot and its
 * /proc/PID/environ has the id; the PIDs and process group in the file are for people reading it.
 */
export interface RunRecord {
  /** `CIDMIRROR_RUN_ID` of every process of the run. */
  runId: string
  /** /proc/sys/kernel/random/boot_id when the run started: after a reboot nothing of it is left. */
  bootId: string
  /** The daemon that started the run. */
  daemonPid: number
  startedAt: string
  /** The program and its group, once started. */
  command: string
  pgid?: number
}

export const RUN_ID_ENV = 'CIDMIRROR_RUN_ID'

let cachedBootId: string | undefined
export function bootId(): string {
  if (cachedBootId === undefined) {
    try {
      cachedBootId = readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim()
    } catch {
      cachedBootId = ''
    }
  }
  return cachedBootId
}

export function newRunRecord(command: string): RunRecord {
  return {
    runId: randomUUID(),
    bootId: bootId(),
    daemonPid: process.pid,
    startedAt: new Date().toISOString(),
    command,
  }
}

/** Writes the record whole or not at all (a temporary file renamed over it). */
export function writeRunRecord(file: string, record: RunRecord): void {
  const tmp = `${file}.${process.pid}.tmp`
  writeFileSync(tmp, `${JSON.stringify(record)}\n`)
  renameSync(tmp, file)
}

export function readRunRecord(file: string): RunRecord | undefined {
  let text: string
  try {
    text = readFileSync(file, 'utf8')
  } catch {
    return undefined
  }
  try {
    const r = JSON.parse(text) as Partial<RunRecord>
    if (typeof r.runId === 'string' && typeof r.bootId === 'string') return r as RunRecord
  } catch {}
  return undefined
}

export function removeRunRecord(file: string): void {
  rmSync(file, { force: true })
}

/** The live processes of the recorded run: same boot, its run id in their environment. */
export function processesOf(record: RunRecord): ProcStat[] {
  if (record.bootId !== bootId() || record.runId === '') return []
  const marker = `\0${RUN_ID_ENV}=${record.runId}\0`
  const out: ProcStat[] = []
  for (const pid of allPids()) {
    if (pid === process.pid) continue
    let env: string
    try {
      env = readFileSync(`/proc/${pid}/environ`, 'latin1')
    } catch {
      continue // gone, or another user's
    }
    if (!`\0${env}`.includes(marker)) continue
    const s = procStat(pid)
    if (s && s.state !== 'Z') out.push(s)
  }
  return out
}

/**
 * Ends what is alive of the run recorded in `file` (TERM, KILL after `graceMs`, then waits until it
 * is gone) and removes the file. Resolves with what it found, or undefined when nothing was left.
 */
export async function endLeftovers(file: string, graceMs: number): Promise<Leftovers | undefined> {
  const record = readRunRecord(file)
  if (!record) {
    removeRunRecord(file) // none, or a torn file: nothing to find with it
    return undefined
  }
  const found = processesOf(record)
  let result: Leftovers | undefined
  if (found.length > 0) {
    // Each signal goes to processes checked just before, never to a group number alone.
    const signal = await endProcesses(
      (sig) => {
        for (const p of processesOf(record)) {
          try {
            process.kill(p.pid, sig)
          } catch {}
        }
      },
      () => processesOf(record).length > 0,
      graceMs,
    )
    result = {
      pids: found.map((p) => p.pid),
      signal: signal ?? 'SIGTERM',
      daemonPid: record.daemonPid,
      startedAt: record.startedAt,
    }
  }
  removeRunRecord(file)
  return result
}
