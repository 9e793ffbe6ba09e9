/**
 * The README's main job with nothing else installed: `cidmirror daemon` on the quick start's config
 * (examples/quickstart/cidmirror.toml, its paths and ports moved into a temp dir) syncs the sample from
 * a real rsync upstream, indexes it, and provides it with the embedded Helia node (no `[ipfs] api`):
 * a real Kubo peer (no private-network key: Helia cannot join one) connects to it over loopback and
 * fetches a multi-chunk file's blocks; `cidmirror audit -c` (a new process, through the daemon's read
 * API) lists the local holder, does not count it, and exits 1 against n = 1 as docs/audit.md says.
 */
import type { ChildProcess } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { cpSync, mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { openDatabase } from '../src/db.ts'
import { killChild, runCli, spawnDaemon } from './helpers/cli.ts'
import { disposeAll, Kubo } from './helpers/kubo.ts'
import { QUICKSTART, quickstartConfig } from './helpers/quickstart.ts'
import { type Rsyncd, startRsyncd } from './helpers/rsyncd.ts'
import { tempDir, waitFor } from './jobs-helpers.ts'

const MiB = 1024 * 1024

let tmp: ReturnType<typeof tempDir>
let upstream: Rsyncd
let kubo: Kubo | undefined
/** A: the local Kubo of the second config (filestore, repo beside the mirrors); B, C: kubo targets. */
let swarm: Kubo[] = []
let config: string
let daemon: { child: ChildProcess; log: () => string } | undefined
let nodePort: number
let managerPort: number
let quickstartText: string
const big = randomBytes(3 * MiB + 11)
/** More roots than a node announcing 1 CID an hour reprovides in its 22 h cycle. */
const EXTRA_FILES = 30

beforeAll(async () => {
  tmp = tempDir('cidmirror-embedded-')
  upstream = await startRsyncd()
  cpSync(join(QUICKSTART, 'upstream'), upstream.root, { recursive: true })
  writeFileSync(join(upstream.root, 'pool/main/h/hello/hello_1.0.iso'), big)
  mkdirSync(join(upstream.root, 'extra'))
  for (let i = 0; i < EXTRA_FILES; i++) writeFileSync(join(upstream.root, `extra/${i}.txt`), `extra ${i}\n`)
  const qs = await quickstartConfig(join(tmp.dir, 'data'), upstream.url)
  const text = qs.text
  managerPort = qs.managerPort
  nodePort = qs.nodePort
  expect(text).toContain('[ipfs]')
  expect(text).not.toMatch(/^api\s*=/m)
  quickstartText = text
  config = join(tmp.dir, 'cidmirror.toml')
  writeFileSync(config, text)
  mkdirSync(join(tmp.dir, 'data'), { recursive: true })
  ;[kubo] = await Kubo.swarm(1, { swarmKey: false, parent: tmp.dir })
  swarm = await Kubo.swarm(3, { parent: tmp.dir, filestore: true })
}, 180_000)

afterAll(async () => {
  if (daemon) await killChild(daemon.child)
  await disposeAll(kubo ? [kubo, ...swarm] : swarm)
  await upstream?.stop()
  tmp?.cleanup()
})

/**
 * Starts the daemon and waits for its manager to answer: an audit run while the daemon is still
 * starting would open the database itself (no daemon holds it yet) and keep the daemon from opening it.
 */
async function startDaemon(file: string): Promise<void> {
  daemon = spawnDaemon(file)
  await waitFor(
    async () => {
      if (daemon!.child.exitCode !== null) throw new Error(`the daemon exited: ${daemon!.log()}`)
      return (await fetch(`http://127.0.0.1:${managerPort}/jobs`).catch(() => undefined))?.ok
    },
    'the daemon answering',
    60_000,
    100,
  )
}

function logLines(): Record<string, unknown>[] {
  return daemon!
    .log()
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as Record<string, unknown>)
}

interface AuditJsonLine {
  type: string
  shortfall?: string
  provide?: { roots: number; capacity: number; exceeded: boolean }
  path?: string
  cid?: string
  verified?: number
  local?: number
  verdict?: string
  copies?: { holder: string; local: boolean; how: string; status: string }[]
  n?: number
  nFrom?: string
  queue?: { state: string; reason?: string }
}

async function auditJson(file = config): Promise<{ code: number; lines: AuditJsonLine[] }> {
  const r = await runCli(['audit', '-c', file, '--json'])
  return {
    code: r.code,
    lines: r.stdout
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as AuditJsonLine),
  }
}

