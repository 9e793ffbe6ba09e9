/**
 * The trustless routes and the status page as `cidmirror daemon` wires them: with `[gateway]` alone
 * the daemon keeps the block map itself after each scan, so a synced tree (a multi-chunk file
 * included) comes out of `/ipfs/{root}` as a CAR the test verifies and rebuilds; with `[ipfs]` (the
 * embedded node) and `[replication]`, `/_status.json` carries the mirror's replication health as the
 * audit judges it (the local node's copy never counts).
 */
import { spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { CID } from 'multiformats/cid'
import { afterEach, describe, expect, it } from 'vitest'
import { killChild, MAIN, runCli, spawnDaemon } from './helpers/cli.ts'
import { fileFromCar, get, readCar, resolveInCar } from './helpers/trustless.ts'
import { commandMirror, freePort, tempDir, waitFor, writeToml } from './jobs-helpers.ts'

const cleanups: (() => Promise<void> | void)[] = []
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c()
})

interface Status {
  mirrors: {
    name: string
    index: { rootCid: string | null; files: number; bytes: number } | null
    replication: { n: number; files: number; ok: number; under: number; bytesUnder: number } | null
  }[]
}

async function configure(extra: string): Promise<{ base: string; dir: string; config: string }> {
  const t = tempDir('cidmirror-gw-trustless-')
  cleanups.push(t.cleanup)
  const [port, managerPort] = [await freePort(), await freePort()]
  const config = writeToml({
    dir: t.dir,
    managerPort,
    mirrors: commandMirror(
      'sample',
      'mkdir -p pool && printf "hello\\n" > pool/hello.txt && head -c 2621445 /dev/urandom > pool/big.iso',
    ),
  })
  writeFileSync(config, `${readFileSync(config, 'utf8')}\n${extra}\n[gateway]\nlisten_port = ${port}\n`)
  return { base: `http://127.0.0.1:${port}`, dir: t.dir, config }
}

async function start(extra: string): Promise<{ base: string; dir: string; log: () => string }> {
  const { base, dir, config } = await configure(extra)
  const d = spawnDaemon(config)
  cleanups.push(() => killChild(d.child))
  return { base, dir, log: d.log }
}

/** The mirror's status once its index has a root (and, with `replication`, its health). */
async function indexed(base: string, log: () => string, replication = false): Promise<Status['mirrors'][0]> {
  return waitFor(
    async () => {
      const r = await get(base, '/_status.json').catch(() => undefined)
      if (r?.status !== 200) return undefined
      const m = (JSON.parse(r.body.toString()) as Status).mirrors.find((x) => x.name === 'sample')
      return m?.index?.rootCid && (!replication || m.replication) ? m : undefined
    },
    `the indexed mirror on /_status.json (log: ${log()})`,
    90_000,
    100,
  )
}

describe('cidmirror daemon: trustless routes and the status page', () => {
  it('with [gateway] alone, maps each scan itself: the tree comes out of /ipfs/{root} verified', async () => {
    const { base, dir, log } = await start('')
    const m = await indexed(base, log)
    expect(m.replication).toBeNull() // no replication configured: nothing to judge
    const root = CID.parse(m.index!.rootCid!)
    const car = await waitFor(
      async () => {
        const r = await get(base, `/ipfs/${root}/pool/big.iso?format=car`)
        return r.status === 200 ? readCar(r.body) : undefined
      },
      `the block map (log: ${log()})`,
      60_000,
      100,
    )
    const file = resolveInCar(car, root, ['pool', 'big.iso'])
    expect(
      fileFromCar(car, file).equals(readFileSync(join(dir, 'mirrors', 'sample', 'pool', 'big.iso'))),
    ).toBe(true)
    expect(car.blocks.length).toBe(3 + 3) // root, pool, file root, three leaves
    const html = await get(base, '/_status')
    expect(html.headers['content-type']).toBe('text/html; charset=utf-8')
    expect(html.body.toString()).toContain(root.toString())
  })

  it('with [ipfs] and [replication], /_status.json shows the audit: under n, the local copy not counted', async () => {
    const { base, dir, log } = await start(
      '[ipfs]\nlisten = ["/ip4/127.0.0.1/tcp/0"]\n\n[replication]\nn = 2\n',
    )
    const m = await indexed(base, log, true)
    const bytes = ['hello.txt', 'big.iso']
      .map((f) => readFileSync(join(dir, 'mirrors', 'sample', 'pool', f)).length)
      .reduce((a, b) => a + b)
    expect(m.index).toMatchObject({ files: 2, bytes })
    expect(m.replication).toMatchObject({ n: 2, files: 2, ok: 0, under: 2, bytesUnder: bytes })
  })

  it('cidmirror gateway -c FILE on the database maps the scans no daemon mapped (cidmirror index)', async () => {
    const { base, dir, config } = await configure('')
    const tree = join(dir, 'mirrors', 'sample')
    mkdirSync(join(tree, 'pool'), { recursive: true })
    const big = randomBytes(2 * 1024 * 1024 + 7)
    writeFileSync(join(tree, 'pool', 'big.iso'), big)
    const ran = await runCli(['index', tree, '-c', config, '--progress', 'none'])
    expect(ran.code, ran.stderr).toBe(0)
    const child = spawn(process.execPath, [MAIN, 'gateway', '-c', config], {
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    let out = ''
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString()
    })
    child.stderr.on('data', (d: Buffer) => {
      out += d.toString()
    })
    cleanups.push(() => killChild(child))
    const m = await indexed(base, () => out)
    const root = CID.parse(m.index!.rootCid!)
    const car = await waitFor(
      async () => {
        const r = await get(base, `/ipfs/${root}/pool/big.iso?format=car`)
        return r.status === 200 ? readCar(r.body) : undefined
      },
      `the block map (out: ${out})`,
      60_000,
      100,
    )
    expect(fileFromCar(car, resolveInCar(car, root, ['pool', 'big.iso'])).equals(big)).toBe(true)
  })
})
