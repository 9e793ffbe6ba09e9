import { execFileSync } from 'node:child_process'
import { existsSync, readFileSync, writeFileSync } from 'node:fs'
import { createServer as createHttpServer, type Server } from 'node:http'
import { createServer as createHttpsServer } from 'node:https'
import { createRequire } from 'node:module'
import { join } from 'node:path'
import { Agent, request } from 'undici'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { RemoteError, UnreachableError } from '../src/sync/api-errors.ts'
import { DEFAULTS, loadConfig } from '../src/sync/config/index.ts'
import { requestJson } from '../src/sync/http-client.ts'
import type { WebMirrorStatus } from '../src/sync/status.ts'
import { killChild, runCli, spawnDaemon } from './helpers/cli.ts'
import { tool } from './helpers/tools.ts'
import { commandMirror, freePort, TOKEN, tempDir, waitFor, writeToml } from './jobs-helpers.ts'

/** The client of every manager, worker and CLI call: TLS with a given CA, timeouts, error answers. */

let tmp: ReturnType<typeof tempDir>
const servers: Server[] = []
let stop: (() => Promise<void>) | undefined
let cleanupAgent: (() => Promise<void>) | undefined

beforeEach(() => {
  tmp = tempDir('cidmirror-http-')
})
afterEach(async () => {
  await stop?.()
  stop = undefined
  await cleanupAgent?.()
  cleanupAgent = undefined
  for (const s of servers.splice(0)) {
    s.closeAllConnections()
    await new Promise((r) => s.close(r))
  }
  tmp.cleanup()
})

/** A self-signed certificate for 127.0.0.1 (its own CA), made by openssl. */
function selfSigned(dir: string): { cert: string; key: string; certFile: string; keyFile: string } {
  const certFile = join(dir, 'cert.pem')
  const keyFile = join(dir, 'key.pem')
  execFileSync(
    tool('openssl'),
    [
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:prime256v1',
      '-nodes',
      '-keyout',
      keyFile,
      '-out',
      certFile,
      '-days',
      '2',
      '-subj',
      '/CN=127.0.0.1',
      '-addext',
      'subjectAltName=IP:127.0.0.1',
    ],
    { stdio: 'ignore' },
  )
  return { cert: readFileSync(certFile, 'utf8'), key: readFileSync(keyFile, 'utf8'), certFile, keyFile }
}

async function listen(server: Server): Promise<number> {
  servers.push(server)
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()))
  const addr = server.address()
  return typeof addr === 'object' && addr ? addr.port : 0
}

describe('requestJson', () => {
  it("refuses an https server whose certificate the process's CAs do not vouch for, in one line", async () => {
    const tls = selfSigned(tmp.dir)
    const port = await listen(
      createHttpsServer({ cert: tls.cert, key: tls.key }, (_req, res) => res.end('{}')),
    )
    const refused = await requestJson('GET', `https://127.0.0.1:${port}/x`).catch((e: unknown) => e)
    expect(refused).toBeInstanceOf(UnreachableError)
    expect((refused as Error).message).toMatch(
      /^cannot reach https:\/\/127\.0\.0\.1:\d+\/x: \S*SELF_SIGNED\S*$/,
    )
  })

  it('gives up on a server that never answers, saying how long it waited', async () => {
    const port = await listen(createHttpServer(() => {}))
    const err = await requestJson('GET', `http://127.0.0.1:${port}/`, { timeoutMs: 300 }).catch(
      (e: unknown) => e,
    )
    expect(err).toBeInstanceOf(UnreachableError)
    expect((err as Error).message).toBe(`cannot reach http://127.0.0.1:${port}/: no answer within 0.3 s`)
  })

  it("turns an error answer into RemoteError with the server's code and message", async () => {
    const port = await listen(
      createHttpServer((_req, res) => {
        res.statusCode = 409
        res.setHeader('content-type', 'application/json')
        res.end(JSON.stringify({ error: 'busy', code: 'CIDMIRROR_ERR_X' }))
      }),
    )
    const err = (await requestJson('POST', `http://127.0.0.1:${port}/`, { body: {} }).catch(
      (e: unknown) => e,
    )) as RemoteError
    expect(err).toBeInstanceOf(RemoteError)
    expect([err.statusCode, err.remoteCode, err.message]).toEqual([
      409,
      'CIDMIRROR_ERR_X',
      `busy (HTTP 409 from http://127.0.0.1:${port}/)`,
    ])
  })

  it('says why nothing answers at a closed port', async () => {
    const port = await freePort()
    const err = await requestJson('GET', `http://127.0.0.1:${port}/`).catch((e: unknown) => e)
    expect((err as Error).message).toBe(`cannot reach http://127.0.0.1:${port}/: ECONNREFUSED`)
  })
})

