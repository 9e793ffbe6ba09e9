/**
 * Fetch-back at the HTTP level: the gateway as the daemon wires it (`startGatewayService` from a
 * config's `[gateway]`), with a fetch-back whose one source is a loopback server written here: it
 * relays to a real Kubo's gateway, except for one file, for which it is a bad source (a CAR with a
 * wrong block in the middle), and another it does not hold (404). Clients: curl (`-C -` resuming a
 * seeded partial file) and undici.
 */
import { execFile } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, unlinkSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { pino } from 'pino'
import { request } from 'undici'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { readGatewayConfig, startGatewayService } from '../src/daemon/index.ts'
import { type Database, openDatabase } from '../src/db.ts'
import { createFetchBack, type Gateway } from '../src/gateway/index.ts'
import { type MirrorIndex, openMirrorIndex } from '../src/index/index.ts'
import { loadConfig } from '../src/sync/index.ts'
import { carFrom, corrupt, type Loopback, sections, serve } from './helpers/fetch-sources.ts'
import { Kubo } from './helpers/kubo.ts'
import { tool } from './helpers/tools.ts'
import { commandMirror, writeToml } from './jobs-helpers.ts'

const MiB = 1024 * 1024
const FILES = {
  good: { path: 'pool/main/h/hello/hello_2.10-3+b1_amd64.deb', bytes: randomBytes(3 * MiB + 4321) },
  bad: { path: 'pool/main/b/bad/bad_1.0_amd64.deb', bytes: randomBytes(4 * MiB) },
  lost: { path: 'pool/main/l/lost/lost_1.0_all.deb', bytes: randomBytes(MiB + 1) },
}

let dir: string
let root: string
let kubo: Kubo
let db: Database
let idx: MirrorIndex
let gw: Gateway
let source: Loopback
const cids: Record<keyof typeof FILES, string> = { good: '', bad: '', lost: '' }

function curl(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(tool('curl'), args, { encoding: 'utf8' }, (err, stdout, stderr) => {
      resolve({ code: err ? Number((err as { code?: number }).code ?? -1) : 0, stdout, stderr })
    })
  })
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'cidmirror-fetchback-http-'))
  kubo = await Kubo.create({ parent: dir })
  await kubo.start()
  root = join(dir, 'mirrors', 'debian')
  for (const f of Object.values(FILES)) {
    mkdirSync(join(root, f.path, '..'), { recursive: true })
    writeFileSync(join(root, f.path), f.bytes)
  }
  db = await openDatabase(join(dir, 'db'))
  idx = openMirrorIndex(db, 'debian', root)
  await idx.scan()
  for (const [k, f] of Object.entries(FILES) as [keyof typeof FILES, (typeof FILES)['good']][]) {
    const rec = (await idx.get(f.path))!
    cids[k] = rec.cid
    // The network (the local Kubo) holds the good and the bad file; the lost one nobody holds.
    if (k !== 'lost')
      expect((await kubo.ok(['add', '-Q', '--cid-version=1', join(root, f.path)])).trim()).toBe(rec.cid)
    const out = await idx.local.evict(
      [{ path: rec.path, cid: rec.cid, size: rec.size, mtimeMs: rec.mtimeMs }],
      async () => unlinkSync(join(root, f.path)),
    )
    expect(out[0]).toMatchObject({ evicted: true })
  }
  // The one source: Kubo's gateway relayed, but a wrong block for `bad` and nothing for `lost`.
  const badCar = Buffer.concat(corrupt(sections(await carFrom(kubo.gateway, cids.bad)), 3))
  source = await serve(async (req, res) => {
    const url = req.url ?? ''
    if (url.startsWith(`/ipfs/${cids.lost}`)) return void res.writeHead(404).end('not here')
    if (url.startsWith(`/ipfs/${cids.bad}`)) {
      res.writeHead(200, { 'content-type': 'application/vnd.ipld.car; version=1; order=dfs; dups=y' })
      return void res.end(badCar)
    }
    const up = await request(`${kubo.gateway}${url}`, { headers: { accept: String(req.headers.accept) } })
    res.writeHead(up.statusCode, { 'content-type': String(up.headers['content-type']) })
    for await (const c of up.body) res.write(c)
    res.end()
  })
  const config = writeToml({ dir, mirrors: commandMirror('debian', 'true') })
  writeFileSync(config, `${readFileSync(config, 'utf8')}\n[gateway]\nlisten_port = 0\n`)
  const settings = readGatewayConfig(await loadConfig(config))!
  const fetchBack = createFetchBack({
    rootOf: (m) => (m === 'debian' ? root : undefined),
    gateways: [source.url],
    recorderOf: (m) => (m === 'debian' ? idx.local : undefined),
  })
  gw = await startGatewayService({ settings, db, fetchBack, log: pino({ level: 'silent' }) })
}, 120_000)

