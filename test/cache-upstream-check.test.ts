/**
 * The upstream check of evicted paths for command providers (issue 13 item 2), with real sync jobs
 * wired as the daemon wires them (the exclude hook at the pre-exec seam, the index step after
 * success) and a real LevelDB. An http(s) upstream is a loopback HTTP server written here (files from
 * a folder, with Content-Length and Last-Modified; some paths answer 403, 410 or a redirect) and the
 * command a real mirror script (curl, skipping what the exclude list names); an rsync URL upstream is
 * a real rsync daemon and the command runs rsync itself. The HTTP check's own bounds (HEADs at once,
 * a time limit per request and for the whole check, names that need escaping) are tested on
 * `checkHttpUpstream` against the same kind of server.
 */
import { randomBytes } from 'node:crypto'
import {
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  unlinkSync,
  utimesSync,
  writeFileSync,
} from 'node:fs'
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { join } from 'node:path'
import { Writable } from 'node:stream'
import { type Logger, pino } from 'pino'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { checkHttpUpstream } from '../src/cache/index.ts'
import { createExcludeHook, excludeFileOf } from '../src/daemon/exclude-hook.ts'
import { readUpstreamCheck } from '../src/daemon/index.ts'
import { buildJobSpecs } from '../src/daemon/jobs.ts'
import type { Database } from '../src/db.ts'
import { type EvictedRecord, type MirrorIndex, openMirrorIndex } from '../src/index/index.ts'
import { loadConfig } from '../src/sync/config/index.ts'
import type { Config } from '../src/sync/index.ts'
import { Job } from '../src/sync/job.ts'
import { Semaphore } from '../src/sync/semaphore.ts'
import { type Rsyncd, startRsyncd } from './helpers/rsyncd.ts'
import { tool } from './helpers/tools.ts'
import { FAST_BACKOFF, openDb, tempDir, waitFor, writeToml } from './jobs-helpers.ts'

const OLD = new Date('2020-01-01T00:00:00Z')

/** A loopback HTTP upstream serving `root`, with per-path overrides; it records `METHOD url` of each request. */
interface HttpUpstream {
  url: string
  root: string
  requests: string[]
  /** Path (from the root, no leading /) -> how to answer instead of the file. */
  answer: Map<string, (res: ServerResponse) => void>
  /** HEADs being answered now, and the most at once. */
  inFlight: number
  maxInFlight: number
  /** While set, HEADs wait for it (a held upstream). */
  hold?: Promise<void>
  close(): Promise<void>
}

