import { type ChildProcess, execFile, spawn } from 'node:child_process'
import {
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { openDatabase } from '../src/db.ts'
import { openMirrorIndex } from '../src/index/index.ts'
import type { WebMirrorStatus, WireMirrorStatus } from '../src/sync/status.ts'
import { kuboRepo } from './helpers/index-kubo.ts'
import { partialFile, type Rsyncd, startRsyncd } from './helpers/rsyncd.ts'
import { commandMirror, freePort, TOKEN, tempDir, waitFor, writeToml } from './jobs-helpers.ts'

const MAIN = fileURLToPath(new URL('../src/cli/main.ts', import.meta.url))
const run = promisify(execFile)

let tmp: ReturnType<typeof tempDir>
let upstream: Rsyncd | undefined
let daemons: ChildProcess[] = []
let strayPids: string | undefined
let strays: Proc[] = []

beforeEach(() => {
  tmp = tempDir('cidmirror-daemon-')
})
afterEach(async () => {
  for (const d of daemons) {
    if (d.exitCode === null && d.signalCode === null) {
      d.kill('SIGKILL')
      await new Promise((r) => d.once('exit', r))
    }
  }
  daemons = []
  if (strayPids && existsSync(strayPids)) {
    for (const pid of readFileSync(strayPids, 'utf8').split('\n').filter(Boolean)) {
      try {
        process.kill(Number(pid), 'SIGKILL')
      } catch {}
    }
  }
  strayPids = undefined
  for (const p of strays) {
    if (alive(p)) process.kill(p.pid, 'SIGKILL')
  }
  strays = []
  await upstream?.stop()
  upstream = undefined
  tmp.cleanup()
})

function startDaemon(config: string): ChildProcess {
  const child = spawn(process.execPath, [MAIN, 'daemon', '-c', config], {
    stdio: ['ignore', 'ignore', 'pipe'],
    env: { ...process.env, CIDMIRROR_LOG_LEVEL: 'info' },
  })
  let log = ''
  child.stderr?.on('data', (d: Buffer) => {
    log += d.toString()
  })
  Object.defineProperty(child, 'log', { get: () => log })
  daemons.push(child)
  return child
}

async function cli(args: string[]): Promise<string> {
  const { stdout } = await run(process.execPath, [MAIN, ...args], {
    env: { ...process.env, CIDMIRROR_TOKEN: '' },
  })
  return stdout
}

async function jobs(managerUrl: string): Promise<WebMirrorStatus[]> {
  const res = await fetch(`${managerUrl}/jobs`)
  return (await res.json()) as WebMirrorStatus[]
}

async function detail(managerUrl: string, name: string): Promise<WireMirrorStatus | undefined> {
  const res = await fetch(`${managerUrl}/workers/w1/jobs`)
  if (!res.ok) return undefined
  return ((await res.json()) as WireMirrorStatus[]).find((j) => j.name === name)
}

/** A process as /proc shows it: with its start time, so a reused PID is never taken for it. */
interface Proc {
  pid: number
  ppid: number
  start: string
  comm: string
  cmd: string
}

function proc(pid: number): Proc | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
    if (fields[0] === 'Z') return undefined
    return {
      pid,
      ppid: Number(fields[1]),
      start: fields[19] ?? '',
      comm: stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')')),
      cmd: readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' '),
    }
  } catch {
    return undefined
  }
}

/** The same process (PID and start time), not a zombie. */
function alive(p: Proc): boolean {
  return proc(p.pid)?.start === p.start
}

/** Every live process under `pid`. */
function descendants(pid: number): Proc[] {
  const all = readdirSync('/proc')
    .filter((e) => /^\d+$/.test(e))
    .map((e) => proc(Number(e)))
    .filter((p): p is Proc => p !== undefined)
  const out: Proc[] = []
  const parents = new Set([pid])
  for (let grew = true; grew; ) {
    grew = false
    for (const p of all) {
      if (parents.has(p.ppid) && !parents.has(p.pid)) {
        parents.add(p.pid)
        out.push(p)
        grew = true
      }
    }
  }
  return out
}

