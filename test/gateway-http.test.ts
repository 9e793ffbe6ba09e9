/**
 * The gateway's mirror namespace over real HTTP on 127.0.0.1, read with curl, undici and raw sockets:
 * the headers from the index (ETag = CID, X-Ipfs-Roots, Repr-Digest, Last-Modified), conditional and
 * range requests as apt and curl send them, `curl -C -`, 416 at the end, pipelined requests in order,
 * `%2b` and `+`, symlinked suites, 301s and listings, a file changed since the scan, evicted files
 * (no fetch-back: 503; a fetch-back that fails mid-body: the connection is cut), the path-traversal
 * corpus against a secret file beside the root, limits, /metrics and the access log.
 */
import { execFile } from 'node:child_process'
import { createHash } from 'node:crypto'
import {
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  statSync,
  symlinkSync,
  unlinkSync,
  utimesSync,
  writeFileSync,
} from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { request } from 'undici'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type Database, openDatabase } from '../src/db.ts'
import type { EvictedFile, FetchBack, Gateway } from '../src/gateway/index.ts'
import { type MirrorIndex, openMirrorIndex } from '../src/index/index.ts'
import { gatewayOver, rawExchange } from './helpers/gateway.ts'
import { tool } from './helpers/tools.ts'
import { waitFor } from './jobs-helpers.ts'

let work: string
let root: string
let db: Database
let idx: MirrorIndex
let gw: Gateway
let rootCid: string
const SECRET = 'TOP-SECRET-beside-the-root-7f3a'
const files: Record<string, Buffer> = {}

function put(rel: string, data: Buffer | string, mtime = new Date('2024-03-05T06:07:08Z')): void {
  const p = join(root, rel)
  mkdirSync(join(p, '..'), { recursive: true })
  writeFileSync(p, data)
  utimesSync(p, mtime, mtime)
  files[rel] = Buffer.from(data)
}

function curl(args: string[]): Promise<{ code: number; stdout: Buffer; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      tool('curl'),
      ['-sS', ...args],
      { encoding: 'buffer', maxBuffer: 1 << 26 },
      (err, stdout, stderr) => {
        resolve({
          code: err ? Number((err as { code?: number }).code ?? 1) : 0,
          stdout,
          stderr: stderr.toString(),
        })
      },
    )
  })
}

async function get(path: string, headers: Record<string, string> = {}, method: 'GET' | 'HEAD' = 'GET') {
  const r = await request(`${gw.url}${path}`, { method, headers })
  const body = Buffer.from(await r.body.arrayBuffer())
  return { status: r.statusCode, headers: r.headers as Record<string, string>, body }
}

const sha256b64 = (b: Buffer): string => createHash('sha256').update(b).digest('base64')

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), 'cidmirror-gw-'))
  root = join(work, 'mirrors', 'debian')
  writeFileSync(join(work, 'mirrors', '..', 'secret'), SECRET)
  mkdirSync(root, { recursive: true })
  writeFileSync(join(work, 'mirrors', 'secret'), SECRET)
  put('dists/bookworm/Release', 'Origin: Debian\nSuite: stable\n')
  put('dists/bookworm/main/binary-amd64/Packages', 'Package: g++\n')
  symlinkSync('bookworm', join(root, 'dists', 'stable'))
  put('pool/main/g/g++/g++_1.0_amd64.deb', Buffer.alloc(3000, 1))
  put('pool/main/a/a+b.txt', 'plus is plus\n')
  put('pool/main/a/a b.txt', 'space is space\n')
  put('small.bin', Buffer.from(Array.from({ length: 100_000 }, (_, i) => (i * 7) & 0xff)))
  put('big.iso', Buffer.from(Array.from({ length: 2_600_000 }, (_, i) => (i * 13 + (i >> 9)) & 0xff)))
  put('evicted.deb', Buffer.alloc(5000, 9))
  put('cut.deb', Buffer.alloc(300_000, 3))
  symlinkSync('../secret', join(root, 'leak'))
  symlinkSync('..', join(root, 'leakdir'))
  db = await openDatabase(join(work, 'db'))
  idx = openMirrorIndex(db, 'debian', root)
  rootCid = (await idx.scan()).rootCid
  // Two files leave the disk the way the janitor evicts them (the index first, then the unlink).
  for (const rel of ['evicted.deb', 'cut.deb']) {
    const r = (await idx.get(rel))!
    const out = await idx.local.evict(
      [{ path: rel, cid: r.cid, size: r.size, mtimeMs: r.mtimeMs }],
      async () => unlinkSync(join(root, rel)),
    )
    expect(out[0]).toMatchObject({ evicted: true })
  }
  gw = await gatewayOver(db, [{ name: 'debian', root, duplicates: ['https://mirror.example.org/debian/'] }], {
    accessLog: { file: join(work, 'log', 'access.log') },
    limits: { headersTimeoutMs: 1000, maxUrlBytes: 8192 },
  })
})

