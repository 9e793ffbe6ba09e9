/**
 * `cidmirror daemon`: files that leave the mirror stay in the archive, end to end on 127.0.0.1 — a
 * real rsync upstream, three real Kubo daemons (A: the mirror's own node, filestore; B and C: tree
 * targets). Upstream deletes a package and changes its Release; after the next sync B and C hold the
 * new root plus the deleted package and the old Release as pins of their own, through a kill -9 of
 * the daemon right after those pins and before the tree pin moved, and through a garbage collection;
 * `cidmirror audit --archive` counts two copies of each.
 */
import type { ChildProcess } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, afterEach, beforeAll, expect, it } from 'vitest'
import { killChild, runCli, spawnDaemon } from './helpers/cli.ts'
import { disposeAll, Kubo } from './helpers/kubo.ts'
import { type Rsyncd, startRsyncd } from './helpers/rsyncd.ts'
import { freePort, TOKEN, tempDir, waitFor, writeToml } from './jobs-helpers.ts'

let tmp: ReturnType<typeof tempDir>
let upstream: Rsyncd
let kubos: Kubo[]
let port: number
let config: string
let running: { child: ChildProcess; log: () => string }[] = []
const goneBytes = randomBytes(2 * 1024 * 1024 + 3)

const EMPTY_DIR = 'QmUNLLsPACCz1vLxQVkXqqLX5R1X345qqfHbsf67hvA3Nn'

async function recursivePins(k: Kubo): Promise<string[]> {
  const out = await k.ok(['pin', 'ls', '--type=recursive', '--quiet'])
  return out
    .split('\n')
    .filter((c) => c && c !== EMPTY_DIR)
    .sort()
}

function start(): { child: ChildProcess; log: () => string } {
  const d = spawnDaemon(config)
  running.push(d)
  return d
}

function logged(d: { log: () => string }, msg: string): boolean {
  return d
    .log()
    .split('\n')
    .some((l) => l.startsWith('{') && (JSON.parse(l) as { msg?: string }).msg === msg)
}

/** The CID Kubo gives `bytes` as a file (`add --only-hash --cid-version=1`). */
async function cidOf(bytes: Uint8Array | string, name: string): Promise<string> {
  const p = join(tmp.dir, name)
  writeFileSync(p, bytes)
  const [[cid]] = (await kubos[0]!.addOnlyHash([p])) as [[string, string]]
  rmSync(p)
  return cid
}

beforeAll(async () => {
  tmp = tempDir('cidmirror-darchive-')
  upstream = await startRsyncd()
  mkdirSync(join(upstream.root, 'pool'), { recursive: true })
  writeFileSync(join(upstream.root, 'pool/keep.deb'), randomBytes(4096))
  writeFileSync(join(upstream.root, 'pool/gone.deb'), goneBytes)
  writeFileSync(join(upstream.root, 'Release'), 'Suite: stable\nDate: one\n')
  kubos = await Kubo.swarm(3, { parent: tmp.dir, filestore: true })
  port = await freePort()
  config = writeToml({
    dir: tmp.dir,
    managerPort: port,
    interval: '6h',
    mirrors: `[[mirrors]]
name = "deb"
provider = "rsync"
upstream = "${upstream.url}"

[ipfs]
api = "${kubos[0]!.api}"
provide = "none"

[replication]
n = 2
recheck = "1h"
retry_backoff = "1s"

[[replication.targets]]
name = "kubo-b"
type = "kubo"
api = "${kubos[1]!.api}"
gateway = "${kubos[1]!.gateway}"

[[replication.targets]]
name = "kubo-c"
type = "kubo"
api = "${kubos[2]!.api}"
gateway = "${kubos[2]!.gateway}"
`,
  })
}, 180_000)

afterEach(async () => {
  for (const d of running) await killChild(d.child)
  running = []
})

afterAll(async () => {
  await disposeAll(kubos ?? [])
  await upstream?.stop()
  tmp?.cleanup()
})