async function httpUpstream(root: string): Promise<HttpUpstream> {
  const up: HttpUpstream = {
    url: '',
    root,
    requests: [],
    answer: new Map(),
    inFlight: 0,
    maxInFlight: 0,
    close: async () => {},
  }
  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    up.requests.push(`${req.method} ${req.url}`)
    const rel = decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname).replace(/^\/+/, '')
    if (req.method === 'HEAD') {
      up.inFlight++
      up.maxInFlight = Math.max(up.maxInFlight, up.inFlight)
      await up.hold
      up.inFlight--
    }
    const special = up.answer.get(rel)
    if (special) return special(res)
    if (rel === 'index.txt') {
      // The mirror script's list: every file under pool/.
      const names = readdirSync(join(root, 'pool')).map((n) => `pool/${n}`)
      return void res.writeHead(200, { 'content-type': 'text/plain' }).end(`${names.join('\n')}\n`)
    }
    const file = join(root, rel)
    if (!existsSync(file) || !statSync(file).isFile()) return void res.writeHead(404).end()
    const st = statSync(file)
    res.writeHead(200, { 'content-length': st.size, 'last-modified': st.mtime.toUTCString() })
    res.end(req.method === 'HEAD' ? undefined : readFileSync(file))
  }
  const server: Server = createServer((req, res) => {
    handle(req, res).catch((err) => res.destroy(err as Error))
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  up.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`
  up.close = () =>
    new Promise<void>((resolve) => {
      server.closeAllConnections()
      server.close(() => resolve())
    })
  return up
}

/** A pino logger whose lines land in `lines` (parsed). */
function capturingLog(): { log: Logger; lines: Record<string, unknown>[] } {
  const lines: Record<string, unknown>[] = []
  const stream = new Writable({
    write(chunk, _enc, done) {
      for (const l of String(chunk).split('\n').filter(Boolean)) lines.push(JSON.parse(l))
      done()
    },
  })
  return { log: pino({ level: 'info' }, stream) as unknown as Logger, lines }
}

let tmp: ReturnType<typeof tempDir>
let db: Database
let config: Config
let http: HttpUpstream
/** The upstream of mirror `held`, whose HEADs of evicted files never answer. */
let held: HttpUpstream
let rsyncd: Rsyncd
const captured = capturingLog()

function write(root: string, rel: string, data: Uint8Array | string, mtime = OLD): void {
  const p = join(root, rel)
  mkdirSync(join(p, '..'), { recursive: true })
  writeFileSync(p, data)
  utimesSync(p, mtime, mtime)
}

/** One sync of mirror `name` as the daemon wires it, with `c`'s `[cache] upstream_check_*` limits. */
async function sync(name: string, c = config): Promise<void> {
  const check = readUpstreamCheck(c)
  const specs = buildJobSpecs(c, {
    indexMirror: (mirror, root, signal) => openMirrorIndex(db, mirror, root).scan({ signal }),
    preExec: (m) => [createExcludeHook(db, m, excludeFileOf(c.database.path, m.name), check)],
  })
  let last: { status: string; message: string } | undefined
  const job = new Job(specs.find((s) => s.name === name)!, {
    semaphore: new Semaphore(1),
    backoff: FAST_BACKOFF,
    log: captured.log,
    onEvent: (_job, ev) => {
      last = ev
    },
  })
  job.start()
  await job.idle()
  expect(
    last?.status,
    `${last?.message}\n${readFileSync(join(tmp.dir, 'log', name, 'latest'), 'utf8')}`,
  ).toBe('success')
}

async function evictAll(idx: MirrorIndex, paths: string[]): Promise<void> {
  for (const path of paths) {
    const r = (await idx.get(path))!
    const out = await idx.local.evict([{ path, cid: r.cid, size: r.size, mtimeMs: r.mtimeMs }], async (rec) =>
      unlinkSync(join(idx.root, rec.path)),
    )
    expect(out[0]).toMatchObject({ evicted: true })
  }
}

/** The hook's log lines of one mirror's syncs. */
const hookLines = (msg: RegExp) => captured.lines.filter((l) => typeof l.msg === 'string' && msg.test(l.msg))

beforeAll(async () => {
  tmp = tempDir('cidmirror-upstream-check-')
  http = await httpUpstream(join(tmp.dir, 'http-up'))
  held = await httpUpstream(join(tmp.dir, 'held-up'))
  rsyncd = await startRsyncd()
  const curl = tool('curl')
  const rsync = tool('rsync')
  // A mirror script as operators write them: the upstream's file list, each file fetched with its
  // date (curl -R), those the exclude list names left alone.
  const script = [
    'set -e',
    `${curl} -sSf "\${CIDMIRROR_UPSTREAM_URL}index.txt" -o "$CIDMIRROR_LOG_DIR/index.txt"`,
    'while IFS= read -r p; do',
    '  grep -qxF "/$p" "$CIDMIRROR_EXCLUDE_FROM" && continue',
    '  mkdir -p "$(dirname "$p")"',
    `  ${curl} -sSfR -o "$p" "\${CIDMIRROR_UPSTREAM_URL}$p"`,
    'done < "$CIDMIRROR_LOG_DIR/index.txt"',
  ].join('\n')
  const file = writeToml({
    dir: tmp.dir,
    mirrors: `[[mirrors]]
name = "web"
provider = "command"
upstream = "${http.url}"
command = ${JSON.stringify(script)}

[[mirrors]]
name = "rs"
provider = "command"
upstream = "${rsyncd.url}"
command = ${JSON.stringify(`${rsync} -a --exclude-from="$CIDMIRROR_EXCLUDE_FROM" "$CIDMIRROR_UPSTREAM_URL" .`)}

[[mirrors]]
name = "held"
provider = "command"
upstream = "${held.url}"
command = ${JSON.stringify(script)}

[[mirrors]]
name = "local"
provider = "command"
upstream = "${join(tmp.dir, 'elsewhere')}"
command = "true"
`,
  })
  config = await loadConfig(file)
  db = await openDb(tmp.dir)
}, 60_000)

afterAll(async () => {
  await db?.close()
  await http?.close()
  await held?.close()
  await rsyncd?.stop()
  tmp?.cleanup()
})

describe('command providers: the upstream is asked about evicted paths', () => {
  it('an http(s) upstream: one HEAD per evicted path; 404/410 recorded deleted, a newer or resized file downloaded, anything else left evicted and logged', async () => {
    const up = http.root
    const bytes = {
      keep: randomBytes(3000),
      gone: randomBytes(3001),
      gone410: randomBytes(3002),
      changed: randomBytes(3003),
      forbidden: randomBytes(3004),
      moved: randomBytes(3005),
    }
    for (const [k, b] of Object.entries(bytes)) write(up, `pool/${k}.deb`, b)
    await sync('web')
    const idx = openMirrorIndex(db, 'web', join(tmp.dir, 'mirrors', 'web'))
    const all = Object.keys(bytes).map((k) => `pool/${k}.deb`)
    for (const p of all) expect(await idx.get(p)).toMatchObject({ state: 'present', mtimeMs: OLD.getTime() })
    await evictAll(idx, all)

    // Upstream: one file deleted (404), one gone for good (410), one rewritten (new size, newer date),
    // one now refused (403), one moved behind a redirect (same bytes and date there).
    rmSync(join(up, 'pool/gone.deb'))
    http.answer.set('pool/gone410.deb', (res) => void res.writeHead(410).end())
    write(up, 'pool/changed.deb', randomBytes(4000), new Date('2021-06-01T00:00:00Z'))
    http.answer.set('pool/forbidden.deb', (res) => void res.writeHead(403).end())
    write(up, 'real/moved.deb', bytes.moved)
    http.answer.set('pool/moved.deb', (res) => void res.writeHead(302, { location: '/real/moved.deb' }).end())
    http.requests.length = 0
    await sync('web')

    const heads = http.requests.filter((r) => r.startsWith('HEAD ')).sort()
    expect(heads).toEqual([...all.map((p) => `HEAD /${p}`), 'HEAD /real/moved.deb'].sort())
    // The script downloaded the changed file only (the list no longer named it).
    const gets = http.requests.filter((r) => r.startsWith('GET ') && r !== 'GET /index.txt')
    expect(gets).toEqual(['GET /pool/changed.deb'])
    expect(await idx.get('pool/gone.deb')).toMatchObject({ state: 'deleted' })
    expect(await idx.get('pool/gone410.deb')).toMatchObject({ state: 'deleted' })
    expect(await idx.get('pool/changed.deb')).toMatchObject({ state: 'present', size: 4000 })
    for (const p of ['pool/keep.deb', 'pool/forbidden.deb', 'pool/moved.deb']) {
      expect(await idx.get(p)).toMatchObject({ state: 'evicted' })
      expect(existsSync(join(idx.root, p))).toBe(false)
    }
    const line = hookLines(/^evicted files excluded/).find((l) => l.job === 'web' && l.upstreamDeleted === 2)
    expect(line).toMatchObject({
      upstreamSame: 2,
      upstreamDeleted: 2,
      upstreamChanged: 1,
      upstreamUnchecked: 1,
      unchecked: ['pool/forbidden.deb: HTTP 403'],
    })
    const list = readFileSync(excludeFileOf(config.database.path, 'web'), 'utf8')
    expect(list).not.toContain('changed.deb')
    expect(list).toContain('/pool/forbidden.deb\n')
  })

  it('an rsync URL upstream: the rsync check (--list-only --files-from), a file deleted upstream recorded deleted', async () => {
    write(rsyncd.root, 'pool/a.deb', randomBytes(2000))
    write(rsyncd.root, 'pool/b.deb', randomBytes(2001))
    await sync('rs')
    const idx = openMirrorIndex(db, 'rs', join(tmp.dir, 'mirrors', 'rs'))
    await evictAll(idx, ['pool/a.deb', 'pool/b.deb'])
    rmSync(join(rsyncd.root, 'pool/a.deb'))
    await sync('rs')
    expect(await idx.get('pool/a.deb')).toMatchObject({ state: 'deleted' })
    expect(await idx.get('pool/b.deb')).toMatchObject({ state: 'evicted' })
    expect(existsSync(join(idx.root, 'pool/b.deb'))).toBe(false)
    const line = hookLines(/^evicted files excluded/).find((l) => l.job === 'rs' && l.upstreamDeleted === 1)
    expect(line).toMatchObject({ upstreamSame: 1, upstreamChanged: 0 })
  })

  it('no usable upstream: the check is skipped, said once, and the evicted files stay excluded', async () => {
    const root = join(tmp.dir, 'mirrors', 'local')
    write(root, 'pool/x.deb', 'x')
    write(root, 'pool/y.deb', 'y')
    const idx = openMirrorIndex(db, 'local', root)
    await idx.scan()
    await evictAll(idx, ['pool/x.deb'])
    // One hook per mirror, as the daemon builds them: two syncs through it.
    const hook = createExcludeHook(
      db,
      config.mirrors.find((m) => m.name === 'local')!,
      join(tmp.dir, 'l.list'),
    )
    const specs = buildJobSpecs(config, { preExec: () => [hook] })
    for (let i = 0; i < 2; i++) {
      const job = new Job(specs.find((s) => s.name === 'local')!, {
        semaphore: new Semaphore(1),
        backoff: FAST_BACKOFF,
        log: captured.log,
        onEvent: () => {},
      })
      job.start()
      await job.idle()
    }
    const skipped = hookLines(/^upstream check of evicted files skipped/)
    expect(skipped).toHaveLength(1)
    expect(skipped[0]).toMatchObject({ job: 'local', upstream: join(tmp.dir, 'elsewhere') })
    expect(readFileSync(join(tmp.dir, 'l.list'), 'utf8')).toBe('/pool/x.deb\n')
    expect(await idx.get('pool/x.deb')).toMatchObject({ state: 'evicted' })
  })
})

describe('[cache] upstream_check_* bound the HTTP check of a sync', () => {
  const paths = ['pool/h1.deb', 'pool/h2.deb', 'pool/h3.deb']
  /** The config with `[cache]` and `keys` added. */
  const withCache = (keys: string): Promise<Config> => {
    const file = join(tmp.dir, `cache-${randomBytes(4).toString('hex')}.toml`)
    writeFileSync(file, `${readFileSync(config.file, 'utf8')}\n[cache]\n${keys}\n`)
    return loadConfig(file)
  }
  /** The last exclude-hook line of mirror `held`. */
  const lastLine = () =>
    hookLines(/^evicted files excluded/)
      .filter((l) => l.job === 'held')
      .at(-1)
  const heads = () => held.requests.filter((r) => r.startsWith('HEAD ')).length

  beforeAll(async () => {
    for (const p of paths) write(held.root, p, randomBytes(1000))
    await sync('held')
    await evictAll(openMirrorIndex(db, 'held', join(tmp.dir, 'mirrors', 'held')), paths)
    // From now on the upstream takes every HEAD of them and never answers.
    for (const p of paths) held.answer.set(p, () => {})
  }, 60_000)

  it('upstream_check_timeout: each HEAD gives up after it', async () => {
    held.requests.length = 0
    await sync('held', await withCache('upstream_check_timeout = "1s"'))
    expect(lastLine()).toMatchObject({ excluded: 3, upstreamUnchecked: 3, upstreamSame: 0 })
    expect([...(lastLine()!.unchecked as string[])].sort()).toEqual(
      paths.map((p) => `${p}: no answer within 1000 ms`),
    )
    expect(heads()).toBe(3)
  })

  it('upstream_check_deadline and upstream_check_concurrency: one HEAD at a time, the check over when the deadline passed', async () => {
    held.requests.length = 0
    await sync(
      'held',
      await withCache(
        'upstream_check_concurrency = 1\nupstream_check_deadline = "1s"\nupstream_check_timeout = "10m"',
      ),
    )
    expect(lastLine()).toMatchObject({ excluded: 3, upstreamUnchecked: 3 })
    expect([...(lastLine()!.unchecked as string[])].sort()).toEqual(
      paths.map((p) => `${p}: the check's time limit (1000 ms) passed`),
    )
    // One at a time: the first HEAD (never answered) held the check until the deadline; the others were not sent.
    expect(heads()).toBeLessThanOrEqual(1)
    for (const p of paths)
      expect(await openMirrorIndex(db, 'held', join(tmp.dir, 'mirrors', 'held')).get(p)).toMatchObject({
        state: 'evicted',
      })
  })
})

