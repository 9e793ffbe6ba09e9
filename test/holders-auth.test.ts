/**
 * A `kubo` target whose RPC API needs credentials (Kubo's `API.Authorizations`, since 0.25): its
 * `token` is sent by the replicator's calls and by the fetch-back's direct reads of it alike (a bearer
 * token, or `user:password` as basic auth), and nothing of it goes into a copy record. One real Kubo
 * daemon on loopback with two authorizations; the targets come from a real config file through the
 * daemon's own factories (TARGET_FACTORIES, holderNodesOf), as the daemon wires them.
 */
import { randomBytes } from 'node:crypto'
import { mkdirSync, readFileSync, unlinkSync, utimesSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { holderNodesOf, readReplicationConfig, type TargetSettings } from '../src/daemon/index.ts'
import { TARGET_FACTORIES } from '../src/daemon/targets.ts'
import { type Database, openDatabase } from '../src/db.ts'
import { createFetchBack, type EvictedFile, FetchFailedError } from '../src/gateway/index.ts'
import { BlockReader, type CopyRecord, CopyStore, mapBlocks, openMirrorIndex } from '../src/index/index.ts'
import { KuboNode } from '../src/ipfs/index.ts'
import { loadConfig } from '../src/sync/index.ts'
import { type Loopback, rpcRelay } from './helpers/fetch-sources.ts'
import { Kubo } from './helpers/kubo.ts'
import { tempDir, writeToml } from './jobs-helpers.ts'

const MiB = 1024 * 1024
const BEARER = 'bearer-secret-of-the-test'
const BASIC = 'alice:pass-of-the-test'

let tmp: ReturnType<typeof tempDir>
let db: Database
let copies: CopyStore
let kubo: Kubo
let targets: TargetSettings[]
let holders: ReturnType<typeof holderNodesOf>
/** A relay in front of the Kubo RPC API (the targets' `api`) that notes each command and passes the credentials on. */
let relay: Loopback

interface Sample {
  root: string
  file: EvictedFile
  bytes: Buffer
  local: ReturnType<typeof openMirrorIndex>['local']
}
const samples = new Map<string, Sample>()

/** A mirror with one 2-leaf file, indexed (its blocks mapped when `map`), added to the Kubo repo, evicted. */
async function evictedSample(name: string, map: boolean): Promise<Sample> {
  const root = join(tmp.dir, name)
  mkdirSync(join(root, 'pool'), { recursive: true })
  const path = 'pool/pkg.deb'
  const abs = join(root, path)
  const bytes = randomBytes(MiB + 4321)
  writeFileSync(abs, bytes)
  const mtime = new Date('2020-01-02T03:04:05.000Z')
  utimesSync(abs, mtime, mtime)
  const idx = openMirrorIndex(db, name, root)
  await idx.scan()
  if (map) expect((await mapBlocks(db, name, root)).stale).toEqual([])
  const rec = (await idx.get(path))!
  // Before the daemon starts: the CLI writes to the repo itself, so it needs no credentials.
  expect((await kubo.ok(['add', '-Q', '--cid-version=1', abs])).trim()).toBe(rec.cid)
  await idx.local.evict([{ path, cid: rec.cid, size: rec.size, mtimeMs: rec.mtimeMs }], async (r) =>
    unlinkSync(join(root, r.path)),
  )
  return {
    root,
    bytes,
    local: idx.local,
    file: { mirror: name, path, cid: rec.cid, size: rec.size, mtimeMs: rec.mtimeMs },
  }
}

function copyOn(s: Sample, target: string): CopyRecord {
  const now = Date.now()
  return {
    cid: s.file.cid,
    holder: `ipfs:${target}`,
    kind: 'ipfs-node',
    target,
    how: 'pinned',
    status: 'verified',
    scope: 'entity',
    local: false,
    checkedAt: now,
    since: now,
  }
}

async function collect(body: AsyncIterable<Uint8Array>): Promise<Buffer> {
  const parts: Uint8Array[] = []
  for await (const x of body) parts.push(x)
  return Buffer.concat(parts)
}

beforeAll(async () => {
  tmp = tempDir('cidmirror-holders-auth-')
  kubo = await Kubo.create({ parent: tmp.dir })
  await kubo.authorize({ ci: `bearer:${BEARER}`, alice: `basic:${BASIC}` })
  db = await openDatabase(join(tmp.dir, 'db'))
  copies = new CopyStore(db)
  for (const [name, map] of [
    ['bearer', true],
    ['dag', false],
    ['basic', true],
    ['none', true],
  ] as const)
    samples.set(name, await evictedSample(name, map))
  await kubo.start()
  relay = await rpcRelay(new KuboNode({ api: kubo.api }).label)
  const file = writeToml({
    dir: tmp.dir,
    mirrors: `[[mirrors]]
name = "deb"
upstream = "rsync://127.0.0.1:1/m/"

[replication]
n = 1

[[replication.targets]]
name = "bearer"
type = "kubo"
api = "${relay.url}"
token = "${BEARER}"

[[replication.targets]]
name = "basic"
type = "kubo"
api = "${relay.url}"
token_file = "basic.token"

[[replication.targets]]
name = "none"
type = "kubo"
api = "${relay.url}"
`,
  })
  writeFileSync(join(tmp.dir, 'basic.token'), `${BASIC}\n`, { mode: 0o600 })
  targets = readReplicationConfig(await loadConfig(file)).replication!.targets
  holders = holderNodesOf(() => targets)
}, 120_000)

afterAll(async () => {
  await holders?.close()
  await relay?.close()
  await kubo?.dispose()
  await db?.close()
  tmp?.cleanup()
})

/** The fetch-back of sample `s` whose only source is the holder its copy on `target` names. */
function fetchBackOf(s: Sample) {
  return createFetchBack({
    rootOf: (m) => (m === s.file.mirror ? s.root : undefined),
    recorderOf: (m) => (m === s.file.mirror ? s.local : undefined),
    copies,
    holders: holders.holders,
    nodes: new BlockReader(db),
  })
}

describe('a kubo target whose RPC API needs auth', () => {
  it('the real Kubo refuses calls without credentials', async () => {
    const target = TARGET_FACTORIES.kubo(targets.find((t) => t.name === 'none')!, {
      node: undefined,
      source: undefined,
      connect: undefined,
    })
    const s = samples.get('none')!
    await expect(
      target.check(
        { key: `cid:${s.file.cid}`, scope: 'entity', cid: s.file.cid },
        { signal: AbortSignal.timeout(30_000) },
      ),
    ).rejects.toThrow(
      /^replication\.targets\[none\]\.api: the IPFS node at .* refused the credentials \(403 Kubo RPC Access Denied/,
    )
    await copies.put(copyOn(s, 'none'))
    const err = await fetchBackOf(s)
      .open(s.file, undefined, AbortSignal.timeout(60_000))
      .catch((e: unknown) => e)
    expect(err).toBeInstanceOf(FetchFailedError)
    expect((err as Error).message).toMatch(/Access Denied/)
  })

  it.each([
    ['bearer', 'a bearer token'],
    ['basic', 'user:password from token_file'],
  ] as const)(
    '%s: the replicator checks its pin and the fetch-back reads the file back (cat) with %s',
    async (name, _how) => {
      const s = samples.get(name)!
      const target = TARGET_FACTORIES.kubo(targets.find((t) => t.name === name)!, {
        node: undefined,
        source: undefined,
        connect: undefined,
      })
      const found = await target.check(
        { key: `cid:${s.file.cid}`, scope: 'entity', cid: s.file.cid },
        { signal: AbortSignal.timeout(30_000) },
      )
      expect(found).toHaveLength(1)
      expect(found[0]).toMatchObject({ cid: s.file.cid, target: name, status: 'verified' })
      await target.close?.()
      await copies.put(copyOn(s, name))
      relay.requests.length = 0
      const fb = fetchBackOf(s)
      const res = await fb.open(s.file, undefined, AbortSignal.timeout(60_000))
      expect(res.source).toBe(`holder:ipfs:${name}`)
      expect((await collect(res.body)).equals(s.bytes)).toBe(true)
      await expect.poll(async () => (await s.local.of(s.file.path))?.state).toBe('refetched')
      expect(readFileSync(join(s.root, s.file.path)).equals(s.bytes)).toBe(true)
      // Its plain bytes: one cat, no dag export after a refused cat.
      expect(relay.requests.map((r) => r.split('?')[0])).toEqual(['/api/v0/cat'])
      // Neither the token nor its header is in what the index keeps of the copy.
      const kept = JSON.stringify(await copies.of(s.file.cid))
      expect(kept).not.toContain(BEARER)
      expect(kept).not.toContain('pass-of-the-test')
      expect(kept).not.toContain(Buffer.from(BASIC).toString('base64'))
    },
  )

  it("a file whose leaves are not known is read by the holder's dag export, with the credentials", async () => {
    const s = samples.get('dag')!
    await copies.put(copyOn(s, 'bearer'))
    relay.requests.length = 0
    const fb = fetchBackOf(s)
    const res = await fb.open(s.file, undefined, AbortSignal.timeout(60_000))
    expect(res.source).toBe('holder:ipfs:bearer')
    expect((await collect(res.body)).equals(s.bytes)).toBe(true)
    expect(relay.requests.map((r) => r.split('?')[0])).toEqual(['/api/v0/dag/export'])
    await expect.poll(async () => (await s.local.of(s.file.path))?.state).toBe('refetched')
  })
})
