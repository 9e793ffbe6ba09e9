/**
 * `cidmirror audit` through a running daemon's `GET /replication/audit` gives what it gives offline,
 * text and JSON. The copies are real: a Kubo target in a private swarm on 127.0.0.1 pins the mirror's
 * tree through the replicator (as test/replicator-kubo.test.ts does), node A being the mirror's own
 * node (local, never counted). Then a real daemon holds the database and the CLI asks it.
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process'
import { mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import pino from 'pino'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { registerAuditRoutes } from '../src/api/index.ts'
import { policyOf } from '../src/daemon/index.ts'
import { openDatabase } from '../src/db.ts'
import { openMirrorIndex } from '../src/index/index.ts'
import { KuboNode } from '../src/ipfs/index.ts'
import { KuboTarget, publishMirror, Replicator } from '../src/replicator/index.ts'
import { createApiServer } from '../src/sync/http.ts'
import { disposeAll, Kubo } from './helpers/kubo.ts'
import { freePort, TOKEN, tempDir, waitFor } from './jobs-helpers.ts'

const MAIN = fileURLToPath(new URL('../src/cli/main.ts', import.meta.url))
const run = promisify(execFile)

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

let tmp: ReturnType<typeof tempDir>
let kubos: Kubo[] = []
let daemon: ChildProcess | undefined
let tree: string
let configFile: string
let manager: string

beforeAll(async () => {
  tmp = tempDir('cidmirror-audit-daemon-')
  tree = join(tmp.dir, 'mirrors', 'deb')
  mkdirSync(join(tree, 'pool'), { recursive: true })
  writeFileSync(join(tree, 'pool', 'a.deb'), 'hello')
  writeFileSync(join(tree, 'pool', 'dup.deb'), 'same\n')
  writeFileSync(join(tree, 'top.txt'), 'same\n')
  const [mp, wp] = [await freePort(), await freePort()]
  manager = `http://127.0.0.1:${mp}`
  configFile = join(tmp.dir, 'cidmirror.toml')
  // No [[mirrors]]: the daemon serves the index as it is, so its answers can equal the offline ones.
  writeFileSync(
    configFile,
    `[global]
name = "w1"
mirror_dir = "${tmp.dir}/mirrors"
log_dir = "${tmp.dir}/log/{{.Name}}"

[manager]
api_base = "${manager}"
token = "${TOKEN}"

[server]
hostname = "127.0.0.1"
listen_addr = "127.0.0.1"
listen_port = ${wp}

[database]
path = "${tmp.dir}/db"
`,
  )
  const db = await openDatabase(join(tmp.dir, 'db'))
  const nodes: KuboNode[] = []
  try {
    const idx = openMirrorIndex(db, 'deb', tree)
    const s = await idx.scan()
    kubos = await Kubo.swarm(2, { parent: tmp.dir, filestore: true })
    const [a, b] = kubos.map((k, i) => new KuboNode({ api: k.api, local: i === 0 })) as [KuboNode, KuboNode]
    nodes.push(a, b)
    await publishMirror(db, idx, a, { since: s.id })
    const source = async () => (await a.id()).addresses
    const r = new Replicator({
      db,
      counters: [new KuboTarget({ name: 'kubo-b', node: b, source })],
      policy: () => ({ n: 1 }),
      recheckMs: 3_600_000,
      backoff: { baseMs: 60_000, maxMs: 600_000 },
      log: pino({ level: 'silent' }),
    })
    await r.track({ scope: 'tree', cid: s.rootCid, mirror: 'deb', scan: s.id })
    expect(await r.runOnce()).toBe(1)
    expect(await b.pinned(s.rootCid)).toBe('recursive')
  } finally {
    for (const n of nodes) await n.close()
    await db.close()
  }
}, 240_000)

afterAll(async () => {
  if (daemon && daemon.exitCode === null && daemon.signalCode === null) {
    daemon.kill('SIGKILL')
    await new Promise((r) => daemon?.once('exit', r))
  }
  await disposeAll(kubos)
  tmp.cleanup()
})

const ASKS: string[][] = [
  [],
  ['--json'],
  ['-n', '2'],
  ['-n', '2', '--json'],
  ['--mirror', 'deb', '--json', '--under', '2', '-n', '3'],
  ['pool', '--mirror', 'deb', '--json'],
  ['CID:pool/dup.deb', '--json'],
  ['--mirror', 'nope'],
]

describe('cidmirror audit through a running daemon', () => {
  it('prints the same text and JSON as offline, with exit codes 0, 1 and 2; bad input is a 4xx', async () => {
    const asks = (cid: string) =>
      ASKS.map((a) => ['audit', ...a.map((x) => (x === 'CID:pool/dup.deb' ? cid : x)), '-c', configFile])
    // Offline first: the real copies as the replicator recorded them.
    const first = await cli(['audit', '-c', configFile, '--json'])
    const files = first.stdout
      .trim()
      .split('\n')
      .map(
        (l) =>
          JSON.parse(l) as {
            type: string
            path?: string
            cid?: string
            verified?: number
            copies?: { holder: string; local: boolean; scope: string }[]
          },
      )
    const dup = files.find((f) => f.path === 'pool/dup.deb')!
    const offline = []
    for (const a of asks(dup.cid!)) offline.push(await cli(a))

    // The Kubo target holds the tree (verified, counted); node A is local (listed, not counted).
    for (const f of files.filter((l) => l.type === 'file')) {
      expect(f.verified).toBe(1)
      expect(f.copies?.map((c) => c.scope)).toContain('tree')
    }
    expect(offline.map((r) => r.code)).toEqual([0, 0, 1, 1, 1, 0, 0, 2])
    expect(offline[0]!.stdout).toContain(
      'mirror deb: n = 1 (the default: the config sets no [replication] n)',
    )
    expect(offline[0]!.stdout).toMatch(/^ +queue +satisfied/m)
    expect(offline[6]!.stdout.split('\n').filter((l) => l.includes('"type":"file"'))).toHaveLength(2)

    daemon = spawn(process.execPath, [MAIN, 'daemon', '-c', configFile], {
      stdio: ['ignore', 'ignore', 'pipe'],
      env: { ...process.env, CIDMIRROR_LOG_LEVEL: 'warn' },
    })
    daemon.stderr?.resume()
    await waitFor(
      async () => (await fetch(`${manager}/ping`).catch(() => undefined))?.ok,
      'the daemon to answer',
      60_000,
      100,
    )
    const online = await Promise.all(asks(dup.cid!).map(cli))
    expect(online).toEqual(offline)

    // The route itself: NDJSON, the token asked for (read_access = "token"), bad input a 4xx.
    const auth = { authorization: `Bearer ${TOKEN}` }
    const ok = await fetch(`${manager}/replication/audit?mirror=deb`, { headers: auth })
    expect(ok.status).toBe(200)
    expect(ok.headers.get('content-type')).toContain('application/x-ndjson')
    expect((await ok.text()).trim().split('\n').at(-1)).toContain('"type":"totals"')
    expect((await fetch(`${manager}/replication/audit`)).status).toBe(401)
    const bad: [string, number, string][] = [
      ['mirror=a%2Fb', 400, 'CIDMIRROR_ERR_MIRROR_NAME'],
      ['mirror=..', 400, 'CIDMIRROR_ERR_MIRROR_NAME'],
      ['mirror=nope', 404, 'CIDMIRROR_ERR_MIRROR_NOT_INDEXED'],
      ['mirror=deb&path=../etc', 400, 'CIDMIRROR_ERR_INVALID_PATH'],
      ['path=pool', 400, 'CIDMIRROR_ERR_BAD_REQUEST'],
      ['cid=notacid', 400, 'CIDMIRROR_ERR_INVALID_CID'],
      ['under=-1', 400, 'CIDMIRROR_ERR_BAD_REQUEST'],
      ['n=abc', 400, 'CIDMIRROR_ERR_BAD_REQUEST'],
      ['n=1&n=2', 400, 'CIDMIRROR_ERR_BAD_REQUEST'],
      ['progress=maybe', 400, 'CIDMIRROR_ERR_BAD_REQUEST'],
      ['color=red', 400, 'CIDMIRROR_ERR_BAD_REQUEST'],
    ]
    for (const [qs, status, code] of bad) {
      const res = await fetch(`${manager}/replication/audit?${qs}`, { headers: auth })
      expect([qs, res.status, ((await res.json()) as { code: string }).code]).toEqual([qs, status, code])
    }
    // A re-check needs a replicator; this daemon runs none (no [replication] section).
    const check = await fetch(`${manager}/replication/check`, {
      method: 'POST',
      headers: { ...auth, 'content-type': 'application/json' },
      body: JSON.stringify({ mirror: 'deb' }),
    })
    expect(check.status).toBe(409)
    expect(((await check.json()) as { code: string }).code).toBe('CIDMIRROR_ERR_NO_REPLICATOR')
    const badCheck = await fetch(`${manager}/replication/check`, {
      method: 'POST',
      headers: { ...auth, 'content-type': 'application/json' },
      body: JSON.stringify({ mirror: '..', wait: 5 }),
    })
    expect(badCheck.status).toBe(400)
    expect((await fetch(`${manager}/replication/check`, { method: 'POST' })).status).toBe(401)
    const verify = await cli(['audit', '--verify', '-c', configFile])
    expect(verify.code).toBe(2)
    expect(verify.stderr.trim().split('\n')).toHaveLength(1)
    expect(verify.stderr).toContain('runs no replicator')
    daemon.kill('SIGTERM')
    await new Promise((r) => daemon?.once('exit', r))
  }, 240_000)

  it('POST /replication/check makes a running replicator re-check now: an unpin is seen and repaired', async () => {
    // The daemon does not run a replicator yet (the wiring of [replication] comes separately): the
    // routes are served here by the same server code, beside a real Replicator and the Kubo target.
    const db = await openDatabase(join(tmp.dir, 'db'))
    const nodes: KuboNode[] = []
    const app = createApiServer({ log: pino({ level: 'silent' }), token: TOKEN })
    try {
      const [a, b] = kubos.map((k, i) => new KuboNode({ api: k.api, local: i === 0 })) as [KuboNode, KuboNode]
      nodes.push(a, b)
      const source = async () => (await a.id()).addresses
      const r = new Replicator({
        db,
        counters: [new KuboTarget({ name: 'kubo-b', node: b, source })],
        policy: () => ({ n: 1 }),
        recheckMs: 3_600_000,
        backoff: { baseMs: 60_000, maxMs: 600_000 },
        log: pino({ level: 'silent' }),
      })
      registerAuditRoutes(app, {
        db,
        policyOf: (n) => policyOf(undefined, { mirrors: [] }, n),
        access: 'token',
        auth: app.auth,
        replicator: () => r,
      })
      await app.listen({ host: '127.0.0.1', port: 0 })
      const base = `http://127.0.0.1:${(app.server.address() as { port: number }).port}`
      const before = (await r.queue.get('tree:deb'))!
      const root = before.item.cid
      await kubos[1]!.ok(['pin', 'rm', root])
      expect(await b.pinned(root)).toBeUndefined()
      r.start()
      try {
        const res = await fetch(`${base}/replication/check`, {
          method: 'POST',
          headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
          body: JSON.stringify({ mirror: 'deb', wait: 120 }),
        })
        expect(res.status).toBe(200)
        expect(await res.json()).toEqual({ queued: 1, checked: 1, pending: [] })
      } finally {
        await r.stop()
      }
      const after = (await r.queue.get('tree:deb'))!
      expect(after.checkedAt).toBeGreaterThan(before.checkedAt ?? 0)
      expect(after.state).toBe('satisfied')
      expect(await b.pinned(root)).toBe('recursive')
      // The audit through the route shows the re-checked copy.
      const text = await (
        await fetch(`${base}/replication/audit?mirror=deb`, { headers: { authorization: `Bearer ${TOKEN}` } })
      ).text()
      const m = text
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l) as { type: string; queue?: { lastCheck?: string }; under?: number })
        .find((l) => l.type === 'mirror')!
      expect(m.under).toBe(0)
      expect(m.queue?.lastCheck).toBe(new Date(after.checkedAt!).toISOString())
    } finally {
      await app.close()
      for (const n of nodes) await n.close()
      await db.close()
    }
  }, 240_000)
})
