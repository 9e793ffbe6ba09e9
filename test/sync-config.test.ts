import { mkdirSync, mkdtempSync, realpathSync, rmSync, writeFileSync } from 'node:fs'
import { hostname, tmpdir } from 'node:os'
import { dirname, join, resolve } from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { DEFAULTS, loadConfig } from '../src/sync/config/index.ts'
import { ConfigError } from '../src/sync/errors.ts'

let tmp: string
beforeEach(() => {
  tmp = realpathSync(mkdtempSync(join(tmpdir(), 'cidmirror-config-')))
})
afterEach(() => {
  rmSync(tmp, { recursive: true, force: true })
})

function file(rel: string, text: string): string {
  const p = join(tmp, rel)
  mkdirSync(dirname(p), { recursive: true })
  writeFileSync(p, text)
  return p
}

async function failure(path: string): Promise<ConfigError> {
  const err = await loadConfig(path).then(
    () => undefined,
    (e: unknown) => e,
  )
  expect(err).toBeInstanceOf(ConfigError)
  return err as ConfigError
}

const MIN = '[global]\nmirror_dir = "/srv/m"\n'

describe('config: every key', () => {
  it('reads [global], [manager], [server], [database] and every mirror key', async () => {
    file('token', 'tok-from-file\n')
    const f = file(
      'etc/cidmirror.toml',
      `
[global]
name = "w1"
mirror_dir = "../srv"
log_dir = "/var/log/cm/{{.Name}}"
concurrent = 3
interval = "6h"
retry = 5
timeout = "2h"
rsync_options = ["--no-motd"]
exec_on_success = ["g-ok"]
exec_on_failure = ["g-fail"]
success_exit_codes = [1]
dangerous_global_success_exit_codes = [2]
rsync_success_exit_codes = [24]
dangerous_global_rsync_success_exit_codes = [25]
log_keep = 7
kill_grace = "3s"
retry_backoff = 45
retry_backoff_max = "2h"

[manager]
api_base = "https://mgr.example.org:8443/"
token_file = "../token"
ca_cert = "ca.pem"
listen_addr = "0.0.0.0"
listen_port = 9000
ssl_cert = "m.crt"
ssl_key = "m.key"
read_access = "public"

[server]
hostname = "w1.example.org"
listen_addr = "10.0.0.1"
listen_port = 6001
ssl_cert = "/tls/w.crt"
ssl_key = "/tls/w.key"

[database]
path = "state/db"

[[mirrors]]
name = "full"
provider = "rsync"
upstream = "rsync://up.example.org/full/"
role = "slave"
interval = 90
retry = 4
timeout = 600
mirror_subdir = "sub"
log_dir = "logs/{{ .Name }}-{{.MirrorSubDir}}"
env = { A = "1", B = "two" }
command = "/usr/local/bin/rsync"
fail_on_match = "(?i)fatal"
size_pattern = "size: (\\\\S+)"
exclude_file = "exclude.txt"
rsync_options = ["--bwlimit=1000"]
rsync_override = ["-av"]
rsync_override_only = false
rsync_timeout = "10m"
rsync_no_timeout = false
stage1_profile = "debian-oldstyle"
use_ipv4 = true
use_ipv6 = false
username = "u"
password = "p"
exec_on_success = ["m-ok"]
exec_on_failure = ["m-fail"]
exec_on_success_extra = ["m-ok-extra"]
exec_on_failure_extra = ["m-fail-extra"]
success_exit_codes = [3]
rsync_success_exit_codes = [30]
memory_limit = "500GiB"
log_keep = 2
whole_file_digest = true
kill_grace = 1

[[mirrors]]
name = "own-dir"
provider = "command"
command = "sync.sh"
mirror_dir = "/data/own"
`,
    )
    const c = await loadConfig(f)
    const etc = join(tmp, 'etc')
    expect(c.file).toBe(f)
    expect(c.files).toEqual([f])
    expect(c.global).toEqual({
      name: 'w1',
      mirrorDir: join(tmp, 'srv'),
      logDir: '/var/log/cm/{{.Name}}',
      concurrent: 3,
      intervalMs: 6 * 3_600_000,
      retry: 5,
      timeoutMs: 2 * 3_600_000,
      rsyncOptions: ['--no-motd'],
      execOnSuccess: ['g-ok'],
      execOnFailure: ['g-fail'],
      successExitCodes: [1, 2],
      rsyncSuccessExitCodes: [24, 25],
      logKeep: 7,
      killGraceMs: 3000,
      retryBackoffMs: 45_000,
      retryBackoffMaxMs: 7_200_000,
    })
    expect(c.manager).toEqual({
      apiBase: 'https://mgr.example.org:8443',
      apiBaseList: ['https://mgr.example.org:8443'],
      token: 'tok-from-file',
      caCert: join(etc, 'ca.pem'),
      listenAddr: '0.0.0.0',
      listenPort: 9000,
      listensAtApiBase: false,
      listenSource: {
        addr: { file: f, key: 'manager.listen_addr' },
        port: { file: f, key: 'manager.listen_port' },
      },
      sslCert: join(etc, 'm.crt'),
      sslKey: join(etc, 'm.key'),
      readAccess: 'public',
    })
    expect(c.server).toEqual({
      hostname: 'w1.example.org',
      listenAddr: '10.0.0.1',
      listenPort: 6001,
      listenSource: {
        addr: { file: f, key: 'server.listen_addr' },
        port: { file: f, key: 'server.listen_port' },
      },
      sslCert: '/tls/w.crt',
      sslKey: '/tls/w.key',
    })
    expect(c.database).toEqual({ path: join(etc, 'state/db') })
    const [m, own] = c.mirrors
    expect(m).toEqual({
      name: 'full',
      provider: 'rsync',
      upstream: 'rsync://up.example.org/full/',
      isMaster: false,
      role: 'slave',
      intervalMs: 90 * 60_000,
      retry: 4,
      timeoutMs: 600_000,
      mirrorDir: join(tmp, 'srv', 'sub', 'full'),
      logDir: join(etc, 'logs', 'full-sub'),
      env: { A: '1', B: 'two' },
      command: '/usr/local/bin/rsync',
      failOnMatch: /fatal/i,
      sizePattern: /size: (\S+)/,
      excludeFile: join(etc, 'exclude.txt'),
      rsyncOptions: ['--no-motd', '--bwlimit=1000'],
      rsyncOverride: ['-av'],
      rsyncOverrideOnly: false,
      rsyncTimeoutMs: 600_000,
      stage1Profile: 'debian-oldstyle',
      useIPv4: true,
      useIPv6: false,
      username: 'u',
      password: 'p',
      execOnSuccess: ['m-ok', 'm-ok-extra'],
      execOnFailure: ['m-fail', 'm-fail-extra'],
      successExitCodes: [1, 2, 3, 24, 25, 30],
      memoryLimit: 500 * 1024 ** 3,
      logKeep: 2,
      killGraceMs: 1000,
      wholeFileDigest: true,
      source: { file: f, key: 'mirrors[0]' },
    })
    expect(own?.mirrorDir).toBe('/data/own')
    expect(own?.logDir).toBe('/var/log/cm/own-dir')
    expect(own?.successExitCodes).toEqual([1, 2]) // rsync-only codes stay with rsync mirrors
    expect(own?.source).toEqual({ file: f, key: 'mirrors[1]' })
  })

  it('fills defaults that work', async () => {
    const c = await loadConfig(file('c.toml', `${MIN}[[mirrors]]\nname = "a"\nupstream = "rsync://h/a/"\n`))
    expect(c.global.name).toBe(hostname())
    expect(c.global.concurrent).toBe(4)
    expect(c.global.intervalMs).toBe(DEFAULTS.intervalMs)
    expect(c.global.retry).toBe(2)
    expect(c.global.timeoutMs).toBe(0)
    expect(c.global.logKeep).toBe(10)
    expect(c.global.killGraceMs).toBe(10_000)
    expect(c.global.logDir).toMatch(/cidmirror\/[^/]+\/log\/\{\{\.Name\}\}$/)
    expect(c.database.path).toMatch(/cidmirror\/[^/]+\/db$/)
    expect(c.manager).toMatchObject({
      apiBase: 'http://127.0.0.1:14242',
      listenAddr: '127.0.0.1',
      listenPort: 14242,
    })
    expect(c.manager.token).toBeUndefined()
    expect(c.server).toMatchObject({ hostname: hostname(), listenAddr: '127.0.0.1', listenPort: 6000 })
    const m = c.mirrors[0]!
    expect(m).toMatchObject({
      provider: 'rsync',
      isMaster: true,
      mirrorDir: '/srv/m/a',
      rsyncTimeoutMs: 120_000,
      stage1Profile: 'debian',
      env: {},
      rsyncOptions: [],
      execOnSuccess: [],
      successExitCodes: [],
    })
    expect(m.logDir).toMatch(/log\/a$/)
    expect(m.memoryLimit).toBeUndefined()
    expect(m.rsyncOverride).toBeUndefined()
  })

  it("keeps tunasync's units for bare numbers and reads cidmirror's units", async () => {
    const c = await loadConfig(
      file(
        'c.toml',
        `[global]\nmirror_dir = "/m"\ninterval = 120\ntimeout = 300\n[[mirrors]]\nname = "a"\nupstream = "rsync://h/a/"\ninterval = "30m"\ntimeout = "1h"\nrsync_timeout = 30\n[[mirrors]]\nname = "b"\nupstream = "rsync://h/b/"\ninterval = "2y"\nrsync_no_timeout = true\nmemory_limit = "256M"\n[[mirrors]]\nname = "c"\nupstream = "rsync://h/c/"\ninterval = 0\nretry = 0\n`,
      ),
    )
    expect(c.global.intervalMs).toBe(120 * 60_000)
    expect(c.global.timeoutMs).toBe(300_000)
    const [a, b, z] = c.mirrors
    expect(a).toMatchObject({ intervalMs: 30 * 60_000, timeoutMs: 3_600_000, rsyncTimeoutMs: 30_000 })
    expect(b).toMatchObject({
      intervalMs: 2 * 365 * 86_400_000,
      rsyncTimeoutMs: 0,
      memoryLimit: 256 * 1024 ** 2,
    })
    // tunasync: 0 means "the global value"
    expect(z).toMatchObject({ intervalMs: 120 * 60_000, retry: 2, timeoutMs: 300_000 })
  })

  it('merges exec_on_* with their _extra forms', async () => {
    const c = await loadConfig(
      file(
        'c.toml',
        `[global]\nmirror_dir = "/m"\nexec_on_success = ["g1", "g2"]\nexec_on_failure = ["gf"]\n` +
          `[[mirrors]]\nname = "inherits"\nupstream = "rsync://h/a/"\n` +
          `[[mirrors]]\nname = "replaces"\nupstream = "rsync://h/a/"\nexec_on_success = ["m"]\n` +
          `[[mirrors]]\nname = "adds"\nupstream = "rsync://h/a/"\nexec_on_success_extra = ["x"]\nexec_on_failure_extra = ["xf"]\n` +
          `[[mirrors]]\nname = "both"\nupstream = "rsync://h/a/"\nexec_on_success = ["m"]\nexec_on_success_extra = ["x"]\n`,
      ),
    )
    const by = Object.fromEntries(c.mirrors.map((m) => [m.name, [m.execOnSuccess, m.execOnFailure]]))
    expect(by).toEqual({
      inherits: [['g1', 'g2'], ['gf']],
      replaces: [['m'], ['gf']],
      adds: [
        ['g1', 'g2', 'x'],
        ['gf', 'xf'],
      ],
      both: [['m', 'x'], ['gf']],
    })
  })

  it('reads manager api_base_list and its listen address from api_base', async () => {
    const c = await loadConfig(
      file(
        'c.toml',
        `[manager]\napi_base = "http://ignored:1/"\napi_base_list = ["http://[::1]:14243", "http://b:2"]\ntoken = "t"\n`,
      ),
    )
    expect(c.manager).toMatchObject({
      apiBase: 'http://[::1]:14243',
      apiBaseList: ['http://[::1]:14243', 'http://b:2'],
      listenAddr: '::1',
      listenPort: 14243,
      // Named when the manager cannot listen there: the key that set the address and the port.
      listenSource: {
        addr: { file: c.file, key: 'manager.api_base_list[0]' },
        port: { file: c.file, key: 'manager.api_base_list[0]' },
      },
      token: 't',
    })
    expect(c.mirrors).toEqual([])
    expect(c.global.mirrorDir).toBe('')
  })
})

