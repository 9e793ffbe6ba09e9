/**
 * Credentials wherever cidmirror talks to a Kubo RPC API other than a kubo target's: the local node of
 * `[ipfs] api` (`token` / `token_file`) for the daemon and `doctor -c`, a cluster target's `ipfs_api`
 * (`ipfs_api_token`) for the fetch-back, and the holder clients a reload replaces. One real Kubo on
 * loopback with `API.Authorizations` (a bearer token and a basic `user:password`), a real rsync
 * upstream, the CLI and the daemon run as the user runs them.
 */
import { randomBytes } from 'node:crypto'
import { chmodSync, existsSync, mkdirSync, unlinkSync, utimesSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { holderNodesOf, readReplicationConfig, type TargetSettings } from '../src/daemon/index.ts'
import { replicationKeysNeedingRestart } from '../src/daemon/reload.ts'
import { type Database, openDatabase } from '../src/db.ts'
import { createFetchBack, type EvictedFile } from '../src/gateway/index.ts'
import { BlockReader, CopyStore, mapBlocks, openMirrorIndex } from '../src/index/index.ts'
import { IpfsAuthRefusedError } from '../src/ipfs/index.ts'
import { ConfigError, loadConfig } from '../src/sync/index.ts'
import { killChild, runCli, STACK_LINE, spawnDaemon } from './helpers/cli.ts'
import { Kubo } from './helpers/kubo.ts'
import { type Rsyncd, startRsyncd } from './helpers/rsyncd.ts'
import { freePort, tempDir, waitFor, writeToml } from './jobs-helpers.ts'

const BEARER = 'local-bearer-of-the-test'
const BASIC = 'bob:local-pass-of-the-test'
const WRONG = 'not-one-of-its-authorizations'
/** The test's own `ipfs` commands go through the running daemon's API too: with its credentials. */
const AS_CLI = `--api-auth=bearer:${BEARER}`
/** Kubo's init pins the empty directory; the rest are ours. */
const EMPTY_DIR = 'QmUNLLsPACCz1vLxQVkXqqLX5R1X345qqfHbsf67hvA3Nn'

let tmp: ReturnType<typeof tempDir>
let kubo: Kubo
let upstream: Rsyncd
let port: number
let daemons: ReturnType<typeof spawnDaemon>[] = []

/** A config of its own folder `name` (its mirrors under the Kubo repo's parent), then `sections`. */
function configWith(name: string, sections: string): string {
  const dir = join(tmp.dir, name)
  mkdirSync(dir, { recursive: true })
  return writeToml({
    dir,
    managerPort: port,
    interval: '6h',
    mirrors: `[[mirrors]]
name = "deb"
provider = "rsync"
upstream = "${upstream.url}"

${sections}
`,
  })
}

function privateFile(path: string, text: string, mode = 0o600): string {
  writeFileSync(path, `${text}\n`)
  chmodSync(path, mode)
  return path
}

/** A user error as the CLI must give it: one line on stderr, exit 2, no stack, no credential. */
function expectOneLine(r: { code: number; stderr: string }, pattern: RegExp): void {
  expect(r.code).toBe(2)
  expect(r.stderr).toMatch(pattern)
  expect(r.stderr.trim().split('\n')).toHaveLength(1)
  expect(r.stderr).not.toMatch(STACK_LINE)
  for (const secret of [BEARER, BASIC, WRONG, 'local-pass-of-the-test'])
    expect(r.stderr).not.toContain(secret)
}

async function recursivePins(): Promise<string[]> {
  const out = await kubo.ok([AS_CLI, 'pin', 'ls', '--type=recursive', '--quiet'])
  return out.split('\n').filter((c) => c && c !== EMPTY_DIR)
}

beforeAll(async () => {
  tmp = tempDir('cidmirror-ipfs-auth-')
  upstream = await startRsyncd()
  mkdirSync(join(upstream.root, 'pool'), { recursive: true })
  writeFileSync(join(upstream.root, 'pool/a.deb'), randomBytes(1024 * 1024 + 77))
  // The repo beside the mirror tree (tmp/mirrors): its filestore references the files in place.
  kubo = await Kubo.create({ parent: tmp.dir, filestore: true })
  await kubo.authorize({ ci: `bearer:${BEARER}`, bob: `basic:${BASIC}` })
  await kubo.start()
  port = await freePort()
}, 120_000)

afterEach(async () => {
  for (const d of daemons) await killChild(d.child)
  daemons = []
})

afterAll(async () => {
  await kubo?.dispose()
  await upstream?.stop()
  tmp?.cleanup()
})

describe('[ipfs] token and token_file', () => {
  it('a token_file others may read is refused, naming the file and not its content', async () => {
    const dir = join(tmp.dir, 'open-file')
    mkdirSync(dir, { recursive: true })
    const tokenFile = privateFile(join(dir, 'ipfs.token'), BEARER, 0o644)
    const config = configWith('open-file', `[ipfs]\napi = "${kubo.api}"\ntoken_file = "${tokenFile}"`)
    const err = await loadConfig(config)
      .then(readReplicationConfig, (e: unknown) => e)
      .catch((e: unknown) => e)
    expect(err).toBeInstanceOf(ConfigError)
    expect((err as Error).message).toContain(`ipfs.token_file: ${tokenFile} is readable by others (mode 644)`)
    const r = await runCli(['doctor', '-c', config])
    expectOneLine(r, /ipfs\.token_file: .*ipfs\.token is readable by others \(mode 644\).*chmod 600/)
    // Private, it is read (trimmed), and so is a cluster target's ipfs_api_token_file.
    chmodSync(tokenFile, 0o600)
    const cluster = configWith(
      'open-file',
      `[ipfs]\napi = "${kubo.api}"\ntoken_file = "${tokenFile}"\n\n[replication]\nn = 1\n\n[[replication.targets]]\nname = "c"\ntype = "cluster"\napi = "http://127.0.0.1:1"\nipfs_api = "${kubo.api}"\nipfs_api_token_file = "${tokenFile}"`,
    )
    const repl = readReplicationConfig(await loadConfig(cluster))
    expect(repl.ipfs?.token).toBe(BEARER)
    expect(repl.replication?.targets[0]?.ipfsApiToken).toBe(BEARER)
    // A reload cannot give the running local node a new token: the restart warning names the key.
    const other = configWith('open-file', `[ipfs]\napi = "${kubo.api}"\ntoken = "${WRONG}"`)
    const next = readReplicationConfig(await loadConfig(other))
    expect(replicationKeysNeedingRestart(repl, next, true, true)).toEqual(['ipfs.token'])
  })

  it('doctor -c sends [ipfs] token; a wrong or missing one is one line naming ipfs.api, exit 2', async () => {
    const right = configWith('doctor-right', `[ipfs]\napi = "${kubo.api}"\ntoken = "${BEARER}"`)
    const ok = await runCli(['doctor', '-c', right])
    expect(ok.stderr).toBe('')
    expect(ok.stdout).toContain('(from [ipfs] api), peer ')
    expect(ok.stdout).toContain('ok    filestore on; every mirror lies under')
    expect(ok.code).toBe(0)
    const basicFile = privateFile(join(tmp.dir, 'doctor-right', 'basic.token'), BASIC)
    const basic = configWith('doctor-basic', `[ipfs]\napi = "${kubo.api}"\ntoken_file = "${basicFile}"`)
    expect((await runCli(['doctor', '-c', basic])).code).toBe(0)
    for (const [name, token] of [
      ['doctor-wrong', `token = "${WRONG}"`],
      ['doctor-none', ''],
    ] as const) {
      const config = configWith(name, `[ipfs]\napi = "${kubo.api}"\n${token}`)
      const r = await runCli(['doctor', '-c', config])
      expectOneLine(
        r,
        /ipfs\.api: the IPFS node at http:\/\/127\.0\.0\.1:\d+ refused the credentials \(403 Kubo RPC Access Denied/,
      )
      expect(r.stdout).not.toContain('ok    local Kubo')
    }
  })

  it('the daemon publishes to the local node with the token; with a wrong one it stops at start, one line, exit 2', async () => {
    const tokenFile = privateFile(join(tmp.dir, 'local.token'), BASIC)
    const section = (token: string) =>
      `[ipfs]\napi = "${kubo.api}"\nprovide = "none"\n${token}\n\n[replication]\nn = 1\nretry_backoff = "1s"`
    const wrong = spawnDaemon(configWith('daemon-wrong', section(`token = "${WRONG}"`)))
    daemons.push(wrong)
    const code = await new Promise<number | null>((r) => wrong.child.once('exit', (c) => r(c)))
    expect(code).toBe(2)
    const lines = wrong.log().trim().split('\n')
    expect(lines.at(-1)).toMatch(
      /ipfs\.api: the IPFS node at .* refused the credentials \(403 Kubo RPC Access Denied/,
    )
    expect(wrong.log()).not.toMatch(STACK_LINE)
    expect(wrong.log()).not.toContain(WRONG)
    expect(await recursivePins()).toEqual([])

    const right = spawnDaemon(configWith('daemon-right', section(`token_file = "${tokenFile}"`)))
    daemons.push(right)
    // The first sync is published to the local node through its RPC API: the tree's root is held there.
    const published = (): { rootCid?: string; filesReferenced?: number } | undefined =>
      right
        .log()
        .split('\n')
        .filter((l) => l.startsWith('{'))
        .map(
          (l) => JSON.parse(l) as { msg?: string; publish?: { rootCid?: string; filesReferenced?: number } },
        )
        .find((l) => l.msg === 'mirror published to the local node')?.publish
    await waitFor(
      async () => published() !== undefined || right.child.exitCode !== null,
      'the publish',
      120_000,
      100,
    )
    expect(published(), right.log()).toMatchObject({ filesReferenced: 1 })
    const root = published()!.rootCid!
    expect(await kubo.ok([AS_CLI, 'block', 'stat', '--offline', root])).toContain(root)
    expect(right.log()).not.toContain('local-pass-of-the-test')
    expect(right.log()).not.toContain(Buffer.from(BASIC).toString('base64'))
    expect(right.log()).not.toContain('refused the credentials')
  }, 180_000)
})

describe('holders: a cluster target with ipfs_api_token, and a reload that changes a token', () => {
  let db: Database
  let copies: CopyStore
  let s: {
    root: string
    file: EvictedFile
    bytes: Buffer
    local: ReturnType<typeof openMirrorIndex>['local']
  }

  beforeAll(async () => {
    db = await openDatabase(join(tmp.dir, 'holders-db'))
    copies = new CopyStore(db)
    const root = join(tmp.dir, 'holders-mirror')
    mkdirSync(join(root, 'pool'), { recursive: true })
    const path = 'pool/pkg.deb'
    const bytes = randomBytes(1024 * 1024 + 4321)
    writeFileSync(join(root, path), bytes)
    const mtime = new Date('2020-01-02T03:04:05.000Z')
    utimesSync(join(root, path), mtime, mtime)
    const idx = openMirrorIndex(db, 'hm', root)
    await idx.scan()
    expect((await mapBlocks(db, 'hm', root)).stale).toEqual([])
    const rec = (await idx.get(path))!
    expect((await kubo.ok([AS_CLI, 'add', '-Q', '--cid-version=1', join(root, path)])).trim()).toBe(rec.cid)
    await idx.local.evict([{ path, cid: rec.cid, size: rec.size, mtimeMs: rec.mtimeMs }], async (r) =>
      unlinkSync(join(root, r.path)),
    )
    s = {
      root,
      bytes,
      local: idx.local,
      file: { mirror: 'hm', path, cid: rec.cid, size: rec.size, mtimeMs: rec.mtimeMs },
    }
    const peer = (await kubo.ok([AS_CLI, 'id', '-f', '<id>'])).trim()
    const now = Date.now()
    await copies.put({
      cid: rec.cid,
      holder: `ipfs:${peer}`,
      kind: 'ipfs-cluster',
      target: 'clu',
      how: 'pinned',
      status: 'verified',
      scope: 'entity',
      local: false,
      checkedAt: now,
      since: now,
    })
  }, 120_000)

  afterAll(async () => {
    await db?.close()
  })

  async function targetsOf(name: string, token: string): Promise<TargetSettings[]> {
    const config = configWith(
      name,
      `[replication]\nn = 1\n\n[[replication.targets]]\nname = "clu"\ntype = "cluster"\napi = "http://127.0.0.1:1"\nipfs_api = "${kubo.api}"\n${token}`,
    )
    return readReplicationConfig(await loadConfig(config)).replication!.targets
  }

  /** Evicts the file again if a read brought it back, then reads it through the holders alone. */
  async function readBack(
    holders: ReturnType<typeof holderNodesOf>,
  ): Promise<{ source: string; bytes: Buffer }> {
    if (existsSync(join(s.root, s.file.path)))
      await s.local.evict(
        [{ path: s.file.path, cid: s.file.cid, size: s.file.size, mtimeMs: s.file.mtimeMs }],
        async (r) => unlinkSync(join(s.root, r.path)),
      )
    const fb = createFetchBack({
      rootOf: (m) => (m === s.file.mirror ? s.root : undefined),
      recorderOf: (m) => (m === s.file.mirror ? s.local : undefined),
      copies,
      holders: holders.holders,
      nodes: new BlockReader(db),
    })
    const res = await fb.open(s.file, undefined, AbortSignal.timeout(60_000))
    const parts: Uint8Array[] = []
    for await (const x of res.body) parts.push(x)
    return { source: res.source, bytes: Buffer.concat(parts) }
  }

  it("the fetch-back reads a cluster peer's ipfs_api with ipfs_api_token; a reload's new token gets a new client and the old one is closed", async () => {
    let targets = await targetsOf('clu-bearer', `ipfs_api_token = "${BEARER}"`)
    const holders = holderNodesOf(() => targets)
    try {
      const first = await readBack(holders)
      expect(first.source).toMatch(/^holder:/)
      expect(first.bytes.equals(s.bytes)).toBe(true)
      await expect.poll(async () => (await s.local.of(s.file.path))?.state).toBe('refetched')
      const before = holders.holders('clu')![0]!
      expect(before.authorization).toBe(`Bearer ${BEARER}`)
      // The reload: the same address with basic credentials.
      const tokenFile = privateFile(join(tmp.dir, 'clu.token'), BASIC)
      targets = await targetsOf('clu-basic', `ipfs_api_token_file = "${tokenFile}"`)
      const after = holders.holders('clu')![0]!
      expect(after.node).not.toBe(before.node)
      expect(after.authorization).toBe(`Basic ${Buffer.from(BASIC).toString('base64')}`)
      const second = await readBack(holders)
      expect(second.bytes.equals(s.bytes)).toBe(true)
      // The old client is closed: it sends nothing any more.
      const old = (async () => {
        for await (const _ of before.node.car(s.file.cid, { signal: AbortSignal.timeout(30_000) })) break
      })()
      await expect(old).rejects.toThrow(/closed|UND_ERR_CLOSED|destroyed/i)
    } finally {
      await holders.close()
    }
  })

  it('a cluster ipfs_api without its token is refused by the node', async () => {
    const targets = await targetsOf('clu-none', '')
    const holders = holderNodesOf(() => targets)
    try {
      const node = holders.holders('clu')![0]!.node as unknown as { id(): Promise<unknown> }
      await expect(node.id()).rejects.toBeInstanceOf(IpfsAuthRefusedError)
    } finally {
      await holders.close()
    }
  })
})
