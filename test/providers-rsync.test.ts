import {
  chmodSync,
  existsSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readlinkSync,
  rmSync,
  symlinkSync,
  unlinkSync,
  utimesSync,
  writeFileSync,
} from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { loadConfig } from '../src/sync/config/index.ts'
import type { RunContext } from '../src/sync/provider.ts'
import { ProviderError } from '../src/sync/provider.ts'
import { createProvider, RSYNC_DEFAULTS, rsyncArgs } from '../src/sync/providers/index.ts'
import { partialFile, type Rsyncd, startRsyncd } from './helpers/rsyncd.ts'
import { waitFor } from './jobs-helpers.ts'

let tmp: string
let up: Rsyncd | undefined

beforeEach(() => {
  tmp = mkdtempSync(join(tmpdir(), 'cidmirror-rsync-'))
})
afterEach(async () => {
  await up?.stop()
  up = undefined
  rmSync(tmp, { recursive: true, force: true })
})

async function provider(mirrorToml: string, globalToml = '') {
  const file = join(tmp, 'cidmirror.toml')
  writeFileSync(
    file,
    `[global]\nmirror_dir = "mirrors"\nlog_dir = "log/{{.Name}}"\n${globalToml}\n[[mirrors]]\nname = "m"\n${mirrorToml}\n`,
  )
  const config = await loadConfig(file)
  const mirror = config.mirrors[0]!
  return { mirror, provider: createProvider(mirror, config) }
}

let runNo = 0
function ctx(extra: Partial<RunContext> = {}): RunContext {
  runNo++
  return {
    logFile: join(tmp, 'log', 'm', `run${runNo}.log`),
    signal: new AbortController().signal,
    env: {},
    extraArgs: [],
    ...extra,
  }
}

const write = (root: string, rel: string, data: string | Buffer, mtime?: number) => {
  const p = join(root, rel)
  mkdirSync(join(p, '..'), { recursive: true })
  writeFileSync(p, data)
  if (mtime) utimesSync(p, mtime, mtime)
}
const read = (p: string) => readFileSync(p, 'utf8')

