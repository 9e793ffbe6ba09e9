/**
 * The fetch-back's limits as `[gateway]` keys (`fetch_concurrency`, `fetch_bytes_in_flight`,
 * `fetch_first_byte_timeout`, `fetch_idle_timeout`), through the gateway as the daemon and `cidmirror
 * gateway` wire it (`startGatewayService` from the config). The one source is a loopback gateway
 * written here that relays a real Kubo's trustless CARs and counts the requests it gets; it can hold
 * its answer for a file at a gate, never answer, or stop after the first blocks. A limit is seen at
 * the source: with one fetch allowed, the second file is not asked for while the first is held.
 */
import { randomBytes } from 'node:crypto'
import { mkdirSync, mkdtempSync, readFileSync, rmSync, unlinkSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { pino } from 'pino'
import { request } from 'undici'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { readGatewayConfig, startGatewayService } from '../src/daemon/index.ts'
import { type Database, openDatabase } from '../src/db.ts'
import type { Gateway } from '../src/gateway/index.ts'
import { type MirrorIndex, openMirrorIndex } from '../src/index/index.ts'
import { ConfigError, loadConfig } from '../src/sync/index.ts'
import { runCli, STACK_LINE } from './helpers/cli.ts'
import { carFrom, type Loopback, sections, serve } from './helpers/fetch-sources.ts'
import { Kubo } from './helpers/kubo.ts'
import { commandMirror, waitFor, writeToml } from './jobs-helpers.ts'

const MiB = 1024 * 1024
/** Two evicted files per case, 1.5 MiB each (two leaves), so `fetch_bytes_in_flight = "2MiB"` admits one. */
const NAMES = ['one', 'bytes', 'two', 'slow', 'idle'] as const
type Case = (typeof NAMES)[number]
const files = new Map<string, { path: string; bytes: Buffer; cid: string }>()

let dir: string
let kubo: Kubo
let db: Database
let idx: MirrorIndex
const closers: (() => Promise<void>)[] = []

const fileOf = (c: Case, i: number) => files.get(`${c}${i}`)!

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'cidmirror-fetchback-limits-'))
  kubo = await Kubo.create({ parent: dir })
  await kubo.start()
  const root = join(dir, 'mirrors', 'debian')
  mkdirSync(join(root, 'pool'), { recursive: true })
  for (const c of NAMES)
    for (const i of [1, 2]) {
      const path = `pool/${c}${i}.deb`
      const bytes = randomBytes(1.5 * MiB)
      writeFileSync(join(root, path), bytes)
      files.set(`${c}${i}`, { path, bytes, cid: '' })
    }
  db = await openDatabase(join(dir, 'db'))
  idx = openMirrorIndex(db, 'debian', root)
  await idx.scan()
  for (const f of files.values()) {
    const rec = (await idx.get(f.path))!
    f.cid = rec.cid
    expect((await kubo.ok(['add', '-Q', '--cid-version=1', join(root, f.path)])).trim()).toBe(rec.cid)
    const out = await idx.local.evict(
      [{ path: rec.path, cid: rec.cid, size: rec.size, mtimeMs: rec.mtimeMs }],
      async () => unlinkSync(join(root, f.path)),
    )
    expect(out[0]).toMatchObject({ evicted: true })
  }
}, 120_000)

afterAll(async () => {
  for (const c of closers.reverse()) await c()
  await kubo?.dispose()
  await db?.close()
  rmSync(dir, { recursive: true, force: true })
})

/** A config whose `[gateway]` fetches from `source` only, with `keys` added; its path. */
function configWith(source: string, keys: string): string {
  const file = join(dir, `cidmirror-${randomBytes(4).toString('hex')}.toml`)
  const base = writeToml({ dir, mirrors: commandMirror('debian', 'true') })
  writeFileSync(
    file,
    `${readFileSync(base, 'utf8')}\n[gateway]\nlisten_port = 0\nfetch_from = ["${source}"]\n${keys}\n`,
  )
  return file
}