describe('config: nested mirrors', () => {
  it("inherit every key of their parent, tunasync's way; only leaves are mirrors", async () => {
    const c = await loadConfig(
      file(
        'c.toml',
        `${MIN}
[[mirrors]]
name = "family"
provider = "two-stage-rsync"
interval = "1h"
env = { A = "parent", B = "parent" }
rsync_options = ["--parent"]
memory_limit = "1G"

  [[mirrors.mirrors]]
  name = "debian"
  upstream = "rsync://h/debian/"

  [[mirrors.mirrors]]
  mirror_subdir = "extra"
  env = { B = "child", C = "child" }

    [[mirrors.mirrors.mirrors]]
    name = "security"
    upstream = "rsync://h/security/"
    interval = 30

    [[mirrors.mirrors.mirrors]]
    name = "cd"
    provider = "rsync"
    upstream = "rsync://h/cd/"
    rsync_options = ["--child"]

[[mirrors]]
name = "solo"
provider = "command"
command = "true"
`,
      ),
    )
    expect(c.mirrors.map((m) => m.name)).toEqual(['debian', 'security', 'cd', 'solo'])
    const [debian, security, cd, solo] = c.mirrors
    expect(debian).toMatchObject({
      provider: 'two-stage-rsync',
      intervalMs: 3_600_000,
      env: { A: 'parent', B: 'parent' },
      rsyncOptions: ['--parent'],
      memoryLimit: 1024 ** 3,
      mirrorDir: '/srv/m/debian',
      source: { key: 'mirrors[0].mirrors[0]' },
    })
    expect(security).toMatchObject({
      provider: 'two-stage-rsync',
      intervalMs: 30 * 60_000,
      env: { A: 'parent', B: 'child', C: 'child' },
      mirrorDir: '/srv/m/extra/security',
      source: { key: 'mirrors[0].mirrors[1].mirrors[0]' },
    })
    expect(cd).toMatchObject({
      provider: 'rsync',
      rsyncOptions: ['--child'],
      mirrorDir: '/srv/m/extra/cd',
      intervalMs: 3_600_000,
    })
    expect(solo?.provider).toBe('command')
  })

  it('name their position in errors', async () => {
    const f = file(
      'c.toml',
      `${MIN}[[mirrors]]\nname = "p"\n[[mirrors.mirrors]]\nname = "a"\nupstream = "rsync://h/a/"\n[[mirrors.mirrors]]\nname = "b"\ninterval = "5x"\n`,
    )
    const err = await failure(f)
    expect(err.code).toBe('CIDMIRROR_ERR_CONFIG_BAD_VALUE')
    expect(err.message).toMatch(`config ${f}: mirrors[0].mirrors[1].interval: "5x" is not a duration`)
  })
})