it('a deleted and a changed file stay pinned on both targets through a kill -9 and a gc; the audit counts them', async () => {
  const tree = join(tmp.dir, 'mirrors', 'deb')
  const d1 = start()
  const root1 = await kubos[0]!.rootCid(join(upstream.root), { hidden: true })
  const onRoot = async (roots: string[]) =>
    (await recursivePins(kubos[1]!)).join() === roots.sort().join() &&
    (await recursivePins(kubos[2]!)).join() === roots.sort().join()
  await waitFor(() => onRoot([root1]), 'B and C on the first root', 120_000, 100).catch((err) => {
    throw new Error(`${(err as Error).message}\n${d1.log()}`)
  })
  const gone = await cidOf(goneBytes, 'gone.deb')
  const oldRelease = await cidOf(readFileSync(join(tree, 'Release')), 'Release')

  rmSync(join(upstream.root, 'pool/gone.deb'))
  writeFileSync(join(upstream.root, 'Release'), 'Suite: stable\nDate: two\n')
  const root2 = await kubos[0]!.rootCid(join(upstream.root), { hidden: true })
  await waitFor(
    async () =>
      (await runCli(['jobs', 'start', 'deb', '-m', `http://127.0.0.1:${port}`, '--token', TOKEN])).code === 0,
    'jobs start',
    30_000,
    100,
  )
  // Killed as soon as the archive pins are in, before (or while) the tree pin moves.
  const archived = 'archived content pinned on its own before the tree pin moves'
  await waitFor(() => logged(d1, archived), 'the archive pins', 120_000, 25).catch((err) => {
    throw new Error(`${(err as Error).message}\n${d1.log()}`)
  })
  await killChild(d1.child)
  for (const k of kubos.slice(1)) {
    const pins = await recursivePins(k)
    // Whatever the kill interrupted, nothing that left the tree is unpinned on a target that moved.
    if (!pins.includes(root1)) expect(pins).toEqual(expect.arrayContaining([gone, oldRelease]))
  }

  const d2 = start()
  await waitFor(
    () => onRoot([root2, gone, oldRelease]),
    'B and C on the new root, archive kept',
    120_000,
    100,
  ).catch(async (err) => {
    const pins = { b: await recursivePins(kubos[1]!), c: await recursivePins(kubos[2]!) }
    throw new Error(
      `${(err as Error).message} ${JSON.stringify({ root1, root2, gone, oldRelease, pins })}\n${d1.log()}\n${d2.log()}`,
    )
  })
  for (const k of kubos.slice(1)) {
    await k.ok(['repo', 'gc', '--quiet'])
    expect((await k.cat(gone)).equals(goneBytes)).toBe(true)
    expect(await k.ok(['cat', '--offline', oldRelease])).toBe('Suite: stable\nDate: one\n')
  }

  // The audit, through the running daemon: both counted with two verified copies, exit 0.
  await waitFor(
    async () => {
      const res = await runCli(['audit', '--archive', '--json', '--progress', 'none', '-c', config])
      const files = res.stdout
        .split('\n')
        .filter((l) => l.startsWith('{'))
        .map((l) => JSON.parse(l) as { type: string; state?: string; cid?: string; verified?: number })
        .filter((l) => l.type === 'file' && (l.state === 'deleted' || l.state === 'archived'))
      const byCid = new Map(files.map((f) => [f.cid, f]))
      return (
        res.code === 0 &&
        byCid.get(gone)?.state === 'deleted' &&
        byCid.get(gone)?.verified === 2 &&
        byCid.get(oldRelease)?.state === 'archived' &&
        byCid.get(oldRelease)?.verified === 2
      )
    },
    'audit --archive: two verified copies of each, exit 0',
    60_000,
    200,
  )
  const strict = await runCli(['audit', '--archive', '-n', '3', '--progress', 'none', '-c', config])
  expect(strict.code).toBe(1)
  expect(strict.stdout).toMatch(/archive: 2 files, 0 meet n, 2 under/)
}, 360_000)