async function gatewayFor(file: string): Promise<Gateway> {
  const settings = readGatewayConfig(await loadConfig(file))!
  const gw = await startGatewayService({ settings, db, log: pino({ level: 'silent' }) })
  closers.push(() => gw.close())
  return gw
}

/** Kubo's answer to a fetch-back request, relayed. */
async function relay(url: string, accept: string, res: import('node:http').ServerResponse): Promise<void> {
  const up = await request(`${kubo.gateway}${url}`, { headers: { accept } })
  res.writeHead(up.statusCode, { 'content-type': String(up.headers['content-type']) })
  for await (const c of up.body) res.write(c)
  res.end()
}

/** A relaying source that holds its answer for `held` until `open()`. */
async function gatedSource(held: string): Promise<Loopback & { open(): void }> {
  let open!: () => void
  const opened = new Promise<void>((r) => {
    open = r
  })
  const src = await serve(async (req, res) => {
    if ((req.url ?? '').startsWith(`/ipfs/${held}`)) await opened
    await relay(req.url ?? '', String(req.headers.accept ?? '*/*'), res)
  })
  closers.push(() => src.close())
  return Object.assign(src, { open })
}

const asked = (src: Loopback, cid: string): boolean => src.requests.some((u) => u.startsWith(`/ipfs/${cid}`))

async function figures(gw: Gateway): Promise<{ active: number; queued: number }> {
  const r = await request(`${gw.url}/_status.json`)
  return ((await r.body.json()) as { fetchBack: { active: number; queued: number } }).fetchBack
}

async function download(gw: Gateway, path: string): Promise<{ status: number; body: Buffer }> {
  const r = await request(`${gw.url}/debian/${path}`)
  return { status: r.statusCode, body: Buffer.from(await r.body.arrayBuffer()) }
}

/**
 * Requests the case's two files while the source holds the first; resolves once the second fetch
 * either reached the source or waits for its turn (the gateway's figures say 1 queued).
 */
async function twoAtOnce(c: Case, keys: string): Promise<{ secondAsked: boolean; order: string[] }> {
  const [a, b] = [fileOf(c, 1), fileOf(c, 2)]
  const src = await gatedSource(a.cid)
  // Long first-byte limit: the held answer must not time out on a busy machine.
  const gw = await gatewayFor(configWith(src.url, `fetch_first_byte_timeout = "10m"\n${keys}`))
  const first = download(gw, a.path)
  await waitFor(() => asked(src, a.cid), 'the first fetch at the source')
  const second = download(gw, b.path)
  await waitFor(async () => asked(src, b.cid) || (await figures(gw)).queued === 1, 'the second fetch')
  const secondAsked = asked(src, b.cid)
  src.open()
  const [ra, rb] = await Promise.all([first, second])
  expect(ra.status).toBe(200)
  expect(ra.body.equals(a.bytes)).toBe(true)
  expect(rb.status).toBe(200)
  expect(rb.body.equals(b.bytes)).toBe(true)
  const order = src.requests.map((u) => (u.startsWith(`/ipfs/${a.cid}`) ? 'first' : 'second'))
  return { secondAsked, order: [...new Set(order)] }
}