describe('config: include', () => {
  it('reads further files relative to the including file, globs sorted, depth first', async () => {
    const main = file(
      'etc/main.toml',
      `include = ["conf.d/*.toml", "secrets.toml"]\n[global]\nmirror_dir = "/m"\n[[mirrors]]\nname = "main"\nupstream = "rsync://h/main/"\n`,
    )
    const b = file(
      'etc/conf.d/b.toml',
      `[[mirrors]]\nname = "b"\nupstream = "rsync://h/b/"\nexclude_file = "b.exclude"\n`,
    )
    const a = file(
      'etc/conf.d/a.toml',
      `include = "../more/c.toml"\n[[mirrors]]\nname = "a"\nupstream = "rsync://h/a/"\n`,
    )
    const cfile = file('etc/more/c.toml', `[[mirrors]]\nname = "c"\nupstream = "rsync://h/c/"\n`)
    file('etc/conf.d/ignored.conf', 'not = toml = at all')
    const s = file('etc/secrets.toml', `[manager]\ntoken = "from-secrets"\n`)
    const c = await loadConfig(main)
    expect(c.files).toEqual([main, a, cfile, b, s])
    expect(c.mirrors.map((m) => m.name)).toEqual(['main', 'a', 'c', 'b'])
    expect(c.mirrors[3]?.excludeFile).toBe(join(tmp, 'etc/conf.d/b.exclude'))
    expect(c.mirrors[3]?.source).toEqual({ file: b, key: 'mirrors[0]' })
    expect(c.manager.token).toBe('from-secrets')
  })

  it("reads tunasync's [include] include_mirrors; a glob matching nothing is fine", async () => {
    file('mirrors/x.conf', `[[mirrors]]\nname = "x"\nupstream = "rsync://h/x/"\n`)
    const c = await loadConfig(file('w.conf', `[include]\ninclude_mirrors = "mirrors/*.conf"\n${MIN}`))
    expect(c.mirrors.map((m) => m.name)).toEqual(['x'])
    const none = await loadConfig(file('n.conf', `include = "empty.d/*.toml"\n${MIN}`))
    expect(none.mirrors).toEqual([])
  })

  it('refuses cycles, missing files and a key set in two files', async () => {
    const a = file('a.toml', `include = "b.toml"\n`)
    const b = file('b.toml', `include = "a.toml"\n`)
    let err = await failure(a)
    expect(err.code).toBe('CIDMIRROR_ERR_CONFIG_INCLUDE')
    expect(err.message).toBe(`config ${b}: include: include cycle: ${a} -> ${b} -> ${a}`)

    const self = file('self.toml', `include = ["self.toml"]\n`)
    expect((await failure(self)).code).toBe('CIDMIRROR_ERR_CONFIG_INCLUDE')

    const missing = file('m.toml', `include = "nope.toml"\n`)
    err = await failure(missing)
    expect(err.code).toBe('CIDMIRROR_ERR_CONFIG_READ')
    expect(err.message).toBe(
      `config ${missing}: include: cannot read ${join(tmp, 'nope.toml')}: no such file`,
    )

    const x = file('x.toml', `include = "y.toml"\n[global]\ninterval = 5\n`)
    const y = file('y.toml', `[global]\ninterval = 6\n`)
    err = await failure(x)
    expect(err.code).toBe('CIDMIRROR_ERR_CONFIG_DUPLICATE')
    expect(err.message).toBe(`config ${y}: global.interval: already set in ${x}`)

    const d1 = file(
      'd1.toml',
      `include = "d2.toml"\n${MIN}[[mirrors]]\nname = "same"\nupstream = "rsync://h/a/"\n`,
    )
    const d2 = file('d2.toml', `[[mirrors]]\nname = "same"\nupstream = "rsync://h/b/"\n`)
    err = await failure(d1)
    expect(err.code).toBe('CIDMIRROR_ERR_CONFIG_DUPLICATE')
    expect(err.message).toBe(
      `config ${d2}: mirrors[0].name: mirror "same" is already defined at ${d1}: mirrors[0]`,
    )
  })
})

