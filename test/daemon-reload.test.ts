import { execFileSync } from 'node:child_process'
import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { Writable } from 'node:stream'
import { type Logger, pino } from 'pino'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { type Daemon, startDaemon } from '../src/daemon/index.ts'
import { loadConfig } from '../src/sync/config/index.ts'
import { ConfigError } from '../src/sync/errors.ts'
import { ManagerClient } from '../src/sync/manager/client.ts'
import { tool } from './helpers/tools.ts'
import { commandMirror, FAST_LINK, freePort, TOKEN, tempDir, waitFor, writeToml } from './jobs-helpers.ts'

let tmp: ReturnType<typeof tempDir>
let daemon: Daemon | undefined
beforeEach(() => {
  tmp = tempDir('cidmirror-reload-')
})
afterEach(async () => {
  await daemon?.close()
  daemon = undefined
  tmp.cleanup()
})

/** A pino logger whose lines land in `lines` (parsed). */
function capturingLog(): {
  log: Logger
  lines: { level: number; msg: string; keys?: string[] }[]
} {
  const lines: { level: number; msg: string; keys?: string[] }[] = []
  const stream = new Writable({
    write(chunk, _enc, done) {
      for (const l of String(chunk).split('\n').filter(Boolean)) lines.push(JSON.parse(l))
      done()
    },
  })
  return { log: pino({ level: 'info' }, stream) as unknown as Logger, lines }
}

async function post(url: string, token: string, body: unknown): Promise<number> {
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
    body: JSON.stringify(body),
  })
  await res.text()
  return res.status
}

describe('reloading the config (SIGHUP, jobs reload)', () => {
  it('applies a changed token to the manager and the worker, and logs what needs a restart', async () => {
    const port = await freePort()
    const o = { dir: tmp.dir, managerPort: port, mirrors: commandMirror('m', 'echo ok') }
    const file = writeToml(o)
    const { log, lines } = capturingLog()
    daemon = await startDaemon({
      config: await loadConfig(file),
      manager: true,
      worker: true,
      log,
      index: false,
      linkBackoff: FAST_LINK,
    })
    const d = daemon
    const mgr = d.manager!.url
    const worker = d.worker!
    await waitFor(() => worker.status('m')?.status === 'success', 'first run')
    const cmd = { cmd: 'ping', mirror_id: 'm', worker_id: 'w1' }
    expect(await post(`${mgr}/cmd`, TOKEN, cmd)).toBe(200)

    const NEW = 'a-new-token-9876543210'
    writeFileSync(
      file,
      readFileSync(file, 'utf8').replace(TOKEN, NEW).replace('concurrent = 4', 'concurrent = 3'),
    )
    await d.reload()

    // The old token is refused everywhere, the new one works everywhere.
    expect(await post(`${mgr}/cmd`, TOKEN, cmd)).toBe(401)
    expect(await post(worker.url, TOKEN, { cmd: 'ping', mirror_id: 'm' })).toBe(401)
    expect(await post(worker.url, NEW, { cmd: 'ping', mirror_id: 'm' })).toBe(200)
    // The worker registered again with its new token, so commands the manager relays reach it.
    await waitFor(() => worker.links[0]!.registered, 'registered again')
    await waitFor(
      async () => (await post(`${mgr}/cmd`, NEW, cmd)) === 200,
      'a relayed command with the new token',
    )
    // Status pushes carry the new token too: a second run's start reaches the manager.
    const startedOf = async (): Promise<string | undefined> =>
      (await new ManagerClient(mgr).workerJobs('w1')).find((j) => j.name === 'm')?.last_started
    const first = await startedOf()
    expect(await post(`${mgr}/cmd`, NEW, { cmd: 'start', mirror_id: 'm', worker_id: 'w1' })).toBe(200)
    await waitFor(async () => {
      const jobs = await new ManagerClient(mgr).workerJobs('w1')
      const m = jobs.find((j) => j.name === 'm')
      return m && m.status === 'success' && m.last_started !== first && worker.links[0]!.backlog === 0
    }, 'the second run reaches the manager')

    expect(
      lines.some((l) => l.level === 30 && /manager\.token changed: the new token is in use/.test(l.msg)),
    ).toBe(true)
    const restart = lines.find((l) => l.level === 40 && /restart to apply/.test(l.msg))
    expect(restart?.msg).toBe(
      'config changed where a reload cannot apply it; restart to apply: global.concurrent',
    )
    expect(restart?.keys).toEqual(['global.concurrent'])
  })

  it('a reload that drops the token is refused and keeps the old one', async () => {
    const port = await freePort()
    const file = writeToml({ dir: tmp.dir, managerPort: port, mirrors: commandMirror('m', 'echo ok') })
    const { log } = capturingLog()
    daemon = await startDaemon({ config: await loadConfig(file), manager: true, worker: false, log })
    const mgr = daemon.manager!.url
    writeFileSync(file, readFileSync(file, 'utf8').replace(`token = "${TOKEN}"`, ''))
    await expect(daemon.reload()).rejects.toThrow(/needs a token/)
    expect(await post(`${mgr}/workers`, TOKEN, { id: 'w9', url: 'http://127.0.0.1:9/' })).toBe(200)
  })
})

