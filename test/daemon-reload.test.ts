import { execFileSync } from 'node:child_process'
import { chmodSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { Writable } from 'node:stream'
import { type Logger, pino } from 'pino'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { type Daemon, readReplicationConfig, startDaemon } from '../src/daemon/index.ts'
import { replicationKeysNeedingRestart } from '../src/daemon/reload.ts'
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

describe('reloading [filecoin]', () => {
  const FILECOIN = `[filecoin]
network = "calibration"
key_file = "wallet.key"
copies = 2
scan_every = "10m"
`
  /** A config with `[filecoin]` (its key file 0600 beside it), and what a reload reads of it. */
  function filecoinToml(port: number, section: string): string {
    const file = writeToml({ dir: tmp.dir, managerPort: port, mirrors: commandMirror('m', 'echo ok') })
    writeFileSync(join(tmp.dir, 'wallet.key'), `${'ab'.repeat(32)}\n`)
    chmodSync(join(tmp.dir, 'wallet.key'), 0o600)
    writeFileSync(file, `${readFileSync(file, 'utf8')}\n${section}`)
    return file
  }

  it('names each changed [filecoin] key as needing a restart, and the section when it goes', async () => {
    const port = await freePort()
    const file = filecoinToml(port, FILECOIN)
    const { log, lines } = capturingLog()
    daemon = await startDaemon({
      config: await loadConfig(file),
      manager: true,
      worker: true,
      log,
      index: false,
      linkBackoff: FAST_LINK,
    })
    const text = readFileSync(file, 'utf8')
    writeFileSync(file, text.replace('copies = 2', 'copies = 3').replace('"10m"', '"5m"'))
    await daemon.reload()
    const warnings = () => lines.filter((l) => l.level === 40 && /restart to apply/.test(l.msg))
    expect(warnings().map((l) => l.msg)).toEqual([
      'config changed where a reload cannot apply it; restart to apply: filecoin.copies, filecoin.scan_every',
    ])
    expect(warnings()[0]?.keys).toEqual(['filecoin.copies', 'filecoin.scan_every'])
    // Still the started [filecoin]: reloading the same change again names it again.
    await daemon.reload()
    expect(warnings()).toHaveLength(2)
    writeFileSync(file, text.replace(FILECOIN, ''))
    await daemon.reload()
    expect(warnings()[2]?.keys).toEqual(['filecoin'])
  })

  it('every [filecoin] key is compared (a change to any is named)', async () => {
    const a = filecoinToml(await freePort(), FILECOIN)
    const before = readReplicationConfig(await loadConfig(a))
    writeFileSync(join(tmp.dir, 'session.key'), `${'cd'.repeat(32)}\n`)
    chmodSync(join(tmp.dir, 'session.key'), 0o600)
    const changed = `[filecoin]
network = "mainnet"
rpc = "http://127.0.0.1:1/rpc/v1"
session_key_file = "session.key"
wallet = "0x${'1'.repeat(40)}"
copies = 3
cap_month = "2.5"
cap_total = 7
small_file = "32M"
piece_target = "128M"
max_piece = "512M"
scan_from_block = 100
scan_every = "5m"
source = "other"
ipni = ["http://127.0.0.1:2"]
`
    writeFileSync(a, readFileSync(a, 'utf8').replace(FILECOIN, changed))
    const after = readReplicationConfig(await loadConfig(a))
    expect(replicationKeysNeedingRestart(before, after, true, false)).toEqual(
      [
        'network',
        'rpc',
        'key_file',
        'session_key_file',
        'wallet',
        'copies',
        'cap_month',
        'cap_total',
        'small_file',
        'piece_target',
        'max_piece',
        'scan_from_block',
        'scan_every',
        'source',
        'ipni',
      ].map((k) => `filecoin.${k}`),
    )
    expect(replicationKeysNeedingRestart(before, before, true, false)).toEqual([])
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
