/**
 * The status page plugin on a bare fastify on 127.0.0.1, fed by a real index, a real audit summary
 * over copies written in the index room, job statuses in the sync room's shape, and recent requests;
 * loaded in headless Chromium (Debian's, driven by playwright-core), screenshotted, its text checked;
 * `/_status.json` holds the same data.
 */
import { mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import Fastify, { type FastifyInstance } from 'fastify'
import { type Browser, chromium } from 'playwright-core'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type Database, openDatabase } from '../src/db.ts'
import { type JobView, type RecentRequest, statusPage } from '../src/gateway/index.ts'
import { CopyStore, type MirrorIndex, openIndexReader, openMirrorIndex } from '../src/index/index.ts'
import { auditMirror } from '../src/replicator/index.ts'
import { tool } from './helpers/tools.ts'
import { get } from './helpers/trustless.ts'

let work: string
let db: Database
let app: FastifyInstance
let base: string
let browser: Browser
let index: MirrorIndex
let rootCid: string
const now = Date.now()

const jobs: JobView[] = [
  {
    name: 'debian',
    status: 'success',
    lastStarted: now - 600_000,
    lastEnded: now - 300_000,
    lastUpdate: now - 300_000,
    nextSchedule: now + 3_000_000,
    upstream: 'rsync://ftp.example.org/debian/',
    size: '12K',
    errorMsg: '',
  },
  {
    name: 'pypi',
    status: 'failed',
    lastStarted: now - 90_000,
    lastEnded: now - 60_000,
    lastUpdate: now - 60_000,
    nextSchedule: null,
    upstream: 'rsync://pypi.example.org/pypi/',
    size: 'unknown',
    errorMsg: 'rsync exited with code 23 <partial transfer>',
  },
]

const recent: RecentRequest[] = [
  {
    time: now - 2_000,
    method: 'GET',
    path: '/debian/dists/stable/InRelease',
    status: 304,
    bytes: 0,
    durationMs: 0.4,
  },
  {
    time: now - 5_000,
    method: 'GET',
    path: '/debian/pool/main/h/hello/hello_2.10-3_amd64.deb',
    status: 200,
    bytes: 56_132,
    durationMs: 1.9,
  },
]

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), 'cidmirror-status-'))
  const tree = join(work, 'debian')
  mkdirSync(join(tree, 'pool'), { recursive: true })
  writeFileSync(join(tree, 'pool', 'a.deb'), 'a'.repeat(5000))
  writeFileSync(join(tree, 'pool', 'b.deb'), 'b'.repeat(7000))
  db = await openDatabase(join(work, 'db'))
  index = openMirrorIndex(db, 'debian', tree)
  rootCid = (await index.scan()).rootCid
  // a.deb has two verified copies off this disk, b.deb none: one file under n = 2.
  const a = (await index.get('pool/a.deb'))!.cid
  const copies = new CopyStore(db)
  for (const holder of ['ipfs:12D3KooWAAA', 'ipfs:12D3KooWBBB'])
    await copies.put({
      cid: a,
      holder,
      kind: 'ipfs-node',
      how: 'pinned',
      status: 'verified',
      scope: 'entity',
      local: false,
      checkedAt: now - 120_000,
      since: now - 120_000,
    })
  app = Fastify()
  await app.register(statusPage, {
    title: 'mirrors.example.org',
    jobs: () => jobs,
    index: openIndexReader(db),
    replication: async (mirror) =>
      mirror === 'debian' ? auditMirror(db, openMirrorIndex(db, mirror, tree), { n: 2 }) : undefined,
    recent: () => recent,
    maxAgeMs: 0,
  })
  base = await app.listen({ host: '127.0.0.1', port: 0 })
  browser = await chromium.launch({ executablePath: tool('chromium'), args: ['--no-sandbox'] })
}, 60_000)

afterAll(async () => {
  await browser?.close()
  await app?.close()
  await db?.close()
  rmSync(work, { recursive: true, force: true })
})