afterAll(async () => {
  await gw?.close()
  await db?.close()
  rmSync(work, { recursive: true, force: true })
})

describe('files, with headers from the index', () => {
  it('a small file: ETag is its CID, Repr-Digest its SHA-256, Last-Modified its mtime, the roots down to it', async () => {
    const rec = (await idx.get('pool/main/g/g++/g++_1.0_amd64.deb'))!
    const r = await get('/debian/pool/main/g/g++/g++_1.0_amd64.deb')
    expect(r.status).toBe(200)
    expect(r.body.equals(files['pool/main/g/g++/g++_1.0_amd64.deb']!)).toBe(true)
    expect(r.headers['content-length']).toBe('3000')
    expect(r.headers['content-type']).toBe('application/vnd.debian.binary-package')
    expect(r.headers.etag).toBe(`"${rec.cid}"`)
    expect(r.headers['last-modified']).toBe('Tue, 05 Mar 2024 06:07:08 GMT')
    expect(r.headers['repr-digest']).toBe(`sha-256=:${sha256b64(r.body)}:`)
    const roots = r.headers['x-ipfs-roots']!.split(',')
    expect(roots[0]).toBe(rootCid)
    expect(roots.at(-1)).toBe(rec.cid)
    expect(roots).toHaveLength(6)
    expect(r.headers.link).toBe(
      '<https://mirror.example.org/debian/pool/main/g/g++/g++_1.0_amd64.deb>; rel=duplicate; pri=1',
    )
    const head = await get('/debian/pool/main/g/g++/g++_1.0_amd64.deb', {}, 'HEAD')
    expect(head.body.length).toBe(0)
    expect(head.headers.etag).toBe(r.headers.etag)
    expect(head.headers['content-length']).toBe('3000')
  })

  it('a file of several chunks: its CID as ETag, no Repr-Digest (its SHA-256 is not in the index)', async () => {
    const r = await get('/debian/big.iso')
    expect(r.status).toBe(200)
    expect(r.body.equals(files['big.iso']!)).toBe(true)
    expect(r.headers.etag).toBe(`"${(await idx.get('big.iso'))!.cid}"`)
    expect(r.headers.etag).toMatch(/^"bafybei/)
    expect(r.headers['repr-digest']).toBeUndefined()
    expect(r.headers['content-type']).toBe('application/octet-stream')
    expect((await get('/debian/dists/bookworm/Release')).headers['content-type']).toBe(
      'text/plain; charset=utf-8',
    )
  })

  it('%2b is +, + is never a space, and each name is decoded once', async () => {
    const a = await get('/debian/pool/main/g/g%2b%2b/g%2B%2B_1.0_amd64.deb')
    expect(a.status).toBe(200)
    expect(a.body.equals(files['pool/main/g/g++/g++_1.0_amd64.deb']!)).toBe(true)
    expect((await get('/debian/pool/main/a/a+b.txt')).body.toString()).toBe('plus is plus\n')
    expect((await get('/debian/pool/main/a/a%2bb.txt')).body.toString()).toBe('plus is plus\n')
    expect((await get('/debian/pool/main/a/a%20b.txt')).body.toString()).toBe('space is space\n')
    // Decoded once: %252b is the name "%2b", which is not there.
    expect((await get('/debian/pool/main/a/a%252bb.txt')).status).toBe(404)
  })

  it('suites through a symlinked directory, and directories get a 301 adding the slash', async () => {
    const r = await get('/debian/dists/stable/Release')
    expect(r.status).toBe(200)
    expect(r.body.toString()).toBe('Origin: Debian\nSuite: stable\n')
    expect(r.headers.etag).toBe(`"${(await idx.get('dists/bookworm/Release'))!.cid}"`)
    const d = await get('/debian/dists/stable?x=1')
    expect(d.status).toBe(301)
    expect(d.headers.location).toBe('/debian/dists/stable/?x=1')
    const m = await get('/debian')
    expect(m.status).toBe(301)
    expect(m.headers.location).toBe('/debian/')
    expect((await get('/debian/small.bin/')).status).toBe(404)
  })
})

describe('conditional and range requests', () => {
  const path = '/debian/small.bin'
  it('If-Modified-Since: 304 on an exact match only; If-None-Match with the ETag: 304', async () => {
    const first = await get(path)
    const lm = first.headers['last-modified']!
    const exact = await get(path, { 'if-modified-since': lm })
    expect(exact.status).toBe(304)
    expect(exact.body.length).toBe(0)
    expect(exact.headers.etag).toBe(first.headers.etag)
    const later = new Date(Date.parse(lm) + 1000).toUTCString()
    expect((await get(path, { 'if-modified-since': later })).status).toBe(200)
    expect((await get(path, { 'if-none-match': first.headers.etag! })).status).toBe(304)
    expect((await get(path, { 'if-none-match': `W/${first.headers.etag}` })).status).toBe(304)
    expect((await get(path, { 'if-none-match': '"other"' })).status).toBe(200)
    // If-None-Match wins over If-Modified-Since.
    expect((await get(path, { 'if-none-match': '"other"', 'if-modified-since': lm })).status).toBe(200)
  })

  it.each([
    ['small (from memory)', '/debian/small.bin', 'small.bin'],
    ['large (from disk)', '/debian/big.iso', 'big.iso'],
  ])('Range with If-Range: 206 when it matches, the whole file when not; %s', async (_what, p, rel) => {
    const bytes = files[rel]!
    const full = await get(p)
    const etag = full.headers.etag!
    const lm = full.headers['last-modified']!
    const part = await get(p, { range: 'bytes=100-199' })
    expect(part.status).toBe(206)
    expect(part.headers['content-range']).toBe(`bytes 100-199/${bytes.length}`)
    expect(part.body.equals(bytes.subarray(100, 200))).toBe(true)
    const tail = await get(p, { range: 'bytes=-10' })
    expect(tail.body.equals(bytes.subarray(bytes.length - 10))).toBe(true)
    expect((await get(p, { range: 'bytes=5-', 'if-range': lm })).status).toBe(206)
    expect((await get(p, { range: 'bytes=5-', 'if-range': etag })).status).toBe(206)
    const stale = await get(p, { range: 'bytes=5-', 'if-range': 'Mon, 01 Jan 2024 00:00:00 GMT' })
    expect(stale.status).toBe(200)
    expect(stale.body.equals(bytes)).toBe(true)
    expect((await get(p, { range: 'bytes=5-', 'if-range': '"not-it"' })).status).toBe(200)
    expect((await get(p, { range: 'bytes=5-', 'if-range': `W/${etag}` })).status).toBe(200)
    // Several ranges: the whole file (RFC 9110 allows it).
    expect((await get(p, { range: 'bytes=0-1,5-6' })).status).toBe(200)
  })

  it('a range at the end is 416 with Content-Range: bytes */SIZE (curl)', async () => {
    const size = files['big.iso']!.length
    const r = await curl(['-i', '-r', `${size}-`, `${gw.url}/debian/big.iso`])
    const text = r.stdout.toString('latin1')
    expect(text).toMatch(/^HTTP\/1\.1 416 /)
    expect(text).toContain(`Content-Range: bytes */${size}`)
  })

  it.each([
    ['small.bin', 40_000],
    ['big.iso', 1_500_000],
  ])('curl -C - resumes %s from a partial file', async (rel, have) => {
    const out = join(work, `resume-${rel}`)
    writeFileSync(out, files[rel]!.subarray(0, have))
    const r = await curl(['-C', '-', '-o', out, `${gw.url}/debian/${rel}`])
    expect(r.stderr).toBe('')
    expect(r.code).toBe(0)
    expect(readFileSync(out).equals(files[rel]!)).toBe(true)
  })
})

describe('one connection', () => {
  it('pipelined requests come back in order', async () => {
    const paths = [
      '/debian/big.iso',
      '/debian/dists/stable/Release',
      '/debian/nope',
      '/debian/small.bin',
      '/debian/big.iso',
    ]
    const raw = paths.map((p) => `GET ${p} HTTP/1.1\r\nHost: x\r\n\r\n`).join('')
    const { responses } = await rawExchange(gw.port, raw, paths.length)
    expect(responses.map((r) => r.status)).toEqual([200, 200, 404, 200, 200])
    expect(responses[0]!.body.equals(files['big.iso']!)).toBe(true)
    expect(responses[1]!.body.toString()).toContain('Suite: stable')
    expect(responses[3]!.body.equals(files['small.bin']!)).toBe(true)
    expect(responses[4]!.body.equals(files['big.iso']!)).toBe(true)
  })
})

describe('listings from the index', () => {
  it('HTML in the shape of nginx autoindex, with sizes, dates and CIDs, sortable', async () => {
    const r = await get('/debian/')
    expect(r.status).toBe(200)
    const html = r.body.toString()
    expect(html).toContain('<title>Index of /debian/</title>')
    expect(html).toContain('<a href="../">../</a>')
    expect(html).toMatch(/<a href="dists\/">dists\/<\/a> +\d\d-\w{3}-\d{4} \d\d:\d\d +- {2}bafy/)
    const small = (await idx.get('small.bin'))!
    expect(html).toMatch(
      new RegExp(`<a href="small.bin">small.bin</a> +05-Mar-2024 06:07 +100000  ${small.cid}`),
    )
    // Evicted files are listed as they were; symlinks leading out are not listed at all.
    expect(html).toContain('<a href="evicted.deb">evicted.deb</a>')
    expect(html).not.toContain('leak')
    const bySize = (await get('/debian/?C=S&O=D')).body.toString()
    const order = ['big.iso', 'cut.deb', 'small.bin', 'evicted.deb'].map((n) => bySize.indexOf(`href="${n}"`))
    expect(order.every((x, i) => x > 0 && (i === 0 || x > order[i - 1]!))).toBe(true)
  })

  it('JSON in the fields of nginx autoindex_format json, with CIDs; a symlinked suite as a directory', async () => {
    const r = await get('/debian/dists/?format=json')
    expect(r.headers['content-type']).toBe('application/json')
    const list = JSON.parse(r.body.toString()) as {
      name: string
      type: string
      mtime: string
      size?: number
      cid?: string
    }[]
    expect(list.map((e) => [e.name, e.type])).toEqual([
      ['bookworm', 'directory'],
      ['stable', 'directory'],
    ])
    const byAccept = await get('/debian/dists/bookworm/', { accept: 'application/json' })
    const entries = JSON.parse(byAccept.body.toString()) as {
      name: string
      type: string
      size?: number
      cid?: string
      mtime: string
    }[]
    expect(entries).toContainEqual({
      name: 'Release',
      type: 'file',
      size: files['dists/bookworm/Release']!.length,
      mtime: 'Tue, 05 Mar 2024 06:07:08 GMT',
      cid: (await idx.get('dists/bookworm/Release'))!.cid,
    })
  })

  it('the root page lists the mirrors', async () => {
    const r = await get('/')
    expect(r.body.toString()).toContain('<a href="/debian/">debian</a>')
    expect(JSON.parse((await get('/', { accept: 'application/json' })).body.toString())).toEqual({
      mirrors: [{ name: 'debian', url: '/debian/' }],
    })
  })
})

describe('headers never claim a CID for other bytes', () => {
  it('a file changed on disk since the scan is served with headers from its stat, and with its CID after the next scan', async () => {
    const rel = 'dists/bookworm/main/binary-amd64/Packages'
    const before = await get(`/debian/${rel}`)
    expect(before.headers.etag).toBe(`"${(await idx.get(rel))!.cid}"`)
    // rsync's way: a new file renamed over the old one.
    const tmp = join(root, 'dists/bookworm/main/binary-amd64/.Packages.tmp')
    writeFileSync(tmp, 'Package: g++\nVersion: 2\n')
    const { renameSync } = await import('node:fs')
    renameSync(tmp, join(root, rel))
    const st = statSync(join(root, rel))
    // Within the stat cache's second the old bytes and their CID may still be served together; after it, the new.
    let after = await get(`/debian/${rel}`)
    const deadline = Date.now() + 30_000
    while (after.body.toString() !== 'Package: g++\nVersion: 2\n' && Date.now() < deadline) {
      expect(after.headers.etag).toBe(before.headers.etag)
      await new Promise((r) => setTimeout(r, 25))
      after = await get(`/debian/${rel}`)
    }
    expect(after.body.toString()).toBe('Package: g++\nVersion: 2\n')
    expect(after.headers.etag).not.toMatch(/bafk/)
    expect(after.headers['x-ipfs-roots']).toBeUndefined()
    expect(after.headers['repr-digest']).toBeUndefined()
    expect(after.headers['last-modified']).toBe(new Date(st.mtimeMs).toUTCString())
    await idx.scan()
    const rescanned = await get(`/debian/${rel}`)
    expect(rescanned.headers.etag).toBe(`"${(await idx.get(rel))!.cid}"`)
    expect(rescanned.headers['repr-digest']).toBe(`sha-256=:${sha256b64(rescanned.body)}:`)
  })
})

describe('evicted files', () => {
  it('without a fetch-back: HEAD from the index, GET a one-line 503 naming the code', async () => {
    const rec = (await idx.get('evicted.deb'))!
    expect(rec.state).toBe('evicted')
    const head = await get('/debian/evicted.deb', {}, 'HEAD')
    expect(head.status).toBe(200)
    expect(head.headers['content-length']).toBe('5000')
    expect(head.headers.etag).toBe(`"${rec.cid}"`)
    expect(head.headers['last-modified']).toBe('Tue, 05 Mar 2024 06:07:08 GMT')
    expect((await get('/debian/evicted.deb', { 'if-none-match': `"${rec.cid}"` })).status).toBe(304)
    const r = await get('/debian/evicted.deb')
    expect(r.status).toBe(503)
    expect(r.body.toString()).toMatch(
      /^503 Service Unavailable: .*evicted.*CIDMIRROR_ERR_GATEWAY_NO_FETCHBACK\)\n$/,
    )
  })

  it('with a fetch-back: its bytes streamed (ranges passed on); one that fails mid-body cuts the connection', async () => {
    const asked: { file: EvictedFile; range: unknown }[] = []
    const fetchBack: FetchBack = {
      async open(file, range) {
        asked.push({ file, range })
        const bytes = file.path === 'cut.deb' ? Buffer.alloc(300_000, 3) : Buffer.alloc(5000, 9)
        const part = range ? bytes.subarray(range.start, range.end + 1) : bytes
        return {
          source: 'test-copy',
          body: (async function* () {
            yield part.subarray(0, 1000)
            if (file.path === 'cut.deb') throw new Error('block 2 does not hash to its CID')
            yield part.subarray(1000)
          })(),
        }
      },
    }
    const gw2 = await gatewayOver(db, [{ name: 'debian', root }], { fetchBack })
    try {
      const ok = await request(`${gw2.url}/debian/evicted.deb`)
      expect(ok.statusCode).toBe(200)
      expect(Buffer.from(await ok.body.arrayBuffer()).equals(Buffer.alloc(5000, 9))).toBe(true)
      const ranged = await request(`${gw2.url}/debian/evicted.deb`, { headers: { range: 'bytes=10-19' } })
      expect(ranged.statusCode).toBe(206)
      expect((await ranged.body.arrayBuffer()).byteLength).toBe(10)
      expect(asked[1]!.range).toEqual({ start: 10, end: 19 })
      expect(asked[0]!.file).toMatchObject({ mirror: 'debian', path: 'evicted.deb', size: 5000 })
      // The status line is out when the bad block comes: curl must see a cut transfer, never a clean end.
      const cut = await curl(['-o', join(work, 'cut.out'), `${gw2.url}/debian/cut.deb`])
      // curl's 18: the status and the first bytes came, then the connection closed short of Content-Length.
      expect(cut.code).toBe(18)
      expect(cut.stderr).toMatch(/transfer closed with 299000 bytes remaining/)
    } finally {
      await gw2.close()
    }
  })
})