describe('cidmirror daemon', () => {
  it('syncs an rsync upstream, indexes it, and syncs again incrementally on `jobs start`', async () => {
    upstream = await startRsyncd()
    const root = upstream.root
    writeFileSync(join(root, 'keep.txt'), 'keep me\n')
    writeFileSync(join(root, 'change.txt'), 'version 1\n')
    writeFileSync(join(root, 'gone.txt'), 'soon deleted\n')
    mkdirSync(join(root, 'pool/main'), { recursive: true })
    writeFileSync(join(root, 'pool/main/pkg.deb'), Buffer.alloc(200_000, 7))
    symlinkSync('pool/main/pkg.deb', join(root, 'latest.deb'))

    const port = await freePort()
    const manager = `http://127.0.0.1:${port}`
    const config = writeToml({
      dir: tmp.dir,
      managerPort: port,
      interval: '6h',
      mirrors: `[[mirrors]]\nname = "deb"\nprovider = "rsync"\nupstream = "${upstream.url}"\n`,
    })
    const d = startDaemon(config)
    const first = await waitFor(
      async () => (await jobs(manager)).find((j) => j.name === 'deb' && j.status === 'success'),
      'the first sync',
      45_000,
      200,
    ).catch((err) => {
      throw new Error(`${err.message}\n${(d as unknown as { log: string }).log}`)
    })
    const mirror = join(tmp.dir, 'mirrors', 'deb')
    expect(readFileSync(join(mirror, 'change.txt'), 'utf8')).toBe('version 1\n')
    expect(readlinkSync(join(mirror, 'latest.deb'))).toBe('pool/main/pkg.deb')
    expect(first.size).not.toBe('unknown')
    expect(first.next_schedule_ts - first.last_ended_ts).toBe(6 * 3600)
    const d1 = await detail(manager, 'deb')
    const index1 = d1?.details?.index as Record<string, unknown>
    expect(index1).toMatchObject({ mirror: 'deb', added: 5, deleted: 0 })
    const kubo = kuboRepo(tmp.dir)
    expect(index1.rootCid).toBe(kubo.rootCid(mirror))

    // The CLI, with flags after and before the subcommand, JSON when not a terminal.
    const listed = JSON.parse(await cli(['jobs', 'list', '-a', '-c', config])) as WebMirrorStatus[]
    expect(listed).toEqual(await jobs(manager))
    const filtered = JSON.parse(
      await cli(['jobs', '-m', manager, 'list', '-a', '-s', 'failed,paused']),
    ) as unknown[]
    expect(filtered).toEqual([])

    // Upstream changes: new, changed, deleted files and a new symlink.
    writeFileSync(join(root, 'change.txt'), 'version 2, longer\n')
    rmSync(join(root, 'gone.txt'))
    writeFileSync(join(root, 'new.txt'), 'new file\n')
    symlinkSync('new.txt', join(root, 'new-link'))
    await cli(['jobs', 'start', 'deb', '-m', manager, '--token', TOKEN])
    const second = await waitFor(
      async () =>
        (await jobs(manager)).find(
          (j) =>
            j.status === 'success' &&
            j.last_update_ts > first.last_update_ts - 1 &&
            j.last_started_ts > first.last_started_ts - 1 &&
            j.last_ended !== first.last_ended,
        ),
      'the second sync',
      45_000,
      200,
    )
    expect(second.status).toBe('success')
    expect(readFileSync(join(mirror, 'change.txt'), 'utf8')).toBe('version 2, longer\n')
    expect(existsSync(join(mirror, 'gone.txt'))).toBe(false)
    expect(readlinkSync(join(mirror, 'new-link'))).toBe('new.txt')
    const index2 = (await detail(manager, 'deb'))?.details?.index as Record<string, unknown>
    expect(index2).toMatchObject({ added: 2, changed: 1, deleted: 1 })
    expect(index2.rootCid).not.toBe(index1.rootCid)
    expect(index2.rootCid).toBe(kubo.rootCid(mirror))

    d.kill('SIGTERM')
    const code = await new Promise((r) => d.once('exit', (c) => r(c)))
    expect(code).toBe(0)
  })

  it("an upstream that goes away mid-sync: the last good tree stays, the status fails with rsync's reason, the index is untouched", async () => {
    upstream = await startRsyncd()
    const root = upstream.root
    writeFileSync(join(root, 'a.txt'), 'version 1\n')
    writeFileSync(join(root, 'b.txt'), 'b\n')
    const port = await freePort()
    const manager = `http://127.0.0.1:${port}`
    // --bwlimit makes the second sync slow enough to pull the upstream out from under it.
    const config = writeToml({
      dir: tmp.dir,
      managerPort: port,
      interval: '6h',
      mirrors: `[[mirrors]]\nname = "deb"\nprovider = "rsync"\nupstream = "${upstream.url}"\nrsync_options = ["--bwlimit=200"]\n`,
    })
    const d = startDaemon(config)
    const first = await waitFor(
      async () => (await jobs(manager)).find((j) => j.name === 'deb' && j.status === 'success'),
      'the first sync',
      45_000,
      200,
    )
    const index1 = (await detail(manager, 'deb'))?.details?.index as Record<string, unknown>
    const mirror = join(tmp.dir, 'mirrors', 'deb')

    writeFileSync(join(root, 'a.txt'), 'version 2\n')
    writeFileSync(join(root, 'big.bin'), Buffer.alloc(20_000_000, 1))
    rmSync(join(root, 'b.txt'))
    await cli(['jobs', 'start', 'deb', '-m', manager, '--token', TOKEN])
    await waitFor(
      async () => (await jobs(manager)).find((j) => j.name === 'deb' && j.status === 'syncing'),
      'the second sync to start',
    )
    await waitFor(() => partialFile(mirror, 'big.bin', 100_000), 'big.bin to be half-received', 30_000)
    await upstream.stop()
    upstream = undefined
    const failed = await waitFor(
      async () => (await jobs(manager)).find((j) => j.name === 'deb' && j.status === 'failed'),
      'the failure',
      45_000,
      200,
    )
    const status = await detail(manager, 'deb')
    expect(status?.error_msg).toMatch(/rsync exited \d+: \S/)
    // tunasync's semantics: last_update is the last success; size keeps its known value.
    expect(failed.last_update).toBe(first.last_update)
    expect(failed.size).toBe(first.size)
    // The last good tree: old contents, nothing deleted, no partial file.
    expect(readFileSync(join(mirror, 'a.txt'), 'utf8')).toBe('version 1\n')
    expect(readFileSync(join(mirror, 'b.txt'), 'utf8')).toBe('b\n')
    expect(existsSync(join(mirror, 'big.bin'))).toBe(false)
    // The index runs after successes only: once the daemon lets go of the database, it still
    // describes that tree.
    d.kill('SIGTERM')
    await new Promise((r) => d.once('exit', r))
    const db = await openDatabase(join(tmp.dir, 'db'))
    try {
      const last = await openMirrorIndex(db, 'deb', mirror).lastScan()
      expect(last).toMatchObject({ id: index1.id, rootCid: index1.rootCid })
    } finally {
      await db.close()
    }
  })

  it('kill -9 mid-sync, restart: the job reruns and no status is stuck in syncing', async () => {
    const port = await freePort()
    const manager = `http://127.0.0.1:${port}`
    strayPids = join(tmp.dir, 'pids')
    const config = writeToml({
      dir: tmp.dir,
      managerPort: port,
      mirrors:
        commandMirror('slow', `echo $$ >> ${strayPids}; exec sleep 20`) + commandMirror('quick', 'echo done'),
    })
    const d = startDaemon(config)
    const syncing = await waitFor(
      async () => (await jobs(manager)).find((j) => j.name === 'slow' && j.status === 'syncing'),
      'slow to sync',
      30_000,
      100,
    )
    await waitFor(
      async () => (await jobs(manager)).find((j) => j.name === 'quick' && j.status === 'success'),
      'quick',
    )
    d.kill('SIGKILL')
    await new Promise((r) => d.once('exit', r))
    // The manager died with it; its last word was "syncing".
    const again = startDaemon(config)
    const rerun = await waitFor(
      async () =>
        (await jobs(manager)).find(
          (j) =>
            j.name === 'slow' &&
            j.status === 'syncing' &&
            j.last_started_ts >= syncing.last_started_ts &&
            j.last_ended_ts > 0,
        ),
      'the rerun',
      30_000,
      100,
    ).catch((err) => {
      throw new Error(`${err.message}\n${(again as unknown as { log: string }).log}`)
    })
    expect(rerun.last_ended_ts).toBeGreaterThanOrEqual(syncing.last_started_ts)
    const quick = (await jobs(manager)).find((j) => j.name === 'quick')!
    expect(quick.status).toBe('success')
    // A clean stop reports the interruption instead of leaving "syncing" behind.
    again.kill('SIGTERM')
    expect(await new Promise((r) => again.once('exit', (c) => r(c)))).toBe(0)
    const third = startDaemon(config)
    const slow = await waitFor(async () => detail(manager, 'slow'), 'the manager', 30_000, 100)
    expect(['failed', 'pre-syncing', 'syncing']).toContain(slow.status)
    third.kill('SIGTERM')
    await new Promise((r) => third.once('exit', r))
  })
  /**
   * kill -9 of the daemon in the middle of a throttled rsync transfer, then a restart at full speed.
   * `killWatchdog` kills the run's watchdog first, so the rsync pair is orphaned and only the run
   * record can lead the restarted daemon to it.
   */
  async function killMidTransferAndRestart(killWatchdog: boolean) {
    upstream = await startRsyncd()
    for (let i = 0; i < 3; i++)
      writeFileSync(join(upstream.root, `big${i}.bin`), Buffer.alloc(2_000_000, i + 1))
    const port = await freePort()
    const manager = `http://127.0.0.1:${port}`
    const mirror = join(tmp.dir, 'mirrors', 'deb')
    const config = (throttle: boolean) =>
      writeToml({
        dir: tmp.dir,
        managerPort: port,
        interval: '6h',
        mirrors: `[[mirrors]]\nname = "deb"\nprovider = "rsync"\nupstream = "${upstream!.url}"\n${throttle ? 'rsync_options = ["--bwlimit=100"]\n' : ''}`,
      })
    const d = startDaemon(config(true))
    await waitFor(() => partialFile(mirror, 'big0.bin', 50_000), 'rsync to be inside big0.bin', 45_000).catch(
      (err) => {
        throw new Error(`${err.message}\n${(d as unknown as { log: string }).log}`)
      },
    )
    const old = descendants(d.pid!)
    strays.push(...old)
    const rsyncs = old.filter((p) => p.comm === 'rsync')
    expect(rsyncs.length).toBeGreaterThanOrEqual(2) // the client and its receiver
    const watchdogs = old.filter((p) => p.cmd.includes('cidmirror-watchdog'))
    expect(watchdogs.length).toBe(1)
    if (killWatchdog) {
      for (const w of watchdogs) process.kill(w.pid, 'SIGKILL')
      await waitFor(() => watchdogs.every((w) => !alive(w)), 'the watchdog to be gone')
    }
    d.kill('SIGKILL')
    await new Promise((r) => d.once('exit', r))
    if (killWatchdog) {
      for (const p of rsyncs) expect(alive(p)).toBe(true) // orphaned, still transferring
    } else {
      // The watchdog alone ends them, no restart needed.
      await waitFor(() => !old.some(alive), 'the watchdog to end the old run', 30_000)
    }

    const again = startDaemon(config(false))
    // Watched while the restarted daemon works: never an rsync of its own beside one of the old.
    let beside = false
    const synced = await waitFor(
      async () => {
        if (descendants(again.pid!).some((p) => p.comm === 'rsync') && old.some(alive)) beside = true
        const s = await detail(manager, 'deb')
        return s?.status === 'success' ? s : undefined
      },
      'the sync after the restart',
      45_000,
      20,
    ).catch((err) => {
      throw new Error(`${err.message}\n${(again as unknown as { log: string }).log}`)
    })
    expect(beside).toBe(false)
    for (const p of old) expect(alive(p)).toBe(false)
    // Its first attempt succeeded: no failed attempt's log (the killed one's stays `.log`).
    const logs = readdirSync(join(tmp.dir, 'log', 'deb'))
    expect(logs.filter((f) => f.endsWith('.fail'))).toEqual([])
    expect(synced.error_msg).toBe('')
    for (let i = 0; i < 3; i++) {
      expect(readFileSync(join(mirror, `big${i}.bin`)).equals(Buffer.alloc(2_000_000, i + 1))).toBe(true)
    }
    const runLog = readFileSync(join(tmp.dir, 'log', 'deb', 'latest'), 'utf8')
    again.kill('SIGTERM')
    await new Promise((r) => again.once('exit', r))
    return { oldDaemon: d.pid!, rsyncs, runLog, daemonLog: (again as unknown as { log: string }).log }
  }

  it('kill -9 during an rsync transfer: its watchdog ends the rsync pair, the restart syncs at the first attempt', async () => {
    const { runLog } = await killMidTransferAndRestart(false)
    expect(runLog).not.toContain('left by a run') // the watchdog left nothing to end
  })

  it('kill -9 of the daemon and its watchdog: the restarted daemon ends the orphaned rsync before it syncs', async () => {
    const { oldDaemon, rsyncs, runLog, daemonLog } = await killMidTransferAndRestart(true)
    const ended = new RegExp(
      `^cidmirror: ended \\d+ process(?:es)? \\(PID ([\\d, ]+)\\) left by a run of daemon ${oldDaemon} started \\S+, with SIG(TERM|KILL)$`,
      'm',
    ).exec(runLog)
    expect(ended, runLog).not.toBeNull()
    for (const p of rsyncs) expect(ended![1]!.split(', ').map(Number)).toContain(p.pid)
    expect(daemonLog).toContain('ended processes left by a previous daemon')
  })
})