describe('status page', () => {
  it('loads in Chromium and shows each mirror, its sync, root CID, files, replication and recent requests', async () => {
    const page = await browser.newPage({ viewport: { width: 1280, height: 900 } })
    const res = await page.goto(`${base}/_status`)
    expect(res?.status()).toBe(200)
    expect(res?.headers()['content-type']).toBe('text/html; charset=utf-8')
    expect(await page.title()).toBe('mirrors.example.org')
    const shot = process.env.CIDMIRROR_SCREENSHOT ?? join(work, 'status.png')
    await page.screenshot({ path: shot, fullPage: true })
    expect(statSync(shot).size).toBeGreaterThan(10_000)
    const rows = await page.locator('table').first().locator('tbody tr').allInnerTexts()
    expect(rows).toHaveLength(2)
    const [debian, pypi] = rows as [string, string]
    expect(debian).toContain('debian')
    expect(debian).toContain('success')
    expect(debian).toContain('5 min ago')
    expect(debian).toContain(rootCid)
    expect(debian).toMatch(/\b2\b/) // files
    expect(debian).toContain('11.7 KiB')
    expect(debian).toContain('verified: 1 file with 0 copies, 1 file with 2 copies')
    expect(debian).toContain('1 under n = 2')
    expect(debian).toContain('1 of 2 files ok; 6.8 KiB under-replicated')
    expect(pypi).toContain('failed')
    expect(pypi).toContain('rsync exited with code 23 <partial transfer>')
    expect(pypi).toContain('not indexed')
    expect(pypi).toContain('no replication')
    const requests = await page.locator('table').nth(1).locator('tbody tr').allInnerTexts()
    expect(requests[0]).toContain('/debian/dists/stable/InRelease')
    expect(requests[0]).toContain('304')
    expect(requests[1]).toContain('54.8 KiB')
    // The root CID links to its trustless block.
    const href = await page.locator(`a:has-text("${rootCid}")`).getAttribute('href')
    expect(href).toBe(`/ipfs/${rootCid}?format=car&dag-scope=block`)
    await page.close()
  })

  it('gives the same data as JSON at /_status.json', async () => {
    const r = await get(base, '/_status.json')
    expect(r.status).toBe(200)
    expect(r.headers['content-type']).toBe('application/json; charset=utf-8')
    const data = JSON.parse(r.body.toString())
    expect(data.mirrors.map((m: { name: string }) => m.name)).toEqual(['debian', 'pypi'])
    const debian = data.mirrors[0]
    expect(debian.job.status).toBe('success')
    expect(debian.index).toMatchObject({ rootCid, files: 2, bytes: 12_000 })
    expect(debian.replication).toMatchObject({ n: 2, files: 2, ok: 1, under: 1, bytesUnder: 7000 })
    expect(debian.replication.byVerified).toEqual({ '0': 1, '2': 1 })
    expect(data.mirrors[1].index).toBeNull()
    expect(data.recent).toEqual(recent)
  })

  it('escapes what it shows: a job error cannot inject markup', async () => {
    jobs[1]!.errorMsg = '<img src=x onerror=alert(1)>'
    const page = await browser.newPage()
    await page.goto(`${base}/_status`)
    expect(await page.locator('img').count()).toBe(0)
    expect(await page.locator('.err').textContent()).toBe('<img src=x onerror=alert(1)>')
    await page.close()
  })

  it('gathers the mirrors once per maxAgeMs, an audit once per replicationMaxAgeMs, recent requests at every load', async () => {
    let calls = 0
    let audits = 0
    const seen: RecentRequest[] = []
    const serve = async (maxAgeMs: number): Promise<{ url: string; close: () => Promise<void> }> => {
      const app2 = Fastify()
      await app2.register(statusPage, {
        jobs: () => {
          calls++
          return jobs
        },
        replication: async (mirror) => {
          audits++
          // Nothing to show for pypi: an undefined answer is asked again at the next gathering.
          return mirror === 'debian'
            ? { n: 1, files: 1, ok: 1, under: 0, bytesUnder: 0, byVerified: { '1': 1 } }
            : undefined
        },
        recent: () => seen,
        maxAgeMs,
        replicationMaxAgeMs: 3_600_000,
      })
      return { url: await app2.listen({ host: '127.0.0.1', port: 0 }), close: () => app2.close() }
    }
    const cached = await serve(3_600_000)
    try {
      await get(cached.url, '/_status')
      seen.push(recent[0]!)
      const data = JSON.parse((await get(cached.url, '/_status.json')).body.toString())
      expect(calls).toBe(1)
      expect(audits).toBe(2)
      expect(data.recent).toEqual([recent[0]])
      expect(data.mirrors[0].replication.n).toBe(1)
    } finally {
      await cached.close()
    }
    calls = 0
    audits = 0
    const fresh = await serve(0)
    try {
      await get(fresh.url, '/_status.json')
      await get(fresh.url, '/_status.json')
      expect(calls).toBe(2) // the jobs at each gathering
      expect(audits).toBe(3) // debian's audit kept, pypi's undefined asked again
    } finally {
      await fresh.close()
    }
  })

  it('audits a mirror again as soon as a new scan commits, however long its health is otherwise kept', async () => {
    const tree = join(work, 'fedora')
    mkdirSync(tree, { recursive: true })
    writeFileSync(join(tree, 'one.rpm'), 'one')
    const fedora = openMirrorIndex(db, 'fedora', tree)
    const app2 = Fastify()
    await app2.register(statusPage, {
      index: openIndexReader(db),
      replication: (mirror) => auditMirror(db, openMirrorIndex(db, mirror, tree), { n: 1 }),
      maxAgeMs: 0,
      replicationMaxAgeMs: 3_600_000,
    })
    const url = await app2.listen({ host: '127.0.0.1', port: 0 })
    const health = async (): Promise<{ files: number; rootCid: string | null }> => {
      const data = JSON.parse((await get(url, '/_status.json')).body.toString())
      const m = data.mirrors.find((x: { name: string }) => x.name === 'fedora')
      return { files: m.replication.files, rootCid: m.index.rootCid }
    }
    try {
      const first = await fedora.scan()
      expect(await health()).toEqual({ files: 1, rootCid: first.rootCid })
      writeFileSync(join(tree, 'two.rpm'), 'two')
      const second = await fedora.scan()
      // Kept for an hour while the scan stays; the commit of scan 2 is a new tree to judge.
      expect(await health()).toEqual({ files: 2, rootCid: second.rootCid })
      expect(await health()).toEqual({ files: 2, rootCid: second.rootCid })
    } finally {
      await app2.close()
    }
  })
})
