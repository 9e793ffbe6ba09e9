/**
 * The gateway feeds the janitor's `not_requested_within` rule, wired as `cidmirror daemon` wires them
 * (in process): a real rsync upstream, two real Kubo daemons (A: the mirror's node, B: the kubo target
 * for n = 1), `[gateway]` and `[cache] not_requested_within = "7d"` (`copies_fresh = "30d"`: the passes judge a week on). Two old packages are both eligible
 * once replicated; one is downloaded through the gateway, and the next pass keeps it and evicts the other.
 * Until the window has passed since the gateway started, nothing is known of earlier requests: the
 * daemon's own passes (at the real time) evict nothing.
 */
import { randomBytes } from 'node:crypto'
import { existsSync, mkdirSync, readFileSync, utimesSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import pino from 'pino'
import { request } from 'undici'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { FileDecision } from '../src/cache/index.ts'
import { type Daemon, startDaemon } from '../src/daemon/index.ts'
import { loadConfig } from '../src/sync/config/index.ts'
import { disposeAll, Kubo } from './helpers/kubo.ts'
import { type Rsyncd, startRsyncd } from './helpers/rsyncd.ts'
import { freePort, tempDir, waitFor, writeToml } from './jobs-helpers.ts'

const OLD = new Date('2020-01-01T00:00:00Z')
const WEEK = 7 * 86_400_000
let tmp: ReturnType<typeof tempDir>
let upstream: Rsyncd
let kubos: Kubo[]
let daemon: Daemon | undefined
let gatewayPort: number
let config: string

beforeAll(async () => {
  tmp = tempDir('cidmirror-jrequests-')
  upstream = await startRsyncd()
  mkdirSync(join(upstream.root, 'pool'), { recursive: true })
  mkdirSync(join(upstream.root, 'dists'), { recursive: true })
  for (const [p, data] of [
    ['pool/wanted.deb', randomBytes(50_000)],
    ['pool/unwanted.deb', randomBytes(60_000)],
    ['dists/Release', Buffer.from('Suite: stable\n')],
  ] as const) {
    writeFileSync(join(upstream.root, p), data)
    utimesSync(join(upstream.root, p), OLD, OLD)
  }
  kubos = await Kubo.swarm(2, { parent: tmp.dir, filestore: true })
  gatewayPort = await freePort()
  config = writeToml({
    dir: tmp.dir,
    managerPort: await freePort(),
    interval: '6h',
    mirrors: `[[mirrors]]
name = "deb"
provider = "rsync"
upstream = "${upstream.url}"

[ipfs]
api = "${kubos[0]!.api}"
provide = "none"

[replication]
n = 1
recheck = "1h"

[[replication.targets]]
name = "kubo-b"
type = "kubo"
api = "${kubos[1]!.api}"

[gateway]
listen_addr = "127.0.0.1"
listen_port = ${gatewayPort}

[cache]
evict_after = "1y"
copies_fresh = "30d"
not_requested_within = "7d"
`,
  })
}, 180_000)

afterAll(async () => {
  await daemon?.close()
  await disposeAll(kubos ?? [])
  await upstream?.stop()
  tmp?.cleanup()
})

async function pass(d: Daemon, now: number, dryRun: boolean): Promise<Map<string, FileDecision>> {
  const out = new Map<string, FileDecision>()
  await d.janitor!.run({ now, dryRun, onFile: (f) => out.set(f.path, f) })
  return out
}

describe('the gateway feeds the janitor', () => {
  it('keeps an old package requested within not_requested_within and evicts an unrequested one', async () => {
    daemon = await startDaemon({
      config: await loadConfig(config),
      manager: true,
      worker: true,
      log: pino({ level: 'silent' }),
    })
    const d = daemon
    const requests = d.requests!
    expect(requests).toBeDefined()
    const tree = join(tmp.dir, 'mirrors', 'deb')
    // A week after the gateway started (what the map knows from), both packages are eligible once
    // replicated to B: nobody asked for either.
    const later = requests.since + WEEK
    await waitFor(
      async () => {
        const f = await pass(d, later, true)
        if (f.get('pool/wanted.deb')?.eligible && f.get('pool/unwanted.deb')?.eligible) return true
        throw new Error(JSON.stringify([...f.values()].map((x) => [x.path, x.reasons])))
      },
      'both old packages eligible a week on',
      180_000,
      250,
    )
    // At the real time the rule cannot tell yet: the daemon's passes keep them, saying why.
    const today = await pass(d, Date.now(), true)
    expect(today.get('pool/unwanted.deb')).toMatchObject({ eligible: false })
    expect(today.get('pool/unwanted.deb')!.reasons.join()).toMatch(/not_requested_within 7d/)
    expect(d.janitor!.counters.evictions).toBe(0)

    const body = readFileSync(join(tree, 'pool/wanted.deb'))
    const res = await request(`http://127.0.0.1:${gatewayPort}/deb/pool/wanted.deb`)
    expect(res.statusCode).toBe(200)
    expect(Buffer.from(await res.body.arrayBuffer()).equals(body)).toBe(true)
    expect(requests.lastRequested('deb', 'pool/wanted.deb')).toBeGreaterThan(requests.since)

    const f = await pass(d, later, false)
    expect(f.get('pool/wanted.deb')).toMatchObject({ eligible: false, evicted: false })
    expect(f.get('pool/wanted.deb')!.reasons).toEqual([
      expect.stringMatching(/^requested \d+[smhd] ago \(not_requested_within 7d\)$/),
    ])
    expect(f.get('pool/unwanted.deb')).toMatchObject({ eligible: true, evicted: true })
    expect(existsSync(join(tree, 'pool/wanted.deb'))).toBe(true)
    expect(existsSync(join(tree, 'pool/unwanted.deb'))).toBe(false)
    expect(existsSync(join(tree, 'dists/Release'))).toBe(true)

    // The gateway's status page shows the janitor's figures (the daemon's own passes evict nothing).
    const status = await request(`http://127.0.0.1:${gatewayPort}/_status.json`)
    const janitor = ((await status.body.json()) as { janitor: Record<string, unknown> | null }).janitor
    expect(janitor).toMatchObject({ evictions: 1, bytesFreed: 60_000, failures: 0 })
    expect(janitor!.runs).toBe(d.janitor!.counters.runs)
    expect(janitor!.lastRun).toMatchObject({ dryRun: false, at: expect.any(String) })
    const html = await (await request(`http://127.0.0.1:${gatewayPort}/_status`)).body.text()
    expect(html).toContain('<h2>Cache janitor</h2>')
    expect(html).toMatch(
      /1 file evicted, 58\.6 KiB freed in \d+ pass(es)? since the daemon started · last pass /,
    )
  }, 300_000)
})
