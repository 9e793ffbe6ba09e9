import { mkdtempSync, readFileSync, realpathSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { type Daemon, startDaemon } from '../src/daemon/index.ts'
import { loadConfig } from '../src/sync/config/index.ts'
import { ConfigError } from '../src/sync/errors.ts'
import { freePort, quietLog } from './jobs-helpers.ts'

const EXAMPLES = resolve(import.meta.dirname, '..', 'examples', 'tunasync-migration')

let T: string
let daemon: Daemon | undefined
beforeEach(() => {
  T = realpathSync(mkdtempSync(join(tmpdir(), 'cidmirror-tunaforms-')))
})
afterEach(async () => {
  await daemon?.close()
  daemon = undefined
  rmSync(T, { recursive: true, force: true })
})

function file(text: string, name = 'c.toml'): string {
  const f = join(T, name)
  writeFileSync(f, text)
  return f
}

async function refusal(f: string): Promise<ConfigError> {
  const err = await loadConfig(f).then(
    () => undefined,
    (e: unknown) => e,
  )
  expect(err).toBeInstanceOf(ConfigError)
  return err as ConfigError
}

describe("tunasync's forms that a tunasync config has", () => {
  it("a tunasync manager config (debug, [server] addr/port, [files]) is the manager's", async () => {
    const f = join(EXAMPLES, 'manager.conf')
    const c = await loadConfig(f)
    expect(c.debug).toBe(false)
    expect(c.manager).toMatchObject({
      listenAddr: '127.0.0.1',
      listenPort: 12345,
      sslCert: undefined,
      caCert: undefined,
      token: 'some_token',
    })
    expect(c.warnings).toEqual([
      `config ${f}: files.db_type: ignored: cidmirror keeps job statuses in [database] path (workers send theirs again when they register), not in tunasync's database`,
      `config ${f}: files.db_file: ignored: cidmirror keeps job statuses in [database] path (workers send theirs again when they register), not in tunasync's database`,
    ])

    // tunasync's tests/manager.conf, with TLS and a CA for the workers.
    writeFileSync(join(T, 'manager.crt'), '')
    const g = file(
      `debug = true\n[server]\naddr = "0.0.0.0"\nport = 12345\nssl_cert = "manager.crt"\nssl_key = "manager.key"\n[files]\ndb_type = "bolt"\ndb_file = "/tmp/tunasync/manager.db"\nca_cert = "rootCA.crt"\n`,
    )
    const d = await loadConfig(g)
    expect(d.debug).toBe(true)
    expect(d.manager).toMatchObject({
      listenAddr: '0.0.0.0',
      listenPort: 12345,
      sslCert: join(T, 'manager.crt'),
      sslKey: join(T, 'manager.key'),
      caCert: join(T, 'rootCA.crt'),
    })
    expect(d.server.listenPort).toBe(6000) // the worker's own server keeps its default
  })

  it('cidmirror manager runs from it, listening at [server] addr and port', async () => {
    const port = await freePort()
    const text = readFileSync(join(EXAMPLES, 'manager.conf'), 'utf8').replace(
      'port = 12345',
      `port = ${port}`,
    )
    const f = file(`${text}\n[database]\npath = "${T}/db"\n`)
    daemon = await startDaemon({ config: await loadConfig(f), manager: true, worker: false, log: quietLog() })
    expect(daemon.manager!.url).toBe(`http://127.0.0.1:${port}`)
    expect(await (await fetch(`http://127.0.0.1:${port}/ping`)).json()).toEqual({ message: 'pong' })
  })

  it("[server] holds one form: tunasync's manager keys or the worker's", async () => {
    const err = await refusal(file('[server]\naddr = "127.0.0.1"\nlisten_port = 6000\n'))
    expect(err.code).toBe('CIDMIRROR_ERR_CONFIG_BAD_VALUE')
    expect(err.message).toBe(
      `config ${join(T, 'c.toml')}: server.listen_port: a [server] with addr or port is tunasync's manager section (the manager's address); the worker's own server takes listen_addr, listen_port and hostname: use one form`,
    )
    const dup = await refusal(file('[server]\nport = 1\n[manager]\nlisten_port = 2\n'))
    expect(dup.code).toBe('CIDMIRROR_ERR_CONFIG_DUPLICATE')
    expect(dup.message).toBe(
      `config ${join(T, 'c.toml')}: server.port: also set as manager.listen_port in this file`,
    )
    const twice = join(T, 'b.toml')
    writeFileSync(twice, 'debug = true\n')
    const d2 = await refusal(file('include = "b.toml"\ndebug = false\n'))
    expect(d2.message).toBe(`config ${twice}: debug: already set in ${join(T, 'c.toml')}`)
  })

  it('role: "slave" is not the master, any other value is, with a warning (as tunasync)', async () => {
    const f = file(
      `[global]\nmirror_dir = "${T}/m"\nlog_dir = "${T}/log/{{.Name}}"\n` +
        ['master', 'slave', 'primary', '']
          .map(
            (r, i) => `[[mirrors]]\nname = "m${i}"\nprovider = "command"\ncommand = "true"\nrole = "${r}"\n`,
          )
          .join(''),
    )
    const c = await loadConfig(f)
    expect(c.mirrors.map((m) => m.isMaster)).toEqual([true, false, true, true])
    expect(c.warnings).toEqual([
      `config ${f}: mirrors[2].role: "primary" is neither "master" nor "slave": read as "master", as tunasync does`,
      `config ${f}: mirrors[3].role: "" is neither "master" nor "slave": read as "master", as tunasync does`,
    ])
  })

  it("log_dir takes tunasync's other mirror fields ({{.Provider}}, {{.Interval}}, ...)", async () => {
    const f = file(
      `[global]\nmirror_dir = "${T}/m"\ninterval = 90\ntimeout = "2h"\nlog_dir = "${T}/log/{{.Provider}}/{{.Name}}-{{.Interval}}m-{{.Retry}}-{{.Timeout}}s"\n` +
        '[[mirrors]]\nname = "deb"\nprovider = "two-stage-rsync"\nupstream = "rsync://h/deb/"\nstage1_profile = "debian"\nretry = 4\n' +
        `[[mirrors]]\nname = "pypi"\nprovider = "command"\ncommand = "bandersnatch"\nlog_dir = "${T}/log/{{.Stage1Profile}}{{.Command}}/{{.Username}}x"\n`,
    )
    const c = await loadConfig(f)
    expect(c.mirrors.map((m) => m.logDir)).toEqual([
      `${T}/log/two-stage-rsync/deb-90m-4-7200s`,
      `${T}/log/bandersnatch/x`,
    ])
    const err = await refusal(file(`[global]\nlog_dir = "/l/{{.Password}}"\n`))
    expect(err.message).toMatch(
      /global\.log_dir: unknown template field \{\{\.Password\}\} \(known: Name, Provider, Upstream, /,
    )
  })
})
