/**
 * The gateway as operators run it: inside `cidmirror daemon` with `[gateway]` (the synced mirror served
 * with its CIDs once indexed, the status page, /metrics, the access log), and alone as
 * `cidmirror gateway -c FILE`, which reads the database itself, or the running daemon's read API when
 * the daemon holds it. A bad `[gateway]` key is one line naming it.
 */
import { type ChildProcess, spawn } from 'node:child_process'
import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { request } from 'undici'
import { afterEach, describe, expect, it } from 'vitest'
import { killChild, MAIN, runCli, STACK_LINE, spawnDaemon } from './helpers/cli.ts'
import { commandMirror, freePort, tempDir, waitFor, writeToml } from './jobs-helpers.ts'

const cleanups: (() => Promise<void> | void)[] = []
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c()
})

async function get(url: string, headers: Record<string, string> = {}) {
  const r = await request(url, { headers })
  return { status: r.statusCode, headers: r.headers as Record<string, string>, text: await r.body.text() }
}

function setup(gatewayPort: number, extra = ''): { dir: string; config: string } {
  const t = tempDir('cidmirror-gw-daemon-')
  cleanups.push(t.cleanup)
  const config = writeToml({
    dir: t.dir,
    mirrors: commandMirror('sample', 'mkdir -p pool && printf "hello\\n" > pool/hello_1.0+b1.txt'),
  })
  const text = `${readFileSync(config, 'utf8')}\n[gateway]\nlisten_port = ${gatewayPort}\naccess_log = "${t.dir}/log/access.log"\n${extra}\n`
  writeFileSync(config, text)
  return { dir: t.dir, config }
}

function spawnGateway(config: string, args: string[] = []): { child: ChildProcess; out: () => string } {
  const child = spawn(process.execPath, [MAIN, 'gateway', '-c', config, ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, CIDMIRROR_LOG_LEVEL: 'warn' },
  })
  let out = ''
  child.stdout?.on('data', (d: Buffer) => {
    out += d.toString()
  })
  child.stderr?.on('data', (d: Buffer) => {
    out += d.toString()
  })
  cleanups.push(() => killChild(child))
  return { child, out: () => out }
}

describe('cidmirror daemon with [gateway]', () => {
  it('serves the synced mirror with its CIDs once indexed, the status page and /metrics', async () => {
    const port = await freePort()
    const managerPort = await freePort()
    const { config, dir } = setup(port)
    writeFileSync(
      config,
      readFileSync(config, 'utf8').replace(
        'api_base = "http://127.0.0.1:1"',
        `api_base = "http://127.0.0.1:${managerPort}"`,
      ),
    )
    const d = spawnDaemon(config)
    cleanups.push(() => killChild(d.child))
    const base = `http://127.0.0.1:${port}`
    const file = await waitFor(
      async () => {
        const r = await get(`${base}/sample/pool/hello_1.0%2bb1.txt`)
        return r.status === 200 && r.headers.etag?.startsWith('"bafk') ? r : undefined
      },
      `the gateway serving the indexed file (log: ${d.log()})`,
      60_000,
      100,
    )
    expect(file.text).toBe('hello\n')
    expect(file.headers['x-ipfs-roots']?.split(',')).toHaveLength(3)
    const status = await get(`${base}/_status.json`)
    expect(status.status).toBe(200)
    const s = JSON.parse(status.text) as {
      mirrors: { name: string; index: { rootCid: string } | null; job: { status: string } | null }[]
    }
    expect(s.mirrors.find((m) => m.name === 'sample')?.index?.rootCid).toBe(
      file.headers['x-ipfs-roots']!.split(',')[0],
    )
    expect(s.mirrors.find((m) => m.name === 'sample')?.job?.status).toBe('success')
    const metrics = await get(`${base}/metrics`)
    expect(metrics.text).toMatch(/cidmirror_gateway_requests_total\{status="200"\} [1-9]/)
    const listing = await get(`${base}/sample/pool/`)
    expect(listing.text).toContain('hello_1.0+b1.txt')
    await waitFor(
      () => readFileSync(join(dir, 'log', 'access.log'), 'utf8').includes('GET /sample/pool/ HTTP/1.1'),
      'the access log line',
    )
  })
})

describe('cidmirror gateway -c FILE', () => {
  it('alone on the database, and beside a running daemon through its read API', async () => {
    const port = await freePort()
    const managerPort = await freePort()
    const { config } = setup(port)
    writeFileSync(
      config,
      readFileSync(config, 'utf8').replace(
        'api_base = "http://127.0.0.1:1"',
        `api_base = "http://127.0.0.1:${managerPort}"`,
      ),
    )
    // A first daemon run syncs and indexes, then stops: the database is free.
    const d = spawnDaemon(config)
    await waitFor(
      async () =>
        (await get(`http://127.0.0.1:${port}/sample/pool/hello_1.0+b1.txt`)).headers.etag?.startsWith(
          '"bafk',
        ),
      'the first index',
      60_000,
      100,
    )
    await new Promise<void>((resolve) => {
      d.child.once('exit', () => resolve())
      d.child.kill('SIGTERM')
    })
    const alone = spawnGateway(config)
    const url = await waitFor(
      () => /serving 1 mirror\(s\) at (\S+)\//.exec(alone.out())?.[1],
      'the gateway line',
    )
    expect(url).toBe(`http://127.0.0.1:${port}`)
    const r = await get(`${url}/sample/pool/hello_1.0+b1.txt`)
    expect(r.text).toBe('hello\n')
    expect(r.headers.etag).toMatch(/^"bafk/)
    await killChild(alone.child)
    // With a daemon holding the database, the gateway reads its read API (on another port).
    const d2 = spawnDaemon(config)
    cleanups.push(() => killChild(d2.child))
    await waitFor(
      async () => (await get(`http://127.0.0.1:${port}/sample/`)).status === 200,
      'the daemon gateway',
      60_000,
      100,
    )
    const other = await freePort()
    const beside = spawnGateway(config, ['--listen', `127.0.0.1:${other}`])
    await waitFor(() => beside.out().includes('serving'), `the second gateway (${beside.out()})`, 30_000)
    const r2 = await get(`http://127.0.0.1:${other}/sample/pool/hello_1.0+b1.txt`)
    expect(r2.headers.etag).toBe(r.headers.etag)
    expect((await get(`http://127.0.0.1:${other}/sample/pool/?format=json`)).text).toContain(
      r.headers.etag!.slice(1, -1),
    )
  })

  it('a bad [gateway] key or value is one line naming it, exit 2', async () => {
    const { config } = setup(1, 'max_conections = 5')
    const r = await runCli(['gateway', '-c', config])
    expect(r.code).toBe(2)
    expect(r.stderr).toMatch(/gateway\.max_conections: unknown key/)
    expect(r.stderr).not.toMatch(STACK_LINE)
    const { config: c2 } = setup(1, '[gateway.paths]\nsample = "/ipfs/"')
    const r2 = await runCli(['gateway', '-c', c2])
    expect(r2.code).toBe(2)
    expect(r2.stderr.trim().split('\n')).toHaveLength(1)
    expect(r2.stderr).toMatch(/taken by the gateway's own routes/)
  })
})
