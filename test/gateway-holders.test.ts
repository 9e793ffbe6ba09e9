/**
 * The gateway as the daemon wires it (`startGatewayService`, the holders looked up from the config's
 * `[[replication.targets]]` by holderNodesOf) fetching an evicted file back from the Kubo target that
 * holds it, a real Kubo on loopback with no `gateway` configured: over its RPC API, verified, with no
 * local node and no `fetch_from`; `/metrics` labels the bytes `holder:ipfs:<peer id>`.
 */
import { randomBytes } from 'node:crypto'
import { mkdirSync, readFileSync, unlinkSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { pino } from 'pino'
import { request } from 'undici'
import { afterAll, beforeAll, expect, it } from 'vitest'
import {
  holderNodesOf,
  readGatewayConfig,
  readReplicationConfig,
  startGatewayService,
} from '../src/daemon/index.ts'
import { type Database, openDatabase } from '../src/db.ts'
import type { Gateway } from '../src/gateway/index.ts'
import { CopyStore, type MirrorIndex, openMirrorIndex } from '../src/index/index.ts'
import { loadConfig } from '../src/sync/index.ts'
import { Kubo } from './helpers/kubo.ts'
import { commandMirror, tempDir, waitFor, writeToml } from './jobs-helpers.ts'

let tmp: ReturnType<typeof tempDir>
let holder: Kubo
let holderId: string
let db: Database
let idx: MirrorIndex
let gw: Gateway
let holders: ReturnType<typeof holderNodesOf>
let root: string
const bytes = randomBytes(2 * 1024 * 1024 + 321)

beforeAll(async () => {
  tmp = tempDir('cidmirror-gw-holders-')
  holder = await Kubo.create({ parent: tmp.dir })
  await holder.start()
  holderId = (await holder.peer()).id
  root = join(tmp.dir, 'mirrors', 'sample')
  mkdirSync(join(root, 'pool'), { recursive: true })
  writeFileSync(join(root, 'pool', 'p.deb'), bytes)
  const config = writeToml({ dir: tmp.dir, mirrors: commandMirror('sample', 'true') })
  writeFileSync(
    config,
    `${readFileSync(config, 'utf8')}
[gateway]
listen_port = 0

[replication]
n = 1

[[replication.targets]]
name = "kubo-b"
type = "kubo"
api = "${holder.api}"
`,
  )
  db = await openDatabase(join(tmp.dir, 'db'))
  idx = openMirrorIndex(db, 'sample', root)
  await idx.scan()
  const rec = (await idx.get('pool/p.deb'))!
  expect((await holder.ok(['add', '-Q', '--cid-version=1', join(root, 'pool', 'p.deb')])).trim()).toBe(
    rec.cid,
  )
  // The copy the Kubo target records once its pin is checked: no retrieval URL (no gateway).
  const now = Date.now()
  await new CopyStore(db).put({
    cid: rec.cid,
    holder: `ipfs:${holderId}`,
    kind: 'ipfs-node',
    how: 'pinned',
    status: 'verified',
    scope: 'entity',
    local: false,
    checkedAt: now,
    since: now,
    target: 'kubo-b',
  })
  await idx.local.evict([{ path: rec.path, cid: rec.cid, size: rec.size, mtimeMs: rec.mtimeMs }], async () =>
    unlinkSync(join(root, 'pool', 'p.deb')),
  )
  const loaded = await loadConfig(config)
  const repl = readReplicationConfig(loaded)
  holders = holderNodesOf(() => repl.replication?.targets ?? [])
  gw = await startGatewayService({
    settings: readGatewayConfig(loaded)!,
    db,
    log: pino({ level: 'silent' }),
    holders: holders.holders,
  })
}, 120_000)

afterAll(async () => {
  await gw?.close()
  await holders?.close()
  await holder?.dispose()
  await db?.close()
  tmp?.cleanup()
})

it("an evicted file comes back from the Kubo target's RPC API, labelled by its holder in /metrics", async () => {
  const rec = (await idx.get('pool/p.deb'))!
  const r = await request(`${gw.url}/sample/pool/p.deb`)
  expect(r.statusCode).toBe(200)
  expect(r.headers.etag).toBe(`"${rec.cid}"`)
  expect(Buffer.from(await r.body.arrayBuffer()).equals(bytes)).toBe(true)
  await waitFor(
    async () => (await idx.get('pool/p.deb'))?.state === 'present',
    'the index to record it present',
    60_000,
    50,
  )
  expect(readFileSync(join(root, 'pool', 'p.deb')).equals(bytes)).toBe(true)
  const metrics = await (await request(`${gw.url}/metrics`)).body.text()
  const line = metrics
    .split('\n')
    .find((l) => l.startsWith('cidmirror_fetchback_bytes_total{') && l.includes(`holder:ipfs:${holderId}`))
  expect(line).toContain('kind="holder"')
  expect(Number(line?.split(' ').pop())).toBe(bytes.length)
})