describe('rsync provider', () => {
  it("builds tunasync's command line", async () => {
    const { mirror } = await provider(
      `upstream = "rsync://example.org/x/"\nuse_ipv4 = true\nexclude_file = "ex.list"\nrsync_options = ["--bwlimit=100"]\nrsync_timeout = "5m"`,
      'rsync_options = ["--no-motd"]',
    )
    expect(rsyncArgs(mirror, ['--exclude-from=/evicted.list'])).toEqual([
      ...RSYNC_DEFAULTS,
      '--timeout=300',
      '-4',
      '--exclude-from',
      join(tmp, 'ex.list'),
      '--no-motd',
      '--bwlimit=100',
      '--exclude-from=/evicted.list',
      'rsync://example.org/x/',
      join(tmp, 'mirrors', 'm'),
    ])
    expect(RSYNC_DEFAULTS.join(' ')).toBe(
      '-aHvh --no-o --no-g --stats --filter risk .~tmp~/ --exclude .~tmp~/ --delete --delete-after --delay-updates --safe-links',
    )
    const six = await provider(`upstream = "rsync://e/x/"\nuse_ipv6 = true\nrsync_timeout = 30`)
    expect(rsyncArgs(six.mirror, [])).toEqual([
      ...RSYNC_DEFAULTS,
      '--timeout=30',
      '-6',
      'rsync://e/x/',
      six.mirror.mirrorDir,
    ])
    const over = await provider(
      `upstream = "rsync://e/x/"\nrsync_override = ["-a", "--delete"]\nrsync_options = ["-z"]`,
    )
    expect(rsyncArgs(over.mirror, [])).toEqual([
      '-a',
      '--delete',
      '--timeout=120',
      '-z',
      'rsync://e/x/',
      over.mirror.mirrorDir,
    ])
    const only = await provider(
      `upstream = "rsync://e/x/"\nrsync_override = ["-a"]\nrsync_override_only = true\nrsync_options = ["-z"]\nuse_ipv4 = true`,
    )
    expect(rsyncArgs(only.mirror, ['--x'])).toEqual(['-a', '--x', 'rsync://e/x/', only.mirror.mirrorDir])
    const noTimeout = await provider(`upstream = "rsync://e/x/"\nrsync_no_timeout = true`)
    expect(rsyncArgs(noTimeout.mirror, [])).toEqual([
      ...RSYNC_DEFAULTS,
      'rsync://e/x/',
      noTimeout.mirror.mirrorDir,
    ])
  })

  it('syncs a tree from an rsync daemon, then only the changes, and reports the size', async () => {
    up = await startRsyncd()
    const old = Date.now() / 1000 - 3600
    write(up.root, 'README', 'hello\n', old)
    write(up.root, 'pool/a.bin', Buffer.alloc(300_000, 1), old)
    write(up.root, 'pool/b.txt', 'b1\n', old)
    write(up.root, 'pool/gone.txt', 'bye\n', old)
    write(up.root, '.~tmp~/partial', 'upstream temp\n', old)
    symlinkSync('pool/b.txt', join(up.root, 'latest'))
    symlinkSync('/etc/passwd', join(up.root, 'unsafe'))
    const { provider: p, mirror } = await provider(`upstream = "${up.url}"`)
    const dest = mirror.mirrorDir
    expect(dest).toBe(join(tmp, 'mirrors', 'm'))

    const c1 = ctx()
    const r1 = await p.run(c1)
    expect(read(join(dest, 'README'))).toBe('hello\n')
    expect(readFileSync(join(dest, 'pool/a.bin')).length).toBe(300_000)
    expect(readlinkSync(join(dest, 'latest'))).toBe('pool/b.txt')
    expect(existsSync(join(dest, 'unsafe'))).toBe(false) // --safe-links
    expect(existsSync(join(dest, '.~tmp~'))).toBe(false) // never transferred
    const log1 = read(c1.logFile)
    expect(log1).toMatch(/^cidmirror: rsync: rsync -aHvh --no-o --no-g --stats --filter 'risk \.~tmp~\/' /m)
    expect(log1).toMatch(/^Total file size: 300\.03K bytes$/m)
    expect(r1.size).toBe('300.03K')

    // upstream changes: new, changed, deleted files, a moved symlink; a stale temp folder on our side
    write(up.root, 'pool/c.txt', 'new\n')
    write(up.root, 'pool/b.txt', 'b2 changed\n')
    unlinkSync(join(up.root, 'pool/gone.txt'))
    unlinkSync(join(up.root, 'latest'))
    symlinkSync('pool/c.txt', join(up.root, 'latest'))
    write(dest, '.~tmp~/stale', 'left by a killed run\n')
    write(dest, 'pool/.~tmp~/stale2', 'left by a killed run\n')

    const c2 = ctx()
    const r2 = await p.run(c2)
    expect(read(join(dest, 'pool/c.txt'))).toBe('new\n')
    expect(read(join(dest, 'pool/b.txt'))).toBe('b2 changed\n')
    expect(existsSync(join(dest, 'pool/gone.txt'))).toBe(false)
    expect(readlinkSync(join(dest, 'latest'))).toBe('pool/c.txt')
    expect(existsSync(join(dest, '.~tmp~'))).toBe(false) // "risk .~tmp~/": stale temp folders go
    expect(existsSync(join(dest, 'pool/.~tmp~'))).toBe(false)
    const log2 = read(c2.logFile)
    expect(log2).not.toMatch(/^pool\/a\.bin$/m) // unchanged: not sent again
    expect(log2).toMatch(/^deleting pool\/gone\.txt$/m)
    expect(r2.size).toMatch(/^[\d.]+[KMGT]?$/)
  })

  it('hands hook arguments and exclude_file to rsync (excluded files are not fetched)', async () => {
    up = await startRsyncd()
    write(up.root, 'keep.txt', 'k')
    write(up.root, 'evicted.iso', 'e')
    write(up.root, 'secret.txt', 's')
    writeFileSync(join(tmp, 'exclude.list'), 'secret.txt\n')
    writeFileSync(join(tmp, 'evicted.list'), '/evicted.iso\n')
    const { provider: p, mirror } = await provider(
      `upstream = "${up.url}"\nexclude_file = "exclude.list"\nmemory_limit = "256M"`,
    )
    await p.run(ctx({ extraArgs: [`--exclude-from=${join(tmp, 'evicted.list')}`] }))
    expect(existsSync(join(mirror.mirrorDir, 'keep.txt'))).toBe(true)
    expect(existsSync(join(mirror.mirrorDir, 'evicted.iso'))).toBe(false)
    expect(existsSync(join(mirror.mirrorDir, 'secret.txt'))).toBe(false)
  })

  it('authenticates with username and password (USER, RSYNC_PASSWORD)', async () => {
    up = await startRsyncd({ auth: { user: 'mirror', password: 's3cret' } })
    write(up.root, 'f', 'x')
    const ok = await provider(`upstream = "${up.url}"\nusername = "mirror"\npassword = "s3cret"`)
    await ok.provider.run(ctx())
    expect(read(join(ok.mirror.mirrorDir, 'f'))).toBe('x')

    const bad = await provider(`upstream = "${up.url}"\nusername = "mirror"\npassword = "wrong"`)
    const c = ctx()
    const err = await bad.provider.run(c).catch((e: unknown) => e)
    expect(err).toBeInstanceOf(ProviderError)
    expect((err as ProviderError).code).toBe('CIDMIRROR_ERR_SYNC_EXIT')
    expect((err as ProviderError).exitCode).toBe(5)
    expect((err as ProviderError).message).toBe(
      `rsync exited 5: error starting client-server protocol (@ERROR: auth failed on module mirror)`,
    )
    expect(read(c.logFile)).toMatch(/^cidmirror: rsync exited 5: /m) // the reason is in the log too
  })

  it("names rsync's reason for an unknown module", async () => {
    up = await startRsyncd()
    const { provider: p } = await provider(`upstream = "rsync://127.0.0.1:${up.port}/nope/"`)
    await expect(p.run(ctx())).rejects.toThrow(
      "rsync exited 5: error starting client-server protocol (@ERROR: Unknown module 'nope')",
    )
  })

  it('counts success_exit_codes as success (a vanished-files 24 from the rsync binary)', async () => {
    const fake = join(tmp, 'fake-rsync')
    writeFileSync(
      fake,
      '#!/bin/sh\necho "file has vanished: x"\necho "Total file size: 1.50G bytes"\nexit 24\n',
    )
    chmodSync(fake, 0o755)
    const strict = await provider(`upstream = "rsync://e/x/"\ncommand = "${fake}"`)
    await expect(strict.provider.run(ctx())).rejects.toThrow(
      /^rsync exited 24: partial transfer due to vanished source files$/,
    )
    const lenient = await provider(
      `upstream = "rsync://e/x/"\ncommand = "${fake}"\nsuccess_exit_codes = [24]`,
    )
    const c = ctx()
    expect(await lenient.provider.run(c)).toEqual({ size: '1.50G' })
    expect(read(c.logFile)).toMatch(/exit code 24 counted as success/)
    const global = await provider(
      `upstream = "rsync://e/x/"\ncommand = "${fake}"`,
      'dangerous_global_rsync_success_exit_codes = [24]',
    )
    await expect(global.provider.run(ctx())).resolves.toEqual({ size: '1.50G' })
  })

  it('fails with the spawn error when the rsync binary is missing', async () => {
    const { provider: p } = await provider(`upstream = "rsync://e/x/"\ncommand = "/nonexistent/rsync"`)
    const err = (await p.run(ctx()).catch((e: unknown) => e)) as ProviderError
    expect(err.code).toBe('CIDMIRROR_ERR_SYNC_SPAWN')
    expect(err.message).toMatch(/^cannot run \/nonexistent\/rsync: .*ENOENT/)
  })

  it('keeps the last good tree when the upstream goes away mid-sync', async () => {
    up = await startRsyncd()
    const old = Date.now() / 1000 - 7200
    for (let i = 0; i < 4; i++) write(up.root, `big${i}.bin`, Buffer.alloc(400_000, 'a'), old)
    write(up.root, 'index.txt', 'v1\n', old)
    write(up.root, 'old-only.txt', 'v1\n', old)
    const { provider: p, mirror } = await provider(
      `upstream = "${up.url}"\nrsync_options = ["--bwlimit=300"]`,
    )
    await p.run(ctx({}))
    const dest = mirror.mirrorDir

    // v2 upstream: every file changes, one goes, new ones come; the transfer is slow (300 KB/s)
    for (let i = 0; i < 4; i++) write(up.root, `big${i}.bin`, Buffer.alloc(400_000, 'b'))
    for (let i = 0; i < 3; i++) write(up.root, `new${i}.bin`, Buffer.alloc(400_000, 'n'))
    write(up.root, 'index.txt', 'v2\n')
    unlinkSync(join(up.root, 'old-only.txt'))

    const c = ctx()
    const running = p.run(c).catch((e: unknown) => e)
    // wait until rsync is moving data, then the upstream dies
    await waitFor(
      () => [0, 1, 2, 3].some((i) => partialFile(dest, `big${i}.bin`, 50_000)),
      'a file half-received',
      30_000,
    )
    up.kill()
    const err = (await running) as ProviderError
    expect(err).toBeInstanceOf(ProviderError)
    expect(err.code).toBe('CIDMIRROR_ERR_SYNC_EXIT')
    expect(err.message).toMatch(
      /^rsync exited (10|11|12|23|30): (error in socket I\/O|error in file I\/O|error in rsync protocol data stream|partial transfer due to error|timeout in data send\/receive)/,
    )
    // the last good tree: old contents, nothing new half-visible, nothing deleted
    for (let i = 0; i < 4; i++) {
      const data = readFileSync(join(dest, `big${i}.bin`))
      expect(data.length).toBe(400_000)
      expect(data.every((b) => b === 'a'.charCodeAt(0))).toBe(true)
    }
    expect(read(join(dest, 'index.txt'))).toBe('v1\n')
    expect(read(join(dest, 'old-only.txt'))).toBe('v1\n')
    for (let i = 0; i < 3; i++) expect(existsSync(join(dest, `new${i}.bin`))).toBe(false)

    // the upstream comes back: the next run completes and clears the temp folder
    await up.stop()
    up = await startRsyncd({ root: join(tmp, 'up2') })
    for (let i = 0; i < 2; i++) write(up.root, `big${i}.bin`, Buffer.alloc(1000, 'c'))
    const again = await provider(`upstream = "${up.url}"`)
    await again.provider.run(ctx())
    expect(read(join(dest, 'big0.bin'))).toBe('c'.repeat(1000))
    expect(existsSync(join(dest, 'big3.bin'))).toBe(false)
    expect(existsSync(join(dest, '.~tmp~'))).toBe(false)
    expect(lstatSync(dest).isDirectory()).toBe(true)
  })
})