afterAll(async () => {
  await gw?.close()
  await source?.close()
  await kubo?.dispose()
  await db?.close()
  rmSync(dir, { recursive: true, force: true })
})

describe('fetch-back through the gateway', () => {
  it('curl -C - resumes a seeded partial download of an evicted file: 206, the whole file, cached again', async () => {
    const f = FILES.good
    const out = join(dir, 'hello.deb')
    writeFileSync(out, f.bytes.subarray(0, MiB + 5))
    const r = await curl(['-sS', '-C', '-', '-o', out, '-w', '%{http_code}', `${gw.url}/debian/${f.path}`])
    expect(r.stderr).toBe('')
    expect(r.code).toBe(0)
    expect(r.stdout).toBe('206')
    expect(readFileSync(out).equals(f.bytes)).toBe(true)
    // The range was served from the whole file's fetch, which went on into the cache.
    await expect.poll(async () => (await idx.local.of(f.path))?.state, { timeout: 60_000 }).toBe('refetched')
    expect(readFileSync(join(root, f.path)).equals(f.bytes)).toBe(true)
  })

  it('a wrong block after the status line aborts the connection: curl reports a short body, nothing is cached', async () => {
    const f = FILES.bad
    const out = join(dir, 'bad.deb')
    const r = await curl(['-sS', '-o', out, '-w', '%{http_code}', `${gw.url}/debian/${f.path}`])
    expect(r.stdout).toBe('200')
    // 18: transfer closed with outstanding data (the body is short of its Content-Length).
    expect([18, 56]).toContain(r.code)
    const got = readFileSync(out)
    expect(got.length).toBeLessThan(f.bytes.length)
    expect(got.equals(f.bytes.subarray(0, got.length))).toBe(true)
    expect(existsSync(join(root, f.path))).toBe(false)
    expect((await idx.local.of(f.path))?.state).toBe('evicted')
  })

  it('a file no source holds gets a 502 with a one-line body, and stays evicted', async () => {
    const f = FILES.lost
    const r = await request(`${gw.url}/debian/${f.path}`)
    expect(r.statusCode).toBe(502)
    const body = await r.body.text()
    expect(body.trim().split('\n')).toHaveLength(1)
    expect(body).toContain('HTTP 404')
    expect(existsSync(join(root, f.path))).toBe(false)
    expect((await idx.local.of(f.path))?.state).toBe('evicted')
  })

  it("/metrics has the fetch-back's figures by source", async () => {
    const r = await request(`${gw.url}/metrics`)
    expect(r.statusCode).toBe(200)
    const text = await r.body.text()
    const label = `source="gateway:${source.url}",kind="gateway"`
    expect(text).toMatch(
      new RegExp(`cidmirror_fetchback_bytes_total\\{${label.replace(/[.]/g, '\\.')}\\} [1-9]`),
    )
    expect(text).toMatch(
      new RegExp(`cidmirror_fetchback_failures_total\\{${label.replace(/[.]/g, '\\.')}\\} 2`),
    )
    expect(text).toMatch(/cidmirror_fetchback_ttfb_seconds\{/)
  })

  it("/_status and /_status.json show the fetch-back's figures by source", async () => {
    const json = (await (await request(`${gw.url}/_status.json`)).body.json()) as {
      fetchBack: {
        completed: number
        failed: number
        sources: { source: string; failures: number; bytes: number }[]
      }
    }
    expect(json.fetchBack).toMatchObject({ completed: 1, failed: 2 })
    expect(json.fetchBack.sources).toEqual([
      expect.objectContaining({ source: `gateway:${source.url}`, failures: 2 }),
    ])
    const html = await (await request(`${gw.url}/_status`)).body.text()
    expect(html).toContain('<h2>Fetch-back</h2>')
    expect(html).toContain(`gateway:${source.url}`)
  })
})
