import { mkdirSync, mkdtempSync, realpathSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import { homedir, tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { loadConfig } from '../src/sync/config/index.ts'
import { ConfigError } from '../src/sync/errors.ts'

let T: string
beforeEach(() => {
  T = realpathSync(mkdtempSync(join(tmpdir(), 'cidmirror-paths-')))
})
afterEach(() => {
  rmSync(T, { recursive: true, force: true })
})

const mirror = (name: string, extra = '') =>
  `[[mirrors]]\nname = "${name}"\nprovider = "command"\ncommand = "true"\n${extra}\n`

/** A config whose logs and database are out of the way unless the case says otherwise. */
function config(body: string, opts: { global?: string; database?: string } = {}): string {
  const f = join(T, 'etc', 'cidmirror.toml')
  mkdirSync(join(T, 'etc'), { recursive: true })
  writeFileSync(
    f,
    `[global]\n${opts.global ?? `mirror_dir = "${T}/m"\nlog_dir = "${T}/log/{{.Name}}"`}\n[database]\npath = "${opts.database ?? `${T}/db`}"\n${body}`,
  )
  return f
}

async function refused(f: string, key: string, problem: RegExp, code = 'CIDMIRROR_ERR_CONFIG_UNSAFE_PATH') {
  const err = await loadConfig(f).then(
    () => undefined,
    (e: unknown) => e,
  )
  expect(err, `${key} ${problem}`).toBeInstanceOf(ConfigError)
  const e = err as ConfigError
  expect(e.code).toBe(code)
  expect(e.file).toBe(f)
  expect(e.key).toBe(key)
  expect(e.message.startsWith(`config ${f}: ${key}: `), e.message).toBe(true)
  expect(e.message).toMatch(problem)
  expect(e.message).not.toContain('\n')
}

describe('harmful paths are refused at load, naming the key and the file', () => {
  it('a mirror folder that is, or holds, a system folder or the home folder', async () => {
    const home = realpathSync(homedir())
    const cases: [string, RegExp][] = [
      [
        '/',
        /^config .*: \/ is a folder of the system, not of one mirror: a sync deletes what its upstream lacks \(rsync --delete\), so each mirror needs a folder of its own$/,
      ],
      ['/etc', /\/etc is a folder of the system/],
      ['/usr', /\/usr is a folder of the system/],
      ['/usr/local', /\/usr\/local is a folder of the system/],
      ['/var/lib', /\/var\/lib is a folder of the system/],
      ['/srv', /\/srv is a folder of the system/],
      ['/home', /\/home is a folder of the system/],
      ['~', new RegExp(`${home} is the home folder`)],
      ['/usr/../etc/.', /\/etc is a folder of the system/],
    ]
    for (const [dir, why] of cases) {
      await refused(config(mirror('a', `mirror_dir = "${dir}"`)), 'mirrors[0].mirror_dir', why)
    }
  })

  it('a symlink to / is /', async () => {
    symlinkSync('/', join(T, 'root-link'))
    await refused(
      config(mirror('a', `mirror_dir = "${T}/root-link"`)),
      'mirrors[0].mirror_dir',
      /: \/ is a folder of the system/,
    )
    symlinkSync('/usr', join(T, 'usr-link'))
    await refused(
      config(mirror('a', `mirror_dir = "${T}/usr-link/../usr-link"`)),
      'mirrors[0].mirror_dir',
      /: \/usr is a folder of the system/,
    )
  })

  it('global.mirror_dir that is / or holds a system folder (a shared root such as /srv is fine)', async () => {
    await refused(
      config(mirror('a'), { global: 'mirror_dir = "/"' }),
      'global.mirror_dir',
      /\/ is a folder of the system: give the mirrors a folder of their own/,
    )
    await refused(
      config(mirror('a'), { global: 'mirror_dir = "/var"' }),
      'global.mirror_dir',
      /\/var is a folder of the system/,
    )
    await refused(
      config(mirror('a'), { global: 'mirror_dir = "~"' }),
      'global.mirror_dir',
      /is the home folder/,
    )
    const c = await loadConfig(
      config(mirror('a'), { global: `mirror_dir = "/srv"\nlog_dir = "${T}/log/{{.Name}}"` }),
    )
    expect(c.mirrors[0]!.mirrorDir).toBe('/srv/a')
  })

  it('two mirrors in one folder, or one inside the other (either order, set or derived)', async () => {
    await refused(
      config(mirror('a', `mirror_dir = "${T}/x"`) + mirror('b', `mirror_dir = "${T}/x/"`)),
      'mirrors[1].mirror_dir',
      new RegExp(
        `${T}/x is also the folder of mirror "a" \\(${T}/etc/cidmirror.toml: mirrors\\[0\\].mirror_dir\\)`,
      ),
    )
    await refused(
      config(mirror('a', `mirror_dir = "${T}/x"`) + mirror('b', `mirror_dir = "${T}/x/inner"`)),
      'mirrors[1].mirror_dir',
      new RegExp(`${T}/x/inner is inside the folder of mirror "a"`),
    )
    await refused(
      config(mirror('a', `mirror_dir = "${T}/x/inner"`) + mirror('b', `mirror_dir = "${T}/x"`)),
      'mirrors[1].mirror_dir',
      new RegExp(`${T}/x holds the folder ${T}/x/inner of mirror "a"`),
    )
    // a lives in global.mirror_dir/a; b sets a folder inside it.
    await refused(
      config(mirror('a') + mirror('b', `mirror_dir = "${T}/m/a/sub"`)),
      'mirrors[1].mirror_dir',
      new RegExp(`inside the folder of mirror "a" \\(${T}/etc/cidmirror.toml: mirrors\\[0\\]\\)`),
    )
    // b's derived folder is where a set its own.
    await refused(
      config(mirror('a', `mirror_dir = "${T}/m/b"`) + mirror('b')),
      'mirrors[1]',
      /is also the folder of mirror "a"/,
    )
    // Siblings whose names share a prefix do not overlap.
    const c = await loadConfig(
      config(mirror('a', `mirror_dir = "${T}/x"`) + mirror('b', `mirror_dir = "${T}/x-b"`)),
    )
    expect(c.mirrors.map((m) => m.mirrorDir)).toEqual([`${T}/x`, `${T}/x-b`])
  })

  it('two mirrors overlapping across included files name the file of the later one', async () => {
    mkdirSync(join(T, 'etc', 'conf.d'), { recursive: true })
    const inc = join(T, 'etc', 'conf.d', 'more.toml')
    writeFileSync(inc, mirror('b', `mirror_dir = "${T}/x/y"`))
    const f = join(T, 'etc', 'cidmirror.toml')
    writeFileSync(
      f,
      `include = "conf.d/*.toml"\n[global]\nlog_dir = "${T}/log/{{.Name}}"\n[database]\npath = "${T}/db"\n${mirror('a', `mirror_dir = "${T}/x"`)}`,
    )
    const err = (await loadConfig(f).catch((e: unknown) => e)) as ConfigError
    expect(err.code).toBe('CIDMIRROR_ERR_CONFIG_UNSAFE_PATH')
    expect(err.file).toBe(inc)
    expect(err.message).toMatch(
      new RegExp(
        `^config ${inc}: mirrors\\[0\\].mirror_dir: ${T}/x/y is inside the folder of mirror "a" \\(${f}: mirrors\\[0\\].mirror_dir\\)`,
      ),
    )
  })

  it('a mirror folder holding the database, or inside it', async () => {
    await refused(
      config(mirror('a'), { database: `${T}/m/a/state/db` }),
      'mirrors[0]',
      new RegExp(
        `${T}/m/a holds the database ${T}/m/a/state/db \\(${T}/etc/cidmirror.toml: database.path\\): a sync deletes`,
      ),
    )
    await refused(
      config(mirror('a', `mirror_dir = "${T}/db/a"`)),
      'mirrors[0].mirror_dir',
      new RegExp(`${T}/db/a is inside the database ${T}/db`),
    )
  })

  it("a mirror folder holding a log folder, its own or another mirror's, or inside one", async () => {
    await refused(
      config(mirror('a', `log_dir = "${T}/m/a/.logs"`)),
      'mirrors[0]',
      new RegExp(`${T}/m/a holds its own log folder ${T}/m/a/.logs \\(.*: mirrors\\[0\\].log_dir\\)`),
    )
    await refused(
      config(mirror('a') + mirror('b'), {
        global: `mirror_dir = "${T}/m"\nlog_dir = "${T}/m/a/logs/{{.Name}}"`,
      }),
      'mirrors[0]',
      new RegExp(`${T}/m/a holds its own log folder ${T}/m/a/logs/a \\(.*: global.log_dir\\)`),
    )
    await refused(
      config(mirror('a') + mirror('b', `log_dir = "${T}/m/a/b-logs"`)),
      'mirrors[0]',
      new RegExp(`${T}/m/a holds the log folder of mirror "b" ${T}/m/a/b-logs`),
    )
    await refused(
      config(mirror('a', `log_dir = "${T}/logs"`) + mirror('b', `mirror_dir = "${T}/logs/b"`)),
      'mirrors[1].mirror_dir',
      new RegExp(`${T}/logs/b is inside the log folder ${T}/logs of mirror "a"`),
    )
  })

  it('a mirror folder holding the config, an included file, the token file or an exclude_file', async () => {
    await refused(
      config(mirror('a', 'mirror_dir = "."')),
      'mirrors[0].mirror_dir',
      new RegExp(`${T}/etc holds the config file ${T}/etc/cidmirror.toml`),
    )
    await refused(
      config(mirror('a', 'mirror_dir = ".."')),
      'mirrors[0].mirror_dir',
      new RegExp(`: ${T} holds `),
    )
    writeFileSync(join(T, 'token'), 'secret\n')
    await refused(
      config(`[manager]\ntoken_file = "${T}/token"\n${mirror('a', `mirror_dir = "${T}"`)}`, {
        global: `log_dir = "/var/log/cm/{{.Name}}"`,
        database: '/var/lib/cm/db',
      }),
      'mirrors[0].mirror_dir',
      new RegExp(`${T} holds the config file|${T} holds manager.token_file`),
    )
    mkdirSync(join(T, 'tok'))
    writeFileSync(join(T, 'tok', 'token'), 'secret\n')
    await refused(
      config(`[manager]\ntoken_file = "${T}/tok/token"\n${mirror('a', `mirror_dir = "${T}/tok"`)}`),
      'mirrors[0].mirror_dir',
      new RegExp(`${T}/tok holds manager.token_file ${T}/tok/token: a sync deletes what its upstream lacks`),
    )
    await refused(
      config(
        mirror(
          'a',
          `provider = "rsync"\nupstream = "rsync://h/a/"\nexclude_file = "${T}/m/a/exclude.txt"`,
        ).replace('provider = "command"\ncommand = "true"\n', ''),
      ),
      'mirrors[0]',
      new RegExp(`${T}/m/a holds the exclude_file of mirror "a" ${T}/m/a/exclude.txt`),
    )
  })

  it('mirror_subdir with "..", even when it stays inside', async () => {
    await refused(
      config(mirror('a', 'mirror_subdir = "x/../y"')),
      'mirrors[0].mirror_subdir',
      /"x\/\.\.\/y" must be a relative folder inside global.mirror_dir, without "\.\."/,
      'CIDMIRROR_ERR_CONFIG_BAD_VALUE',
    )
  })

  it('log_dir climbing out of its template, or a field that would', async () => {
    await refused(
      config(mirror('a'), { global: `mirror_dir = "${T}/m"\nlog_dir = "{{.Name}}/../../../../x"` }),
      'global.log_dir',
      /"\{\{\.Name\}\}\/\.\.\/\.\.\/\.\.\/\.\.\/x": "\.\." after a template field moves the logs out of the folder it names/,
      'CIDMIRROR_ERR_CONFIG_BAD_VALUE',
    )
    await refused(
      config(
        `[[mirrors]]\nname = "a"\nupstream = "rsync://h/x/../../"\nlog_dir = "${T}/log/{{.Upstream}}"\n`,
      ),
      'mirrors[0].log_dir',
      /\{\{\.Upstream\}\} of mirror "a" is "rsync:\/\/h\/x\/\.\.\/\.\.\/": a "\.\." there would move its logs out of their folder/,
      'CIDMIRROR_ERR_CONFIG_BAD_VALUE',
    )
    // ".." before the first field is a plain relative path (the quick start's "../../data/log/{{.Name}}").
    const c = await loadConfig(
      config(mirror('a'), { global: `mirror_dir = "${T}/m"\nlog_dir = "../log/{{.Name}}"` }),
    )
    expect(c.mirrors[0]!.logDir).toBe(`${T}/log/a`)
  })

  it('a log folder or a database that is a system folder or the home folder', async () => {
    await refused(
      config(mirror('a', 'log_dir = "/etc"')),
      'mirrors[0].log_dir',
      /the log folder of mirror "a": \/etc is a folder of the system/,
    )
    await refused(
      config(mirror('a'), { global: `mirror_dir = "${T}/m"\nlog_dir = "/var/log"` }),
      'global.log_dir',
      /\/var\/log is a folder of the system/,
    )
    await refused(
      config(mirror('a'), { database: '/' }),
      'database.path',
      /\/ is a folder of the system: give the database a folder of its own/,
    )
    await refused(config(mirror('a'), { database: '~' }), 'database.path', /is the home folder/)
    await refused(
      config(mirror('a', `log_dir = "${T}/db/logs"`)),
      'mirrors[0].log_dir',
      new RegExp(`the log folder ${T}/db/logs of mirror "a" overlaps the database ${T}/db`),
    )
  })
})