describe("default ports and the fetch standard's bad-port list", () => {
  it('only the worker port is on it, which only servers call (undici request, never fetch)', async () => {
    // undici's own copy of the list fetch enforces (https://fetch.spec.whatwg.org/#port-blocking).
    const { badPortsSet } = createRequire(import.meta.url)('undici/lib/web/fetch/constants.js') as {
      badPortsSet: Set<string>
    }
    const quickstart = await loadConfig(
      join(import.meta.dirname, '..', 'examples', 'quickstart', 'cidmirror.toml'),
    )
    const example = await loadConfig(join(import.meta.dirname, '..', 'examples', 'cidmirror.toml'))
    // Browsers read the manager's /jobs (status pages); the quick start's rsync port is not HTTP but checked too.
    const browserFacing = {
      'default api_base': new URL(DEFAULTS.apiBase).port,
      'quick start manager': String(quickstart.manager.listenPort),
      'example manager': String(example.manager.listenPort),
      'quick start rsync': '8873',
    }
    expect(Object.entries(browserFacing).filter(([, port]) => badPortsSet.has(port))).toEqual([])
    expect([DEFAULTS.serverPort, quickstart.server.listenPort, example.server.listenPort]).toEqual([
      6000, 6000, 6000,
    ])
    expect(badPortsSet.has('6000')).toBe(true)
  })
})

describe('job control over TLS', () => {
  it('manager and worker on https with [manager] ca_cert: the worker registers, the CLI starts a job', async () => {
    const tls = selfSigned(tmp.dir)
    const managerPort = await freePort()
    const config = writeToml({
      dir: tmp.dir,
      managerPort,
      interval: '6h',
      mirrors: commandMirror('quick', `echo run >> ${join(tmp.dir, 'runs.txt')}`),
    })
    const text = readFileSync(config, 'utf8')
      .replace(
        `api_base = "http://127.0.0.1:${managerPort}"`,
        [
          `api_base = "https://127.0.0.1:${managerPort}"`,
          `ca_cert = "${tls.certFile}"`,
          `ssl_cert = "${tls.certFile}"`,
          `ssl_key = "${tls.keyFile}"`,
        ].join('\n'),
      )
      .replace('listen_port = 0', `listen_port = 0\nssl_cert = "${tls.certFile}"\nssl_key = "${tls.keyFile}"`)
    writeFileSync(config, text)

    const d = spawnDaemon(config)
    stop = () => killChild(d.child)
    // This test's own reads trust the certificate through an agent of their own, not the process.
    const agent = new Agent({ connect: { ca: tls.cert } })
    cleanupAgent = () => agent.close()
    const jobs = async (): Promise<WebMirrorStatus[]> =>
      (await request(`https://127.0.0.1:${managerPort}/jobs`, { dispatcher: agent })).body.json() as Promise<
        WebMirrorStatus[]
      >
    await waitFor(
      async () => (await jobs()).find((j) => j.name === 'quick' && j.status === 'success'),
      'the first sync reported over https',
      30_000,
      100,
    ).catch((err) => {
      throw new Error(`${(err as Error).message}\ndaemon log:\n${d.log()}`)
    })

    const workers = await runCli(['jobs', 'workers', '--json', '-c', config])
    expect(JSON.parse(workers.stdout)).toMatchObject([
      { id: 'w1', url: expect.stringMatching(/^https:\/\/127\.0\.0\.1:\d+\/$/) },
    ])
    // CLI -> https manager -> https worker, each hop verified against ca_cert.
    const started = await runCli(['jobs', 'start', 'quick', '-c', config])
    expect(started).toMatchObject({ code: 0, stderr: '' })
    const runs = join(tmp.dir, 'runs.txt')
    await waitFor(
      async () =>
        existsSync(runs) &&
        readFileSync(runs, 'utf8') === 'run\nrun\n' &&
        (await jobs()).find((j) => j.name === 'quick' && j.status === 'success'),
      'the second sync',
      30_000,
      100,
    )

    // Without the CA the same manager is refused, in one line.
    const untrusted = await runCli([
      'jobs',
      'start',
      'quick',
      '-m',
      `https://127.0.0.1:${managerPort}`,
      '--token',
      TOKEN,
    ])
    expect(untrusted.code).toBe(2)
    expect(untrusted.stderr).toMatch(
      /^cidmirror: cannot reach https:\/\/127\.0\.0\.1:\d+\/cmd: \S*SELF_SIGNED\S*\n$/,
    )
  })
})