describe('checkHttpUpstream', () => {
  const rec = (path: string, size: number, mtime = OLD): EvictedRecord =>
    ({ path, cid: 'bafkqaaa', size, mtimeMs: mtime.getTime() }) as EvictedRecord

  it('asks at most `concurrency` paths at once, escapes names, and a Last-Modified earlier than the record is no change', async () => {
    const up = await httpUpstream(join(tmp.dir, 'bounded'))
    try {
      const names = ['a.deb', 'b.deb', 'with space#1?.deb', 'd.deb', 'e.deb']
      for (const n of names) write(up.root, `pool/${n}`, 'abc')
      let release!: () => void
      up.hold = new Promise((r) => {
        release = r
      })
      // The records were downloaded without the server's date: their mtime is later (no change).
      const done = checkHttpUpstream(
        names.map((n) => rec(`pool/${n}`, 3, new Date('2024-01-01T00:00:00Z'))),
        { base: up.url.replace(/\/$/, ''), concurrency: 2 },
      )
      await waitFor(() => up.inFlight === 2, 'two HEADs at the upstream')
      expect(up.requests).toHaveLength(2)
      release()
      const r = await done
      expect(r).toMatchObject({ same: 5, deleted: [], changed: [], unchecked: [] })
      expect(up.maxInFlight).toBe(2)
      expect(up.requests).toContain('HEAD /pool/with%20space%231%3F.deb')
    } finally {
      await up.close()
    }
  })

  it('a HEAD with no answer within its time limit, and paths not asked by the deadline, are left as they are', async () => {
    const up = await httpUpstream(join(tmp.dir, 'slow'))
    try {
      write(up.root, 'pool/ok.deb', 'abc')
      up.answer.set('pool/hang.deb', () => {})
      const r = await checkHttpUpstream([rec('pool/hang.deb', 3), rec('pool/ok.deb', 3)], {
        base: up.url,
        requestTimeoutMs: 200,
      })
      expect(r).toMatchObject({
        same: 1,
        unchecked: [{ path: 'pool/hang.deb', why: 'no answer within 200 ms' }],
      })
      // One at a time, and the whole check may take 300 ms: the hanging HEAD uses it up.
      const late = await checkHttpUpstream([rec('pool/hang.deb', 3), rec('pool/ok.deb', 3)], {
        base: up.url,
        concurrency: 1,
        deadlineMs: 300,
        shuffle: false,
      })
      expect(late).toMatchObject({
        same: 0,
        unchecked: [
          { path: 'pool/hang.deb', why: "the check's time limit (300 ms) passed" },
          { path: 'pool/ok.deb', why: "the check's time limit (300 ms) passed" },
        ],
      })
    } finally {
      await up.close()
    }
  })
})