describe('an https api_base', () => {
  function certificate(): { cert: string; key: string } {
    const cert = join(tmp.dir, 'cert.pem')
    const key = join(tmp.dir, 'key.pem')
    execFileSync(
      tool('openssl'),
      [
        'req',
        '-x509',
        '-newkey',
        'rsa:2048',
        '-nodes',
        '-keyout',
        key,
        '-out',
        cert,
        '-days',
        '2',
        '-subj',
        '/CN=127.0.0.1',
        '-addext',
        'subjectAltName=IP:127.0.0.1',
      ],
      { stdio: 'ignore' },
    )
    return { cert, key }
  }

  function tlsToml(port: number, extra: string): string {
    const file = writeToml({ dir: tmp.dir, managerPort: port, mirrors: commandMirror('m', 'echo ok') })
    const text = readFileSync(file, 'utf8')
    writeFileSync(file, text.replace(`api_base = "http://127.0.0.1:${port}"`, extra))
    return file
  }

  it('without a certificate to serve is refused at start, naming the key and the file', async () => {
    const port = await freePort()
    const file = tlsToml(port, `api_base = "https://127.0.0.1:${port}"`)
    const err = (await startDaemon({
      config: await loadConfig(file),
      manager: true,
      worker: true,
      log: capturingLog().log,
    }).catch((e: unknown) => e)) as ConfigError
    expect(err).toBeInstanceOf(ConfigError)
    expect(err.message).toBe(
      `config ${file}: manager.api_base: "https://127.0.0.1:${port}" is https, but the manager listening there has no certificate: set manager.ssl_cert and manager.ssl_key, or use http://`,
    )
    // A worker alone may point at an https manager elsewhere.
    const ok = await loadConfig(file)
    expect(ok.manager.apiBase).toBe(`https://127.0.0.1:${port}`)
  })

  it('with http while the manager serves TLS is refused too', async () => {
    const { cert, key } = certificate()
    const port = await freePort()
    const file = tlsToml(
      port,
      `api_base = "http://127.0.0.1:${port}"\nssl_cert = "${cert}"\nssl_key = "${key}"`,
    )
    const err = (await startDaemon({
      config: await loadConfig(file),
      manager: true,
      worker: true,
      log: capturingLog().log,
    }).catch((e: unknown) => e)) as ConfigError
    expect(err).toBeInstanceOf(ConfigError)
    expect(err.key).toBe('manager.ssl_cert')
    expect(err.message).toMatch(
      /the manager serves TLS where manager\.api_base "http:\/\/127\.0\.0\.1:\d+" says plain http/,
    )
  })

  it('with ssl_cert, ssl_key and ca_cert: the manager serves TLS and the worker registers over it', async () => {
    const { cert, key } = certificate()
    const port = await freePort()
    const file = tlsToml(
      port,
      `api_base = "https://127.0.0.1:${port}"\nssl_cert = "${cert}"\nssl_key = "${key}"\nca_cert = "${cert}"`,
    )
    daemon = await startDaemon({
      config: await loadConfig(file),
      manager: true,
      worker: true,
      log: capturingLog().log,
      index: false,
      linkBackoff: FAST_LINK,
    })
    expect(daemon.manager!.url).toBe(`https://127.0.0.1:${port}`)
    const worker = daemon.worker!
    await waitFor(
      () =>
        worker.links[0]!.registered &&
        worker.status('m')?.status === 'success' &&
        worker.links[0]!.backlog === 0,
      'registered and pushed over TLS',
    )
    const jobs = await new ManagerClient(daemon.manager!.url).listJobs()
    expect(jobs.map((j) => [j.name, j.status])).toEqual([['m', 'success']])
  })
})