describe('config: errors name the file and the key', () => {
  const cases: [string, string, string, string][] = [
    // [name, toml, code, message after "config FILE: "]
    ['unknown top-level key', 'bogus = 1', 'UNKNOWN_KEY', 'bogus: unknown key'],
    [
      'unknown global key, with a suggestion',
      '[global]\nintervl = 5',
      'UNKNOWN_KEY',
      'global.intervl: unknown key (did you mean interval?)',
    ],
    [
      'unknown mirror key',
      `${MIN}[[mirrors]]\nname = "a"\nupstream = "rsync://h/a/"\n[[mirrors]]\nname = "b"\nupstrem = "x"`,
      'UNKNOWN_KEY',
      'mirrors[1].upstrem: unknown key (did you mean upstream?)',
    ],
    [
      'a bad duration',
      `${MIN}[[mirrors]]\nname = "a"\nupstream = "rsync://h/a/"\n[[mirrors]]\nname = "b"\nupstream = "rsync://h/a/"\n[[mirrors]]\nname = "c"\ninterval = "5x"`,
      'BAD_VALUE',
      'mirrors[2].interval: "5x" is not a duration (use e.g. "30m", "6h", "1d", or a number of minutes)',
    ],
    [
      'a bad size',
      `${MIN}[[mirrors]]\nname = "a"\nmemory_limit = "lots"`,
      'BAD_VALUE',
      'mirrors[0].memory_limit: "lots" is not a size (use e.g. "512M", "4GiB")',
    ],
    [
      'concurrent = 0',
      '[global]\nconcurrent = 0',
      'BAD_VALUE',
      'global.concurrent: 0 is out of range: must be between 1 and 1024 (tunasync deadlocks on 0; leave the key out for the default, 4)',
    ],
    [
      'a retry backoff cap below its start',
      '[global]\nretry_backoff = "10m"\nretry_backoff_max = "1m"',
      'BAD_VALUE',
      'global.retry_backoff_max: must not be shorter than retry_backoff',
    ],
    [
      'a string for a number',
      '[server]\nlisten_port = "6000"',
      'BAD_VALUE',
      'server.listen_port: "6000" is not an integer',
    ],
    [
      'a port out of range',
      '[server]\nlisten_port = 70000',
      'BAD_VALUE',
      'server.listen_port: 70000 is out of range: must be between 0 and 65535',
    ],
    [
      'a bad provider',
      `${MIN}[[mirrors]]\nname = "a"\nprovider = "ftp"`,
      'BAD_VALUE',
      'mirrors[0].provider: "ftp" is not one of "rsync", "two-stage-rsync", "command"',
    ],
    [
      'a bad stage1_profile',
      `${MIN}[[mirrors]]\nname = "a"\nstage1_profile = "ubuntu"`,
      'BAD_VALUE',
      'mirrors[0].stage1_profile: "ubuntu" is not one of "debian", "debian-oldstyle"',
    ],
    [
      'a string for a list',
      `[global]\nrsync_options = "--no-motd"`,
      'BAD_VALUE',
      'global.rsync_options: "--no-motd" is not an array of strings',
    ],
    [
      'a bad list item',
      `[global]\nexec_on_success = ["a", 3]`,
      'BAD_VALUE',
      'global.exec_on_success[1]: 3 is not a string',
    ],
    [
      'an exec command with an unterminated quote (checked at load, not when the sync ends)',
      `[global]\nexec_on_success = ["echo 'unterminated"]`,
      'BAD_VALUE',
      `global.exec_on_success[0]: "echo 'unterminated": unterminated ' quote`,
    ],
    [
      "a mirror's empty exec command",
      `${MIN}[[mirrors]]\nname = "a"\nupstream = "rsync://h/a/"\nexec_on_failure_extra = ["  "]`,
      'BAD_VALUE',
      'mirrors[0].exec_on_failure_extra[0]: is an empty command',
    ],
    [
      'a bad exit code',
      `[global]\nsuccess_exit_codes = [24, 300]`,
      'BAD_VALUE',
      'global.success_exit_codes[1]: 300 is out of range: must be between 0 and 255',
    ],
    [
      'a non-string env value',
      `${MIN}[[mirrors]]\nname = "a"\nenv = { N = 1 }`,
      'BAD_VALUE',
      'mirrors[0].env.N: 1 is not a string',
    ],
    [
      'a bad regex',
      `${MIN}[[mirrors]]\nname = "a"\nprovider = "command"\ncommand = "x"\nfail_on_match = "(unclosed"`,
      'BAD_VALUE',
      'mirrors[0].fail_on_match: "(unclosed" is not a valid regular expression: Invalid regular expression: /(unclosed/: Unterminated group',
    ],
    [
      'an unknown log_dir field',
      `[global]\nlog_dir = "/l/{{.Nmae}}"`,
      'BAD_VALUE',
      'global.log_dir: unknown template field {{.Nmae}} (known: Name, Provider, Upstream, MirrorDir, MirrorSubDir, Role, Interval, Retry, Timeout, Command, ExcludeFile, Username, Stage1Profile, RsyncTimeout)',
    ],
    ['a section that is not a table', 'global = 5', 'BAD_VALUE', 'global: 5 is not a table'],
    [
      'a missing name',
      `${MIN}[[mirrors]]\nupstream = "rsync://h/a/"`,
      'MISSING_KEY',
      'mirrors[0].name: missing',
    ],
    ['a missing upstream', `${MIN}[[mirrors]]\nname = "a"`, 'MISSING_KEY', 'mirrors[0].upstream: missing'],
    [
      'a missing command',
      `${MIN}[[mirrors]]\nname = "a"\nprovider = "command"`,
      'MISSING_KEY',
      'mirrors[0].command: missing (command provider)',
    ],
    [
      'an upstream without a slash',
      `${MIN}[[mirrors]]\nname = "a"\nupstream = "rsync://h/a"`,
      'BAD_VALUE',
      'mirrors[0].upstream: "rsync://h/a": an rsync upstream ends with "/"',
    ],
    [
      'a name with a slash',
      `${MIN}[[mirrors]]\nname = "a/b"\nupstream = "rsync://h/a/"`,
      'BAD_VALUE',
      'mirrors[0].name: "a/b" is not a valid name: it contains "/"',
    ],
    [
      'a name that is a folder of its own',
      `${MIN}[[mirrors]]\nname = ".."\nupstream = "rsync://h/a/"`,
      'BAD_VALUE',
      'mirrors[0].name: ".." is not a valid name: it cannot be a folder name',
    ],
    [
      'a worker name with control characters',
      `[global]\nname = "a\\r\\nb"`,
      'BAD_VALUE',
      'global.name: "a\\r\\nb" is not a valid name: it contains a control character',
    ],
    [
      'a name too long for a URL or a folder',
      `${MIN}[[mirrors]]\nname = "${'x'.repeat(200)}"\nupstream = "rsync://h/a/"`,
      'BAD_VALUE',
      `mirrors[0].name: "${'x'.repeat(40)}..." is not a valid name: it has 200 bytes, at most 100 are allowed`,
    ],
    [
      'an escaping mirror_subdir',
      `${MIN}[[mirrors]]\nname = "a"\nupstream = "rsync://h/a/"\nmirror_subdir = "../x"`,
      'BAD_VALUE',
      'mirrors[0].mirror_subdir: "../x" must be a relative folder inside global.mirror_dir, without ".."',
    ],
    [
      'no mirror_dir anywhere',
      `[[mirrors]]\nname = "a"\nupstream = "rsync://h/a/"`,
      'MISSING_KEY',
      'global.mirror_dir: missing (needed by mirrors[0] "a", which sets no mirror_dir)',
    ],
    [
      'override_only without override',
      `${MIN}[[mirrors]]\nname = "a"\nupstream = "rsync://h/a/"\nrsync_override_only = true`,
      'BAD_VALUE',
      'mirrors[0].rsync_override_only: is set but rsync_override is not',
    ],
    [
      'token and token_file',
      `[manager]\ntoken = "a"\ntoken_file = "t"`,
      'BAD_VALUE',
      'manager.token_file: set token or token_file, not both',
    ],
    [
      'a bad api_base',
      `[manager]\napi_base = "localhost:1"`,
      'BAD_VALUE',
      'manager.api_base: "localhost:1" is not an http(s) URL',
    ],
    [
      'a cert without a key',
      `[server]\nssl_cert = "/c"`,
      'BAD_VALUE',
      'server.ssl_key: ssl_cert and ssl_key go together',
    ],
    [
      'cgroups enabled',
      '[cgroup]\nenable = true',
      'UNSUPPORTED',
      'cgroup.enable: cidmirror does not use cgroups (memory_limit is applied as an address-space limit instead): set enable = false or remove [cgroup]',
    ],
    [
      'docker enabled',
      '[docker]\nenable = true',
      'UNSUPPORTED',
      'docker.enable: cidmirror does not run jobs in docker containers; commands run on the host: set enable = false or remove [docker]',
    ],
    [
      'docker_image',
      `${MIN}[[mirrors]]\nname = "a"\ndocker_image = "x"`,
      'UNSUPPORTED',
      'mirrors[0].docker_image: cidmirror does not run jobs in containers: remove docker_image, docker_volumes and docker_options and make the command runnable on the host',
    ],
    [
      'zfs enabled',
      '[zfs]\nenable = true',
      'UNSUPPORTED',
      'zfs.enable: cidmirror does not make ZFS datasets per mirror: set enable = false or remove [zfs]',
    ],
  ]
  for (const [name, toml, code, message] of cases) {
    it(name, async () => {
      const f = file('bad.toml', toml)
      const err = await failure(f)
      expect(err.message).toBe(`config ${f}: ${message}`)
      expect(err.code).toBe(`CIDMIRROR_ERR_CONFIG_${code}`)
      expect(err.file).toBe(f)
    })
  }

  it('reports TOML syntax errors with line and column', async () => {
    const f = file('syntax.toml', '[global]\nname = "a"\nname2 = \n')
    const err = await failure(f)
    expect(err.code).toBe('CIDMIRROR_ERR_CONFIG_SYNTAX')
    expect(err.message).toMatch(new RegExp(`^config ${f}: not valid TOML: line 3, column \\d+: `))
  })

  it('reports a missing file', async () => {
    const f = join(tmp, 'none.toml')
    const err = await failure(f)
    expect(err.code).toBe('CIDMIRROR_ERR_CONFIG_READ')
    expect(err.message).toBe(`config ${f}: cannot read: no such file`)
  })

  it('accepts disabled tunasync features', async () => {
    const c = await loadConfig(
      file(
        'ok.toml',
        '[cgroup]\nenable = false\nbase_path = "/sys/fs/cgroup"\ngroup = "tunasync"\n[docker]\nenable = false\nvolumes = []\noptions = []\n[zfs]\nenable = false\nzpool = "p"\n[btrfs_snapshot]\nenable = false\nsnapshot_path = "/s"\n',
      ),
    )
    expect(c.mirrors).toEqual([])
  })
})

