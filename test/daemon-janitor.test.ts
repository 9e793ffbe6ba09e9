/**
 * `cidmirror daemon` with `[cache]`, end to end on 127.0.0.1: a real rsync upstream, two real Kubo
 * daemons (A: the mirror's own node, filestore beside the tree; B: a kubo target). The daemon syncs,
 * indexes, replicates to n = 1 on B, and its janitor's pass after the replication evicts the old
 * package (the index file stays); `/metrics` counts it; `cidmirror janitor` while the daemon holds the
 * database runs the daemon's pass; the next sync transfers nothing evicted.
 */
import type { ChildProcess } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { existsSync, mkdirSync, readFileSync, utimesSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { killChild, runCli, spawnDaemon } from './helpers/cli.ts'
import { disposeAll, Kubo } from './helpers/kubo.ts'
import { type Rsyncd, startRsyncd } from './helpers/rsyncd.ts'
import { freePort, TOKEN, tempDir, waitFor, writeToml } from './jobs-helpers.ts'

const OLD = new Date('2020-01-01T00:00:00Z')
let tmp: ReturnType<typeof tempDir>
let upstream: Rsyncd
let kubos: Kubo[]
let port: number
let config: string
let daemon: { child: ChildProcess; log: () => string } | undefined

async function metrics(): Promise<string> {
  const res = await fetch(`http://127.0.0.1:${port}/metrics`, {
    headers: { authorization: `Bearer ${TOKEN}` },
  })
  if (!res.ok) throw new Error(`/metrics: ${res.status}`)
  return res.text()
}

function gauge(text: string, line: string): number | undefined {
  const m = text.split('\n').find((l) => l.startsWith(`${line} `))
  return m === undefined ? undefined : Number(m.slice(line.length + 1))
}

function transfers(log: string): number[] {
  return [...log.matchAll(/Number of regular files transferred: ([\d,]+)/g)].map((m) =>
    Number(m[1]!.replaceAll(',', '')),
  )
}

beforeAll(async () => {
  tmp = tempDir('cidmirror-djanitor-')
  upstream = await startRsyncd()
  mkdirSync(join(upstream.root, 'pool'), { recursive: true })
  mkdirSync(join(upstream.root, 'dists'), { recursive: true })
  for (const [p, data] of [
    ['pool/old.deb', randomBytes(100_000)],
    ['dists/Release', Buffer.from('Suite: stable\n')],
  ] as const) {
    writeFileSync(join(upstream.root, p), data)
    utimesSync(join(upstream.root, p), OLD, OLD)
  }
  writeFileSync(join(upstream.root, 'pool/new.deb'), randomBytes(1000))
  kubos = await Kubo.swarm(2, { parent: tmp.dir, filestore: true })
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
n = 1
recheck = "1h"

[[replication.targets]]
name = "kubo-b"
type = "kubo"
api = "${kubos[1]!.api}"

[cache]
evict_after = "1y"
`,
  })
}, 180_000)

afterAll(async () => {
  if (daemon) await killChild(daemon.child)
  await disposeAll(kubos ?? [])
  await upstream?.stop()
  tmp?.cleanup()
})

describe('cidmirror daemon with [cache]', () => {
  it('evicts after the replication pass, answers cidmirror janitor, and the next sync leaves the file alone', async () => {
    daemon = spawnDaemon(config)
    const d = daemon
    const tree = join(tmp.dir, 'mirrors', 'deb')
    await waitFor(
      async () => gauge(await metrics(), 'cidmirror_janitor_evictions_total') === 1,
      'the janitor evicting the old package',
      180_000,
      250,
    ).catch((err) => {
      throw new Error(`${(err as Error).message}\n${d.log()}`)
    })
    expect(gauge(await metrics(), 'cidmirror_janitor_bytes_freed_total')).toBe(100_000)
    expect(existsSync(join(tree, 'pool/old.deb'))).toBe(false)
    expect(existsSync(join(tree, 'dists/Release'))).toBe(true)
    expect(existsSync(join(tree, 'pool/new.deb'))).toBe(true)

    // The database is the daemon's: the command runs the daemon's pass (POST /cache/janitor).
    const r = await runCli(['janitor', '-c', config, '--dry-run', '--json'])
    expect(r.stderr).toBe('')
    expect(r.code).toBe(0)
    const lines = r.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l))
    expect(lines.find((l) => l.path === 'dists/Release')).toMatchObject({
      eligible: false,
      reasons: ['index file (keep "Release")'],
    })
    expect(lines.at(-1)).toMatchObject({
      type: 'report',
      dryRun: true,
      mirrors: [{ mirror: 'deb', alreadyEvicted: 1 }],
    })

    // The next sync: rsync transfers nothing, the evicted file stays evicted.
    const logFile = join(tmp.dir, 'log', 'deb', 'latest')
    const before = transfers(readFileSync(logFile, 'utf8'))
    expect(before).toEqual([3])
    const start = await runCli(['jobs', 'start', 'deb', '-c', config])
    expect(start.code).toBe(0)
    await waitFor(
      async () => {
        const jobs = JSON.parse((await runCli(['jobs', 'list', '-c', config, '--json'])).stdout || '[]') as {
          name: string
          status: string
          details?: { index?: { id: number } }
        }[]
        const j = jobs.find((x) => x.name === 'deb')
        return j?.status === 'success' && (j.details?.index?.id ?? 0) >= 2
      },
      'the second sync indexed',
      120_000,
      250,
    ).catch((err) => {
      throw new Error(`${(err as Error).message}\n${d.log()}`)
    })
    expect(transfers(readFileSync(logFile, 'utf8'))).toEqual([0])
    expect(existsSync(join(tree, 'pool/old.deb'))).toBe(false)
  }, 300_000)
})