describe('closed doors: the path-traversal corpus', () => {
  const long = 'a'.repeat(300)
  const corpus = [
    '/debian/../secret',
    '/debian/%2e%2e/secret',
    '/debian/%2E%2E/%2e%2e/secret',
    '/debian/..%2fsecret',
    '/debian/%2e%2e%2fsecret',
    '/debian/dists/../../secret',
    '/debian/dists/%2e%2e/%2e%2e/secret',
    '/debian/./../secret',
    '/debian/..\\secret',
    '/debian/%5c..%5csecret',
    '/debian/..%5csecret',
    '/debian/leak',
    '/debian/leakdir/secret',
    '/debian/leakdir/mirrors/secret',
    '/debian/leakdir/',
    '/debian/%00',
    '/debian/small.bin%00.txt',
    '/debian/small.bin\x00',
    `/debian/${long}`,
    `/debian/${'d/'.repeat(2100)}x`,
    '/debian/%c0%ae%c0%ae/secret',
    '/debian/%ff',
    '/debian//../secret',
    '/../secret',
    '/debian/dists/stable/../../../secret',
  ]
  it.each(
    corpus.map((p) => [p.length > 80 ? `${p.slice(0, 60)}... (${p.length} bytes)` : JSON.stringify(p), p]),
  )('%s: 400 or 404, never a byte of the secret', async (_name, p) => {
    const { responses, data } = await rawExchange(
      gw.port,
      `GET ${p} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`,
      1,
    )
    expect(data.toString('latin1')).not.toContain(SECRET)
    expect(responses.length === 0 || [400, 404].includes(responses[0]!.status)).toBe(true)
  })
})