describe('cidmirror daemon on the quick start config (embedded node)', () => {
  it('provides the sample with the embedded node; a Kubo peer fetches a file; the audit lists the local holder, uncounted', async () => {
    await startDaemon(config)
    // The node starts on loopback, off the public network, at the configured address.
    const started = await waitFor(
      () => logLines().find((l) => typeof l.peerId === 'string' && Array.isArray(l.addresses)),
      'the embedded node started',
      60_000,
      100,
    ).catch((err) => {
      throw new Error(`${(err as Error).message}\n${daemon!.log()}`)
    })
    const peerId = started.peerId as string
    expect(started.public).toBe(false)
    expect(started.addresses).toEqual([`/ip4/127.0.0.1/tcp/${nodePort}/p2p/${peerId}`])

    // Synced, indexed, published: the tree item is checked by the replicator (the local node's copy).
    const first = await waitFor(
      async () => {
        const a = await auditJson()
        const m = a.lines.find((l) => l.type === 'mirror')
        return m?.queue && a.lines.some((l) => l.type === 'file' && (l.copies?.length ?? 0) > 0)
          ? a
          : undefined
      },
      'the sample audited with its copies',
      120_000,
      250,
    ).catch((err) => {
      throw new Error(`${(err as Error).message}\n${daemon!.log()}`)
    })
    const iso = first.lines.find((l) => l.path === 'pool/main/h/hello/hello_1.0.iso')!
    expect(iso.cid).toMatch(/^bafy/)

    // A Kubo peer dials the embedded node and fetches the file's blocks from it over bitswap.
    await kubo!.ok(['swarm', 'connect', `/ip4/127.0.0.1/tcp/${nodePort}/p2p/${peerId}`])
    await kubo!.ok(['pin', 'add', '--progress=false', iso.cid!])
    expect((await kubo!.cat(iso.cid!)).equals(big)).toBe(true)
    const stat = await kubo!.ok(['dag', 'stat', '--offline', '--progress=false', iso.cid!])
    // 3 MiB + 11 in 1 MiB chunks: four leaves and the file node.
    expect(stat).toMatch(/Unique Blocks: 5$/m)

    // The audit: every file's only copy is the local node's, listed and not counted; n = 1; exit 1.
    expect(first.code).toBe(1)
    const files = first.lines.filter((l) => l.type === 'file')
    expect(files.length).toBeGreaterThanOrEqual(5)
    for (const f of files) {
      expect(f.verified).toBe(0)
      expect(f.local).toBe(1)
      expect(f.verdict).toBe('under')
      expect(f.copies).toEqual([
        expect.objectContaining({
          holder: `ipfs:${peerId}`,
          local: true,
          how: 'serves-mirror-tree',
          status: 'verified',
        }),
      ])
    }
    const mirror = first.lines.find((l) => l.type === 'mirror')!
    expect(mirror).toMatchObject({ n: 1, nFrom: 'config', queue: { state: 'under-replicated' } })
    const text = await runCli(['audit', '-c', config])
    expect(text.code).toBe(1)
    expect(text.stdout).toContain(
      `ipfs:${peerId}  ipfs-node/serves-mirror-tree  verified, local: not counted`,
    )
    expect(text.stdout).toMatch(/^UNDER +0v 0a 1l +present/m)
    expect(text.stdout).toContain('mirror sample: n = 1 (from [replication] n)')
    expect(text.stdout).toContain('some listed files are below n')
  }, 300_000)

  /**
   * The second config: the quick start's with a local Kubo (A) announcing roots at 1 CID an hour, n = 2,
   * a 3 s freshness window, at least one Filecoin copy, and Kubo B as the one target.
   */
  function secondConfig(o: {
    n: number
    fresh: string
    minFilecoin: boolean
    targets: Kubo[]
    perHour: number
  }): string {
    const targets = o.targets
      .map((k, i) => `[[replication.targets]]\nname = "kubo-${'bc'[i]}"\ntype = "kubo"\napi = "${k.api}"\n`)
      .join('\n')
    return quickstartText
      .replaceAll(join(tmp.dir, 'data'), join(tmp.dir, 'data2'))
      .replace(
        /^listen = .*$/m,
        `api = "${swarm[0]!.api}"\nprovide = "roots"\nprovide_per_hour = ${o.perHour}`,
      )
      .replace(
        /^n = 1$/m,
        `n = ${o.n}\nfresh = "${o.fresh}"\n${o.minFilecoin ? 'min_by_kind = { filecoin = 1 }\n' : ''}\n${targets}`,
      )
  }

  it('the audit judges as the replicator stores: n, freshness, per-kind minimums and the provide budget from the config, offline and through the daemon', async () => {
    if (daemon) await killChild(daemon.child)
    const file = join(tmp.dir, 'second.toml')
    writeFileSync(
      file,
      secondConfig({ n: 2, fresh: '3s', minFilecoin: true, targets: [swarm[1]!], perHour: 1 }),
    )
    config = file
    await startDaemon(file)
    // B pinned the tree: one verified copy per file, below n = 2 and with no Filecoin copy.
    const online = await waitFor(
      async () => {
        const a = await auditJson(file)
        const m = a.lines.find((l) => l.type === 'mirror')
        return m?.queue?.state === 'under-replicated' &&
          a.lines.some((l) => l.type === 'file' && l.verified === 1)
          ? a
          : undefined
      },
      'B holding the tree, the item under-replicated',
      120_000,
      250,
    ).catch((err) => {
      throw new Error(`${(err as Error).message}\n${daemon!.log()}`)
    })
    const m = online.lines.find((l) => l.type === 'mirror')!
    expect(m).toMatchObject({ n: 2, nFrom: 'config' })
    // The replicator's reason and the audit's shortfall are the same words: one policy.
    const iso = online.lines.find((l) => l.path === 'pool/main/h/hello/hello_1.0.iso')!
    expect(iso.shortfall).toBe('1 of 2 verified copies, 0 of 1 filecoin copies')
    expect(m.queue!.reason).toBe('1 of 2 verified copies, 0 of 1 filecoin copies')
    // The provide budget: 1 CID an hour over a 22 h cycle, fewer than the mirror's roots.
    expect(m.provide).toEqual({ roots: expect.any(Number), capacity: 22, exceeded: true })
    expect(m.provide!.roots).toBeGreaterThan(EXTRA_FILES)
    // The 3 s freshness window: B's copies, checked once, stop counting (the default window is 24 h).
    const stale = await waitFor(
      async () => {
        const a = await auditJson(file)
        return a.lines.filter((l) => l.type === 'file').every((l) => l.verified === 0) ? a : undefined
      },
      'the copies older than the freshness window',
      60_000,
      250,
    )
    await killChild(daemon!.child)
    // Offline, from the same config and database: the same lines.
    const offline = await auditJson(file)
    expect(offline.code).toBe(1)
    const strip = (ls: AuditJsonLine[]) => ls.filter((l) => l.type === 'mirror' || l.type === 'file')
    expect(strip(offline.lines)).toEqual(strip(stale.lines))
    expect(offline.lines.find((l) => l.type === 'mirror')).toMatchObject({
      n: 2,
      nFrom: 'config',
      provide: { capacity: 22, exceeded: true },
    })
  }, 300_000)

  it('SIGHUP applies [replication]: a new target and a changed n and window, and names the [ipfs] keys that need a restart', async () => {
    const file = config
    await startDaemon(file)
    await waitFor(
      async () =>
        (await auditJson(file)).lines.find((l) => l.type === 'mirror')?.queue?.state === 'under-replicated',
      'the daemon up again',
      60_000,
      250,
    )
    writeFileSync(
      file,
      secondConfig({ n: 2, fresh: '1h', minFilecoin: false, targets: [swarm[1]!, swarm[2]!], perHour: 2 }),
    )
    daemon!.child.kill('SIGHUP')
    const after = await waitFor(
      async () => {
        const a = await auditJson(file)
        const m = a.lines.find((l) => l.type === 'mirror')
        return m?.queue?.state === 'satisfied' ? a : undefined
      },
      'the tree satisfied at n = 2 on B and C after the reload',
      120_000,
      250,
    ).catch((err) => {
      throw new Error(`${(err as Error).message}\n${daemon!.log()}`)
    })
    expect(after.code).toBe(0)
    for (const f of after.lines.filter((l) => l.type === 'file')) expect(f.verified).toBe(2)
    const root = (after.lines.find((l) => l.type === 'mirror') as { rootCid?: string }).rootCid!
    expect(await swarm[2]!.ok(['pin', 'ls', '--type=recursive', '--quiet', root])).toContain(root)
    const lines = logLines()
    expect(lines.map((l) => l.msg)).toContain(
      'replication config applied: replication.min_by_kind, replication.fresh, replication.targets',
    )
    expect(lines.map((l) => l.msg)).toContain(
      'config changed where a reload cannot apply it; restart to apply: ipfs.provide_per_hour',
    )
  }, 300_000)

  it('entity scope: per-file pins on two Kubo targets reach n = 2, and an unpinned file is pinned again', async () => {
    if (daemon) await killChild(daemon.child)
    // B and C let the earlier trees go: a file a tree pin holds already is held (indirectly), not pinned again.
    for (const k of [swarm[1]!, swarm[2]!])
      for (const cid of (await k.ok(['pin', 'ls', '--type=recursive', '--quiet']))
        .split('\n')
        .filter(Boolean))
        await k.ok(['pin', 'rm', cid])
    const file = join(tmp.dir, 'entity.toml')
    writeFileSync(
      file,
      secondConfig({ n: 2, fresh: '1h', minFilecoin: false, targets: [swarm[1]!, swarm[2]!], perHour: 300 })
        .replaceAll(join(tmp.dir, 'data2'), join(tmp.dir, 'data3'))
        .replaceAll('type = "kubo"', 'type = "kubo"\nscope = "entity"'),
    )
    config = file
    await startDaemon(file)
    const done = await waitFor(
      async () => {
        const a = await auditJson(file)
        // Exit 0 with nothing indexed yet proves nothing: every file must be listed, and meet n.
        const listed = a.lines.filter((l) => l.type === 'file').length
        return a.code === 0 && listed > EXTRA_FILES ? a : undefined
      },
      'every file pinned on B and C',
      180_000,
      250,
    ).catch((err) => {
      throw new Error(`${(err as Error).message}\n${daemon!.log()}`)
    })
    const files = done.lines.filter((l) => l.type === 'file')
    expect(files.length).toBeGreaterThan(EXTRA_FILES)
    const peers = await Promise.all(
      [swarm[1]!, swarm[2]!].map(async (k) => JSON.parse(await k.ok(['id'])).ID as string),
    )
    for (const f of files) {
      expect(f.verified).toBe(2)
      const entity = f.copies!.filter((c) => (c as { scope?: string }).scope === 'entity' && !c.local)
      expect(entity.map((c) => c.holder).sort()).toEqual(peers.map((p) => `ipfs:${p}`).sort())
    }
    // No tree pins: the targets hold one recursive pin per file CID.
    const iso = files.find((f) => f.path === 'pool/main/h/hello/hello_1.0.iso')!
    expect(await swarm[1]!.ok(['pin', 'ls', '--type=recursive', '--quiet', iso.cid!])).toContain(iso.cid!)
    const root = (done.lines.find((l) => l.type === 'mirror') as { rootCid?: string }).rootCid!
    expect((await swarm[1]!.run(['pin', 'ls', '--type=recursive', root])).code).not.toBe(0)
    // An unpin on B: the re-check (audit --verify) sees it and pins the file again.
    await swarm[1]!.ok(['pin', 'rm', iso.cid!])
    const verify = await runCli([
      'audit',
      '-c',
      file,
      '--verify',
      '--json',
      'pool/main/h/hello/hello_1.0.iso',
      '--mirror',
      'sample',
    ])
    expect(verify.stderr).toMatch(/^verify: \d+ of \d+ items re-checked/)
    await waitFor(
      async () => (await swarm[1]!.run(['pin', 'ls', '--type=recursive', '--quiet', iso.cid!])).code === 0,
      'the file pinned on B again',
      60_000,
      250,
    )
    const again = await auditJson(file)
    expect(again.code).toBe(0)
    expect(again.lines.find((l) => l.path === iso.path)?.verified).toBe(2)
  }, 300_000)

  it('a daemon started while a CLI reads the database waits for it, then starts', async () => {
    if (daemon) await killChild(daemon.child)
    const file = join(tmp.dir, 'held.toml')
    writeFileSync(file, quickstartText.replaceAll(join(tmp.dir, 'data'), join(tmp.dir, 'data4')))
    const held = await openDatabase(join(tmp.dir, 'data4', 'db'))
    let closed = false
    try {
      daemon = spawnDaemon(file)
      await waitFor(
        () => logLines().some((l) => String(l.msg).includes('is held by another process: waiting')),
        'the daemon waiting for the database',
        60_000,
        50,
      )
      expect(daemon.child.exitCode).toBeNull()
      await held.close()
      closed = true
      await waitFor(
        async () => (await fetch(`http://127.0.0.1:${managerPort}/jobs`).catch(() => undefined))?.ok,
        'the daemon answering once the database is free',
        60_000,
        100,
      )
    } finally {
      if (!closed) await held.close()
    }
  }, 120_000)
})