describe('config: a tunasync worker config', () => {
  const examples = resolve(import.meta.dirname, '..', 'examples')

  it('as tunasync runs it is refused with what to change', async () => {
    const err = await failure(join(examples, 'tunasync-migration', 'tunasync-worker.conf'))
    expect(err.code).toBe('CIDMIRROR_ERR_CONFIG_UNSUPPORTED')
    expect(err.message).toMatch(/docker\.enable: .*set enable = false or remove \[docker\]/)
  })

  it('loads after the mechanical changes, with the meaning tunasync gives it', async () => {
    const f = join(examples, 'tunasync-migration', 'worker.toml')
    const c = await loadConfig(f)
    expect(c.files).toEqual([f, join(examples, 'tunasync-migration', 'mirrors.d', 'debian.conf')])
    expect(c.global).toMatchObject({
      name: 'mirror_worker',
      mirrorDir: '/srv/tunasync',
      concurrent: 10,
      intervalMs: 120 * 60_000,
      retry: 3,
      timeoutMs: 7200_000,
      execOnSuccess: ['/home/scripts/notify.sh success'],
    })
    expect(c.manager).toMatchObject({
      apiBase: 'http://localhost:12345',
      token: 'some_token',
      caCert: undefined,
    })
    expect(c.server).toMatchObject({
      hostname: 'localhost',
      listenAddr: '127.0.0.1',
      listenPort: 6000,
      sslCert: undefined,
    })
    const by = Object.fromEntries(c.mirrors.map((m) => [m.name, m]))
    expect(Object.keys(by)).toEqual([
      'adobe-fonts',
      'alpine',
      'apache',
      'pypi',
      'debian',
      'debian-security',
      'debian-cd',
    ])
    expect(by['adobe-fonts']).toMatchObject({
      provider: 'command',
      intervalMs: 1440 * 60_000,
      mirrorDir: '/srv/tunasync/adobe-fonts',
      logDir: '/srv/tunasync/log/tunasync/adobe-fonts',
      execOnSuccess: ['/home/scripts/notify.sh success'],
      successExitCodes: [],
    })
    expect(String(by['adobe-fonts']?.sizePattern)).toBe('/Total size is ([0-9\\.]+[KMGTP]?)/')
    expect(by.alpine).toMatchObject({
      provider: 'rsync',
      memoryLimit: 256 * 1024 ** 2,
      successExitCodes: [24],
    })
    expect(by.apache).toMatchObject({ useIPv4: true, rsyncOptions: ['--delete-excluded'] })
    expect(by.pypi).toMatchObject({
      intervalMs: 5 * 60_000,
      env: { BANDERSNATCH_CONF: '/etc/bandersnatch.conf' },
      execOnFailure: ['/home/scripts/alert.sh pypi'],
    })
    expect(by.pypi?.failOnMatch?.test('x\nERROR: y')).toBe(true)
    expect(by.debian).toMatchObject({
      provider: 'two-stage-rsync',
      useIPv6: true,
      mirrorDir: '/srv/tunasync/debian',
      memoryLimit: 512 * 1024 ** 2,
    })
    expect(by['debian-security']).toMatchObject({
      provider: 'two-stage-rsync',
      mirrorDir: '/srv/tunasync/debian-extra/debian-security',
    })
    expect(by['debian-cd']).toMatchObject({
      provider: 'rsync',
      isMaster: false,
      excludeFile: '/etc/tunasync.d/debian-cd-exclude.txt',
    })
  })

  it("loads cidmirror's own example", async () => {
    const c = await loadConfig(join(examples, 'cidmirror.toml'))
    expect(c.mirrors.map((m) => m.name)).toEqual(['debian', 'ubuntu', 'ubuntu-releases', 'crates', 'gnu'])
    expect(c.database.path).toBe('/var/lib/cidmirror/db')
  })
})