describe('limits', () => {
  it('a request target past max_url_bytes is 414; headers past max_header_bytes are 431', async () => {
    const a = await rawExchange(gw.port, `GET /debian/${'x'.repeat(9000)} HTTP/1.1\r\nHost: x\r\n\r\n`, 1)
    expect(a.responses[0]?.status).toBe(414)
    const b = await rawExchange(
      gw.port,
      `GET /debian/small.bin HTTP/1.1\r\nHost: x\r\nX-Big: ${'y'.repeat(20_000)}\r\n\r\n`,
      1,
    )
    expect(b.data.toString('latin1')).toMatch(/^HTTP\/1\.1 431 /)
  })

  it('a client that never finishes its headers is dropped (slowloris)', async () => {
    const r = await rawExchange(gw.port, 'GET /debian/small.bin HTTP/1.1\r\nHost: x\r\nX-Slow: ', 1)
    // Node answers 408 and closes, or closes.
    expect(r.closed || r.responses[0]?.status === 408).toBe(true)
    expect(r.data.toString('latin1')).not.toContain('200 OK')
  })

  it('methods other than GET and HEAD get 405 with Allow', async () => {
    const r = await request(`${gw.url}/debian/small.bin`, { method: 'POST', body: 'x' })
    expect(r.statusCode).toBe(405)
    expect(r.headers.allow).toBe('GET, HEAD')
    await r.body.dump()
  })
})