describe('fetch-back limits from [gateway]', () => {
  it('fetch_concurrency = 1: the second evicted file is fetched only after the first', async () => {
    const r = await twoAtOnce('one', 'fetch_concurrency = 1')
    expect(r.secondAsked).toBe(false)
    expect(r.order).toEqual(['first', 'second'])
  })

  it('fetch_bytes_in_flight = "2MiB": two 1.5 MiB files are fetched one after the other', async () => {
    const r = await twoAtOnce('bytes', 'fetch_bytes_in_flight = "2MiB"')
    expect(r.secondAsked).toBe(false)
    expect(r.order).toEqual(['first', 'second'])
  })

  it('fetch_concurrency = 2: both are fetched at once (the limit above is what held the second)', async () => {
    const r = await twoAtOnce('two', 'fetch_concurrency = 2')
    expect(r.secondAsked).toBe(true)
  })

  it('fetch_first_byte_timeout: a source that never answers fails the fetch: 504, the file stays evicted', async () => {
    const f = fileOf('slow', 1)
    const src = await serve(() => {})
    closers.push(() => src.close())
    const gw = await gatewayFor(configWith(src.url, 'fetch_first_byte_timeout = "300ms"'))
    const r = await request(`${gw.url}/debian/${f.path}`)
    expect(r.statusCode).toBe(504)
    const body = await r.body.text()
    expect(body.trim().split('\n')).toHaveLength(1)
    // The configured limit, not the default 15 s, is the one that ran out.
    expect(body).toContain('no first verified block within 300 ms')
    expect(asked(src, f.cid)).toBe(true)
    expect((await idx.local.of(f.path))?.state).toBe('evicted')
  })

  it('fetch_idle_timeout: a source that stops after its first blocks: the download is aborted mid-body', async () => {
    const f = fileOf('idle', 1)
    const car = sections(await carFrom(kubo.gateway, f.cid))
    // The header, the root node and the first leaf; then nothing, the connection left open.
    const src = await serve((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/vnd.ipld.car; version=1; order=dfs; dups=y' })
      res.write(Buffer.concat(car.slice(0, 3)))
    })
    closers.push(() => src.close())
    const gw = await gatewayFor(
      configWith(src.url, 'fetch_first_byte_timeout = "10m"\nfetch_idle_timeout = "300ms"'),
    )
    const r = await request(`${gw.url}/debian/${f.path}`)
    expect(r.statusCode).toBe(200)
    const err = await r.body.arrayBuffer().then(
      () => undefined,
      (e: unknown) => e,
    )
    expect(err).toBeInstanceOf(Error)
    expect((await idx.local.of(f.path))?.state).toBe('evicted')
    // The configured limit between blocks, not the default 30 s, is the one that ran out.
    const status = (await (await request(`${gw.url}/_status.json`)).body.json()) as {
      fetchBack: { sources: { lastError?: string; timeouts: number }[] }
    }
    expect(status.fetchBack.sources).toEqual([
      expect.objectContaining({
        timeouts: 1,
        lastError: expect.stringContaining('next verified block within 300 ms'),
      }),
    ])
  })

  it.each([
    ['fetch_concurrency = 0', 'gateway.fetch_concurrency', /0 is out of range: must be between 1 and 1024/],
    ['fetch_bytes_in_flight = "lots"', 'gateway.fetch_bytes_in_flight', /"lots" is not a size/],
    ['fetch_bytes_in_flight = 0', 'gateway.fetch_bytes_in_flight', /must be more than 0/],
    ['fetch_first_byte_timeout = "0s"', 'gateway.fetch_first_byte_timeout', /must be more than 0/],
    ['fetch_idle_timeout = "2d"', 'gateway.fetch_idle_timeout', /must be at most "1d"/],
  ])('%s is refused, naming the key and the file', async (line, key, problem) => {
    const file = configWith('http://127.0.0.1:1', line)
    const e = await loadConfig(file)
      .then((c) => readGatewayConfig(c))
      .then(
        () => undefined,
        (x: unknown) => x,
      )
    expect(e).toBeInstanceOf(ConfigError)
    expect((e as ConfigError).key).toBe(key)
    expect((e as ConfigError).message).toMatch(problem)
    expect((e as ConfigError).message).toContain(file)
  })

  it('cidmirror gateway with a bad fetch key: one line naming the key and the file, exit 2', async () => {
    const file = configWith('http://127.0.0.1:1', 'fetch_concurrency = "four"')
    const r = await runCli(['gateway', '-c', file])
    expect(r.code).toBe(2)
    expect(r.stderr).not.toMatch(STACK_LINE)
    expect(r.stderr.trim().split('\n')).toEqual([
      expect.stringMatching(
        new RegExp(`config ${file.replace(/[.]/g, '\\.')}: gateway\\.fetch_concurrency: `),
      ),
    ])
  })
})
