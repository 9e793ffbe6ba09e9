/**
 * The manager's database on a real full filesystem: a 2 MiB tmpfs, mounted in a mount namespace of its
 * own (held by a `sleep` so that it outlives a manager restart, and gone with it), filled by a file.
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process'
import { closeSync, mkdirSync, openSync, rmSync, writeSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { freePort, TOKEN, tempDir, waitFor, writeToml } from './jobs-helpers.ts'

const MAIN = fileURLToPath(new URL('../src/cli/main.ts', import.meta.url))

let tmp: ReturnType<typeof tempDir>
const children: ChildProcess[] = []

beforeEach(() => {
  tmp = tempDir('cidmirror-disk-full-')
})
afterEach(async () => {
  for (const c of children.splice(0).reverse()) {
    if (c.exitCode === null && c.signalCode === null) {
      c.kill('SIGKILL')
      await new Promise((r) => c.once('exit', r))
    }
  }
  tmp.cleanup()
})

/** A process holding a new mount namespace with a 2 MiB tmpfs at `dir`; resolves once mounted. */
async function tmpfsNamespace(dir: string): Promise<ChildProcess> {
  if (process.getuid?.() !== 0)
    throw new Error(
      'this test mounts a 2 MiB tmpfs: run it as root (CI does), e.g. `sudo npx vitest run test/manager-disk-full.test.ts`',
    )
  mkdirSync(dir, { recursive: true })
  const holder = spawn(
    'unshare',
    [
      '--mount',
      '--propagation',
      'private',
      'sh',
      '-c',
      'mount -t tmpfs -o size=2m tmpfs "$0" && echo mounted && exec sleep 100000',
      dir,
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  )
  children.push(holder)
  let out = ''
  holder.stdout?.on('data', (d: Buffer) => {
    out += d.toString()
  })
  holder.stderr?.on('data', (d: Buffer) => {
    out += d.toString()
  })
  await waitFor(() => {
    if (holder.exitCode !== null) throw new Error(`unshare/mount failed: ${out}`)
    return out.includes('mounted')
  }, 'the tmpfs')
  return holder
}

/** `cidmirror manager` inside the holder's mount namespace; its log lines collect in `log`. */
function managerIn(holder: ChildProcess, config: string): ChildProcess & { log: string } {
  const child = spawn(
    'nsenter',
    ['-t', String(holder.pid), '-m', process.execPath, MAIN, 'manager', '-c', config],
    {
      stdio: ['ignore', 'ignore', 'pipe'],
      env: { ...process.env, CIDMIRROR_LOG_LEVEL: 'info' },
    },
  ) as ChildProcess & { log: string }
  child.log = ''
  child.stderr?.on('data', (d: Buffer) => {
    child.log += d.toString()
  })
  children.push(child)
  return child
}

async function stop(child: ChildProcess): Promise<void> {
  child.kill('SIGTERM')
  await new Promise((r) => child.once('exit', r))
}

async function call(method: string, url: string, body?: unknown) {
  const res = await fetch(url, {
    method,
    headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  })
  const text = await res.text()
  return { status: res.status, body: text ? JSON.parse(text) : undefined }
}

/** A cidmirror worker's status push body (its own times, as cidmirror workers send). */
function status(name: string, s: string, at: number) {
  const t = new Date(at).toISOString()
  return {
    name,
    worker: 'w1',
    is_master: true,
    status: s,
    last_update: s === 'success' ? t : '0001-01-01T00:00:00Z',
    last_started: t,
    last_ended: s === 'success' || s === 'failed' ? t : '0001-01-01T00:00:00Z',
    next_schedule: '0001-01-01T00:00:00Z',
    upstream: `rsync://upstream.example/${name}/`,
    size: 'unknown',
    error_msg: '',
  }
}

/** Fills the filesystem of `dir` with one file, until not a byte more fits. */
function fill(file: string): void {
  const fd = openSync(file, 'w')
  const chunk = Buffer.alloc(64 * 1024, 1)
  try {
    for (let size = chunk.length; size >= 1; ) {
      try {
        writeSync(fd, chunk, 0, size)
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOSPC') throw err
        size = Math.floor(size / 2)
      }
    }
  } finally {
    closeSync(fd)
  }
}

describe("the manager's database on a full disk", () => {
  it('answers pushes with an error naming the disk, serves the real state, and stores it once space returns', async () => {
    const mnt = join(tmp.dir, 'mnt')
    const holder = await tmpfsNamespace(mnt)
    const port = await freePort()
    const config = writeToml({ dir: tmp.dir, managerPort: port, mirrors: '' })
    // The manager alone keeps `<[database] path>-manager`: on the tmpfs.
    execFileSync('sed', ['-i', `s|^path = .*|path = "${mnt}/db"|`, config])
    const dbPath = `${mnt}/db-manager`
    const base = `http://127.0.0.1:${port}`
    let m = managerIn(holder, config)
    await waitFor(() => fetch(`${base}/ping`).then((r) => r.ok), 'the manager')

    expect(
      (await call('POST', `${base}/workers`, { id: 'w1', url: 'http://127.0.0.1:1/', token: 'x' })).status,
    ).toBe(200)
    const t0 = Date.now() - 60_000
    expect(
      (await call('POST', `${base}/workers/w1/jobs/debian`, status('debian', 'syncing', t0))).status,
    ).toBe(200)

    // The disk fills. LevelDB's log may still have room in its last page: push until a write fails.
    const filler = `/proc/${holder.pid}/root${mnt}/fill`
    fill(filler)
    let refused: { status: number; body: { code: string; error: string } } | undefined
    let n = 0
    for (; n < 200 && !refused; n++) {
      const r = await call(
        'POST',
        `${base}/workers/w1/jobs/debian`,
        status('debian', 'success', t0 + n * 1000),
      )
      if (r.status !== 200) refused = r
    }
    expect(refused, 'a push while the disk is full').toBeDefined()
    expect(refused!.status).toBe(507)
    expect(refused!.body.code).toBe('CIDMIRROR_ERR_DB_WRITE')
    expect(refused!.body.error).toContain(dbPath)
    expect(refused!.body.error).toContain('ENOSPC')
    // The log says it once, naming the database and the errno.
    await waitFor(() => m.log.includes('cannot store writes'), 'the log line')
    const line = m.log.split('\n').find((l) => l.includes('cannot store writes'))!
    expect(line).toContain(dbPath)
    expect(line).toContain('ENOSPC')

    // /jobs serves the truth meanwhile, and more statuses still reach it.
    const last = t0 + (n - 1) * 1000
    const more = await call('POST', `${base}/workers/w1/jobs/ubuntu`, status('ubuntu', 'failed', last))
    expect(more.status).toBe(507)
    const during = (await (await fetch(`${base}/jobs`)).json()) as { name: string; status: string }[]
    expect(during.map((j) => [j.name, j.status])).toEqual([
      ['debian', 'success'],
      ['ubuntu', 'failed'],
    ])

    // Space returns: the manager stores what it held, by itself (no push needed), and pushes pass.
    rmSync(filler)
    await waitFor(() => m.log.includes('database takes writes again'), 'the writes to land', 60_000)
    expect(
      (await call('POST', `${base}/workers/w1/jobs/fedora`, status('fedora', 'success', last))).status,
    ).toBe(200)

    // A restart reads them back from the disk: nothing written after the failure was lost.
    await stop(m)
    m = managerIn(holder, config)
    await waitFor(() => fetch(`${base}/ping`).then((r) => r.ok), 'the restarted manager')
    const after = (await (await fetch(`${base}/jobs`)).json()) as {
      name: string
      status: string
      last_update_ts: number
    }[]
    expect(after.map((j) => [j.name, j.status])).toEqual([
      ['debian', 'success'],
      ['fedora', 'success'],
      ['ubuntu', 'failed'],
    ])
    expect(after[0]!.last_update_ts).toBe(Math.floor(last / 1000))
    expect(m.log).not.toContain('cannot store writes')
  }, 180_000)
})
