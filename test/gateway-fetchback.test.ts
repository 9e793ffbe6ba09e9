/**
 * The gateway as the daemon wires it (`startGatewayService` from a config's `[gateway]`) fetching an
 * evicted file back through the fetch-back from a real Kubo on loopback, named in `fetch_from`: the
 * same bytes and headers as before the eviction, the file back on disk and present again in the index,
 * the next request served from disk.
 */

import { randomBytes } from 'node:crypto'
import { mkdirSync, mkdtempSync, readFileSync, rmSync, unlinkSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { pino } from 'pino'
import { request } from 'undici'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { readGatewayConfig, startGatewayService } from '../src/daemon/index.ts'
import { type Database, openDatabase } from '../src/db.ts'
import type { Gateway } from '../src/gateway/index.ts'
import { type MirrorIndex, openMirrorIndex } from '../src/index/index.ts'
import { loadConfig } from '../src/sync/index.ts'
import { Kubo } from './helpers/kubo.ts'
import { commandMirror, waitFor, writeToml } from './jobs-helpers.ts'

let dir: string
let kubo: Kubo
let db: Database
let idx: MirrorIndex
let gw: Gateway
let root: string
const bytes = randomBytes(3 * 1024 * 1024 + 777)

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'cidmirror-gw-fetchback-'))
  kubo = await Kubo.create({ parent: dir })
  await kubo.start()
  root = join(dir, 'mirrors', 'sample')
  mkdirSync(join(root, 'iso'), { recursive: true })
  writeFileSync(join(root, 'iso', 'big.iso'), bytes)
  const config = writeToml({ dir, mirrors: commandMirror('sample', 'true') })
  writeFileSync(
    config,
    `${readFileSync(config, 'utf8')}\n[gateway]\nlisten_port = 0\nfetch_from = ["${kubo.gateway}"]\n`,
  )
  db = await openDatabase(join(dir, 'db'))
  idx = openMirrorIndex(db, 'sample', root)
  await idx.scan()
  // The network holds the file (Kubo's CID is the index's), this disk no longer does.
  const cid = (await kubo.ok(['add', '-Q', '--cid-version=1', join(root, 'iso', 'big.iso')])).trim()
  const rec = (await idx.get('iso/big.iso'))!
  expect(cid).toBe(rec.cid)
  const out = await idx.local.evict(
    [{ path: rec.path, cid: rec.cid, size: rec.size, mtimeMs: rec.mtimeMs }],
    async () => unlinkSync(join(root, 'iso', 'big.iso')),
  )
  expect(out[0]).toMatchObject({ evicted: true })
  const settings = readGatewayConfig(await loadConfig(config))!
  gw = await startGatewayService({ settings, db, log: pino({ level: 'silent' }) })
}, 120_000)

afterAll(async () => {
  await gw?.close()
  await kubo?.dispose()
  await db?.close()
  rmSync(dir, { recursive: true, force: true })
})

it('an evicted file comes back from a fetch_from gateway: same bytes and headers, then from disk', async () => {
  const rec = (await idx.get('iso/big.iso'))!
  const r = await request(`${gw.url}/sample/iso/big.iso`)
  expect(r.statusCode).toBe(200)
  expect(r.headers.etag).toBe(`"${rec.cid}"`)
  expect(r.headers['content-length']).toBe(String(bytes.length))
  expect(r.headers['last-modified']).toBe(new Date(rec.mtimeMs).toUTCString())
  expect(Buffer.from(await r.body.arrayBuffer()).equals(bytes)).toBe(true)
  // Cached again: in the tree, and present in the index.
  await waitFor(
    async () => (await idx.get('iso/big.iso'))?.state === 'present',
    'the index to record it present',
    60_000,
    50,
  )
  expect(readFileSync(join(root, 'iso', 'big.iso')).equals(bytes)).toBe(true)
  const again = await request(`${gw.url}/sample/iso/big.iso`, { headers: { range: 'bytes=0-9' } })
  expect(again.statusCode).toBe(206)
  expect(again.headers.etag).toBe(`"${rec.cid}"`)
  expect(Buffer.from(await again.body.arrayBuffer()).equals(bytes.subarray(0, 10))).toBe(true)
})