describe('operations', () => {
  it('/metrics counts requests by status, bytes and open connections', async () => {
    const text = (await get('/metrics')).body.toString()
    expect(text).toMatch(/cidmirror_gateway_requests_total\{status="200"\} \d+/)
    expect(text).toMatch(/cidmirror_gateway_requests_total\{status="404"\} \d+/)
    expect(text).toMatch(/cidmirror_gateway_sent_bytes_total [1-9]\d*/)
    expect(text).toMatch(/cidmirror_gateway_open_connections [1-9]/)
    expect(text).toMatch(/cidmirror_gateway_request_duration_seconds_count [1-9]\d*/)
  })

  it('the access log is in nginx combined format', async () => {
    await get('/debian/small.bin', { 'user-agent': 'Debian APT-HTTP/1.3 (2.6.1)', referer: 'http://x/"y' })
    const file = join(work, 'log', 'access.log')
    const text = await waitFor(
      () => {
        const t = readFileSync(file, 'utf8')
        return t.includes('APT-HTTP') ? t : undefined
      },
      'the APT-HTTP line in the access log',
      30_000,
    )
    const line = text.split('\n').find((l) => l.includes('APT-HTTP'))!
    expect(line).toMatch(
      /^127\.0\.0\.1 - - \[\d\d\/\w{3}\/\d{4}:\d\d:\d\d:\d\d \+0000\] "GET \/debian\/small\.bin HTTP\/1\.1" 200 100000 "http:\/\/x\/\\x22y" "Debian APT-HTTP\/1\.3 \(2\.6\.1\)"$/,
    )
  })
})
