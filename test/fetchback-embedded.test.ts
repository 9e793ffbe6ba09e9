/**
 * The quick start's fetch-back (README, "What left the mirror"): `cidmirror daemon` on
 * examples/quickstart/cidmirror.toml (its paths and ports moved into a temp dir), the embedded node and
 * no other source. A file deleted upstream and synced away is listed under `/_deleted/`; its download
 * answers 502 at once, naming the one source tried and why (the embedded node holds no copy and has
 * no peer or routing to ask), rather than 504 after the first-byte limit. Once a real Kubo peer is
 * connected the node keeps looking: 504 when the peer lacks the file, its bytes once the peer has them.
 */
import type { ChildProcess } from 'node:child_process'
import { cpSync, readFileSync, unlinkSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { request } from 'undici'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { killChild, runCli, spawnDaemon } from './helpers/cli.ts'
import { disposeAll, Kubo } from './helpers/kubo.ts'
import { QUICKSTART, quickstartConfig } from './helpers/quickstart.ts'
import { type Rsyncd, startRsyncd } from './helpers/rsyncd.ts'
import { tempDir, waitFor } from './jobs-helpers.ts'

const README = readFileSync(join(QUICKSTART, 'upstream', 'README.txt'))

let tmp: ReturnType<typeof tempDir>
let upstream: Rsyncd
let kubo: Kubo | undefined
let config: string
let daemon: { child: ChildProcess; log: () => string } | undefined
let gateway: string
let manager: string
let nodePort: number

beforeAll(async () => {
  tmp = tempDir('cidmirror-quickfail-')
  upstream = await startRsyncd()
  cpSync(join(QUICKSTART, 'upstream'), upstream.root, { recursive: true })
  const qs = await quickstartConfig(join(tmp.dir, 'data'), upstream.url)
  const { text, gatewayPort } = qs
  nodePort = qs.nodePort
  manager = `http://127.0.0.1:${qs.managerPort}`
  // The shape under test is the quick start's: the embedded node, no gateways, no targets.
  expect(text).not.toMatch(/^(api\s*=|fetch_from|\[\[replication\.targets)/m)
  // Shorter than 15 s, so the 504 of a node that keeps looking comes sooner; the 502 must not wait
  // for it. Long enough for a loopback peer to send a block on a busy machine.
  config = join(tmp.dir, 'cidmirror.toml')
  writeFileSync(config, `${text}fetch_first_byte_timeout = "10s"\n`)
  gateway = `http://127.0.0.1:${gatewayPort}`
  ;[kubo] = await Kubo.swarm(1, { swarmKey: false, parent: tmp.dir })
}, 180_000)

afterAll(async () => {
  if (daemon) await killChild(daemon.child)
  if (kubo) await disposeAll([kubo])
  await upstream?.stop()
  tmp?.cleanup()
})

async function get(path: string, base = gateway): Promise<{ status: number; body: Buffer }> {
  const r = await request(`${base}${path}`)
  return { status: r.statusCode, body: Buffer.from(await r.body.arrayBuffer()) }
}

function failing(what: string): (err: unknown) => never {
  return (err) => {
    throw new Error(`${what}: ${(err as Error).message}\n${daemon?.log()}`)
  }
}

describe('the quick start: a file that left the mirror and that no source can have', () => {
  it('answers 502 at once naming the embedded node; with a peer connected, 504 while it lacks the file, then the bytes', async () => {
    daemon = spawnDaemon(config)
    const started = await waitFor(
      () =>
        daemon!
          .log()
          .split('\n')
          .filter((l) => l.startsWith('{'))
          .map((l) => JSON.parse(l) as Record<string, unknown>)
          .find((l) => typeof l.peerId === 'string' && Array.isArray(l.addresses)),
      'the embedded node started',
      60_000,
      100,
    ).catch(failing('start'))
    const peerId = started.peerId as string
    // The first sync done and indexed (a start while it still runs would be no new sync).
    await waitFor(
      async () => {
        const r = await get('/jobs', manager).catch(() => undefined)
        if (r?.status !== 200) return false
        const jobs = JSON.parse(r.body.toString()) as { name: string; status: string }[]
        // success is reported once the post-sync hooks ran, the index's scan among them.
        return jobs.find((x) => x.name === 'sample')?.status === 'success'
      },
      'the first sync done and indexed',
      120_000,
      200,
    ).catch(failing('first sync'))

    // Deleted upstream, synced away: listed under /_deleted/.
    unlinkSync(join(upstream.root, 'README.txt'))
    const start = await runCli(['jobs', 'start', 'sample', '-c', config])
    expect(start.code, start.stderr).toBe(0)
    const listed = await waitFor(
      async () => {
        const r = await get('/_deleted/sample/?format=json')
        if (r.status !== 200) return undefined
        const entries = JSON.parse(r.body.toString()) as { name: string; cid?: string }[]
        return entries.find((e) => e.name === 'README.txt')
      },
      'README.txt under /_deleted/sample/',
      120_000,
      200,
    ).catch(failing('deletion'))
    expect(listed.cid).toMatch(/^bafk/)

    // No peer, no routing, no other source: a 502 whose one line names what was tried and why.
    const none = await get('/_deleted/sample/README.txt')
    expect(none.status).toBe(502)
    expect(none.body.toString()).toMatch(
      new RegExp(
        `^502 Bad Gateway: fetching README\\.txt \\(${listed.cid}\\) back failed: local-node: not held by embedded node ${peerId}, which has no peer or routing to ask\\n?$`,
      ),
    )

    // A Kubo peer connected that lacks the file: the node asks it over bitswap until the limit. The
    // peer fetching a present file's block from the node shows the node has the connection too.
    await kubo!.ok(['swarm', 'connect', `/ip4/127.0.0.1/tcp/${nodePort}/p2p/${peerId}`])
    const dists = await get('/sample/dists/stable/?format=json')
    const release = (JSON.parse(dists.body.toString()) as { name: string; cid?: string }[]).find(
      (e) => e.name === 'Release',
    )
    expect(release?.cid).toMatch(/^bafk/)
    expect(await kubo!.ok(['block', 'get', release!.cid!])).toBe(
      readFileSync(join(QUICKSTART, 'upstream', 'dists', 'stable', 'Release'), 'utf8'),
    )
    const waited = await get('/_deleted/sample/README.txt')
    expect(waited.status).toBe(504)
    expect(waited.body.toString()).toMatch(
      /^504 Gateway Timeout: fetching README\.txt \(\S+\) back timed out: local-node: no first verified block within 10000 ms\n?$/,
    )

    // The peer has the bytes now: they are fetched back through the embedded node, verified.
    expect((await kubo!.ok(['add', '-Q', '--cid-version=1'], { input: README })).trim()).toBe(listed.cid)
    const back = await get('/_deleted/sample/README.txt')
    expect(back.status).toBe(200)
    expect(back.body.equals(README)).toBe(true)
  }, 300_000)
})
