import { type ChildProcess, execFile, spawn } from 'node:child_process'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { workerJobsTable } from '../src/cli/commands/jobs.ts'
import { openDatabase } from '../src/db.ts'
import type { WireMirrorStatus } from '../src/sync/status.ts'
import { commandMirror, freePort, TOKEN, tempDir, waitFor } from './jobs-helpers.ts'

const MAIN = fileURLToPath(new URL('../src/cli/main.ts', import.meta.url))
const run = promisify(execFile)

let tmp: ReturnType<typeof tempDir>
let children: ChildProcess[] = []

beforeEach(() => {
  tmp = tempDir('cidmirror-stat-daemon-')
})
afterEach(async () => {
  for (const c of children) await stop(c, 'SIGKILL')
  children = []
  tmp.cleanup()
})

function start(role: 'daemon' | 'manager' | 'worker', config: string): ChildProcess {
  const child = spawn(process.execPath, [MAIN, role, '-c', config], {
    stdio: ['ignore', 'ignore', 'pipe'],
    env: { ...process.env, CIDMIRROR_LOG_LEVEL: 'warn' },
  })
  child.stderr?.resume()
  children.push(child)
  return child
}

async function stop(c: ChildProcess, signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
  if (c.exitCode !== null || c.signalCode !== null) return
  c.kill(signal)
  await new Promise((r) => c.once('exit', r))
}

async function cli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, [MAIN, ...args], {
      env: { ...process.env, CIDMIRROR_TOKEN: '', CIDMIRROR_DB: '', CIDMIRROR_CONFIG: '' },
    })
    return { code: 0, stdout, stderr }
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string }
    return { code: e.code, stdout: e.stdout, stderr: e.stderr }
  }
}

/** A config whose ports are all fixed, so the CLI can find manager and worker from it. */
async function config(readAccess?: string): Promise<{ file: string; manager: string; worker: string }> {
  const [mp, wp] = [await freePort(), await freePort()]
  const file = join(tmp.dir, 'cidmirror.toml')
  writeFileSync(
    file,
    `[global]
name = "w1"
mirror_dir = "${tmp.dir}/mirrors"
log_dir = "${tmp.dir}/log/{{.Name}}"
interval = "6h"
retry = 1

[manager]
api_base = "http://127.0.0.1:${mp}"
token = "${TOKEN}"
${readAccess ? `read_access = "${readAccess}"` : ''}

[server]
hostname = "127.0.0.1"
listen_addr = "127.0.0.1"
listen_port = ${wp}

[database]
path = "${tmp.dir}/db"

${commandMirror('deb', "mkdir -p 'pool/main' && printf hello > 'pool/main/a b+c.deb' && printf x > top.txt")}
`,
  )
  return { file, manager: `http://127.0.0.1:${mp}`, worker: `http://127.0.0.1:${wp}` }
}

async function indexed(manager: string): Promise<WireMirrorStatus> {
  return waitFor(
    async () => {
      const res = await fetch(`${manager}/workers/w1/jobs`)
      const list = (await res.json()) as WireMirrorStatus[]
      return list.find((j) => j.name === 'deb' && j.status === 'success' && j.details?.index)
    },
    'the first sync and its index',
    45_000,
    100,
  )
}

describe('cidmirror stat while a daemon holds the database', () => {
  it('answers through the read API exactly as it does offline', async () => {
    const c = await config()
    const mirror = join(tmp.dir, 'mirrors', 'deb')
    const d = start('daemon', c.file)
    const status = await indexed(c.manager)
    const asks = [
      ['stat', join(mirror, 'pool/main/a b+c.deb'), '-c', c.file],
      ['stat', join(mirror, 'pool/main/a b+c.deb'), '-c', c.file, '--json'],
      ['stat', mirror, '-c', c.file, '--json', '--name', 'deb'],
      ['stat', join(mirror, 'not-there'), '-c', c.file],
      ['stat', join(mirror, 'top.txt'), '-c', c.file, '--name', 'nope'],
    ]
    const online = await Promise.all(asks.map(cli))
    // `-m` asks a daemon at a URL, with the token given.
    const [byUrl, noToken] = await Promise.all([
      cli(['stat', join(mirror, 'top.txt'), '-m', c.manager, '--token', TOKEN, '--json']),
      cli(['stat', join(mirror, 'top.txt'), '-m', c.manager]),
    ])

    // The jobs table shows the root CID of the mirror's last sync.
    const rootCid = (status.details!.index as { rootCid: string }).rootCid
    const table = workerJobsTable([status]).split('\n')
    expect(table[0]).toContain('ROOT CID')
    expect(table[1]).toContain(rootCid)

    await stop(d)
    // One process at a time opens the database: offline, the commands run one after the other.
    const offline = []
    for (const a of asks) offline.push(await cli(a))
    expect(online).toEqual(offline)

    expect(online.slice(0, 3).map((r) => r.code)).toEqual([0, 0, 0])
    expect(online[0]?.stdout).toContain('path         pool/main/a b+c.deb')
    expect(JSON.parse(online[1]!.stdout)).toMatchObject({
      mirror: 'deb',
      path: 'pool/main/a b+c.deb',
      size: 5,
    })
    expect(JSON.parse(online[2]!.stdout)).toMatchObject({ path: '', kind: 'dir', cid: rootCid })
    for (const r of online.slice(3)) {
      expect(r.code).toBe(2)
      expect(r.stderr.trim().split('\n')).toHaveLength(1)
    }
    expect(online[3]?.stderr).toContain('is not in the index of mirror deb')
    expect(online[4]?.stderr).toContain('no mirror named nope')
    expect(byUrl.code).toBe(0)
    expect(JSON.parse(byUrl.stdout)).toMatchObject({ mirror: 'deb', path: 'top.txt' })
    expect(noToken.code).toBe(2)
    expect(noToken.stderr).toMatch(/^cidmirror: missing or wrong token.*HTTP 401/)
  }, 240_000)

  it('finds the worker when the manager runs alone, and says so in one line when nothing answers', async () => {
    const c = await config('public')
    const mirror = join(tmp.dir, 'mirrors', 'deb')
    const m = start('manager', c.file)
    const w = start('worker', c.file)
    await indexed(c.manager)
    const viaWorker = await cli(['stat', join(mirror, 'top.txt'), '-c', c.file, '--json'])
    expect(viaWorker.code).toBe(0)
    expect(JSON.parse(viaWorker.stdout)).toMatchObject({ mirror: 'deb', path: 'top.txt', kind: 'file' })
    // Public reads: the worker's read API answers without a token.
    const res = await fetch(`${c.worker}/index/mirrors/deb`)
    expect(res.status).toBe(200)
    expect(await res.json()).toMatchObject({ mirror: 'deb', files: 2, states: { present: 2 } })
    // The manager alone has no index of its own.
    expect((await fetch(`${c.manager}/index/mirrors`)).status).toBe(404)
    await stop(w)
    await stop(m)

    // Someone holds the database and no daemon answers: one line naming the database and each address.
    const db = await openDatabase(join(tmp.dir, 'db'))
    try {
      const held = await cli(['stat', join(mirror, 'top.txt'), '-c', c.file])
      expect(held.code).toBe(2)
      expect(held.stderr.trim().split('\n')).toHaveLength(1)
      expect(held.stderr).toContain(`database ${join(tmp.dir, 'db')} is held by another process`)
      expect(held.stderr).toContain(c.manager)
      expect(held.stderr).toContain(c.worker)
    } finally {
      await db.close()
    }
  }, 240_000)
})
