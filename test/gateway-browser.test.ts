/**
 * A listing of the gateway in a real browser: Debian's headless Chromium driven by playwright-core
 * (`executablePath`, no downloaded browser). The test takes a screenshot and reads the page's text and
 * links as a person would see them; following a link downloads the file with the index's ETag.
 */
import { mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { type Browser, chromium } from 'playwright-core'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { type Database, openDatabase } from '../src/db.ts'
import type { Gateway } from '../src/gateway/index.ts'
import { openMirrorIndex } from '../src/index/index.ts'
import { gatewayOver } from './helpers/gateway.ts'
import { tool } from './helpers/tools.ts'

let work: string
let db: Database
let gw: Gateway
let browser: Browser
let cids: Record<string, string>

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), 'cidmirror-gw-browser-'))
  const root = join(work, 'sample')
  mkdirSync(join(root, 'pool'), { recursive: true })
  writeFileSync(join(root, 'README.txt'), 'a sample mirror\n')
  writeFileSync(join(root, 'zeta.txt'), 'last by name\n')
  writeFileSync(join(root, 'pool', 'hello_1.0+b1_amd64.deb'), Buffer.alloc(12_345, 5))
  db = await openDatabase(join(work, 'db'))
  const idx = openMirrorIndex(db, 'sample', root)
  await idx.scan()
  cids = {
    readme: (await idx.get('README.txt'))!.cid,
    pool: (await idx.get('pool'))!.cid,
    deb: (await idx.get('pool/hello_1.0+b1_amd64.deb'))!.cid,
  }
  gw = await gatewayOver(db, [{ name: 'sample', root }])
  browser = await chromium.launch({ executablePath: tool('chromium'), args: ['--no-sandbox'] })
})

afterAll(async () => {
  await browser?.close()
  await gw?.close()
  await db?.close()
  rmSync(work, { recursive: true, force: true })
})

it('a listing loads in headless Chromium: names, sizes, CIDs, sorting, and a link that downloads', async () => {
  const page = await browser.newPage()
  const res = await page.goto(`${gw.url}/sample/`)
  expect(res?.status()).toBe(200)
  const shot = join(work, 'listing.png')
  await page.screenshot({ path: shot, fullPage: true })
  expect(statSync(shot).size).toBeGreaterThan(1000)
  expect(await page.title()).toBe('Index of /sample/')
  const text = (await page.textContent('body')) ?? ''
  expect(text).toContain('Index of /sample/')
  expect(text).toMatch(new RegExp(`pool/\\s+\\d\\d-\\w{3}-\\d{4} \\d\\d:\\d\\d\\s+-\\s+${cids.pool}`))
  expect(text).toMatch(new RegExp(`README.txt\\s+\\d\\d-\\w{3}-\\d{4} \\d\\d:\\d\\d\\s+16\\s+${cids.readme}`))
  // Sorting by name, descending, through the column's link (directories stay first, as in nginx).
  const names = () => page.$$eval('pre a', (as) => as.map((a) => a.textContent ?? ''))
  const before = await names()
  expect(before.indexOf('README.txt')).toBeLessThan(before.indexOf('zeta.txt'))
  await page.click('text=Name')
  expect(page.url()).toContain('?C=N&O=D')
  const after = await names()
  expect(after.indexOf('zeta.txt')).toBeLessThan(after.indexOf('README.txt'))
  expect(after.indexOf('pool/')).toBeLessThan(after.indexOf('zeta.txt'))
  // Into a directory and the file's link: the response carries the index's CID.
  await page.goto(`${gw.url}/sample/pool/`)
  expect((await page.textContent('body')) ?? '').toContain('hello_1.0+b1_amd64.deb')
  const [download] = await Promise.all([
    page.waitForResponse((r) => r.url().endsWith('.deb')),
    page.evaluate(() => fetch('hello_1.0+b1_amd64.deb').then((r) => r.arrayBuffer())),
  ])
  expect(download.status()).toBe(200)
  expect(download.headers().etag).toBe(`"${cids.deb}"`)
  await page.close()
})
