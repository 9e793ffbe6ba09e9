/**
 * apt against the gateway, as a Debian mirror's users run it: a repository built in the test from real
 * .deb files (dpkg-deb --build, apt-ftparchive), signed with a throwaway key (InRelease, Release.gpg),
 * by-hash indexes, a `+` and an epoch in package names and versions, `dists/stable -> bookworm`; an
 * apt-get isolated by its own APT_CONFIG, state, cache and keyring (the system's apt is never
 * touched). `apt-get update`, `apt-get download` of every package (apt checks each hash; the test
 * too), a second update answered 304, and resumed downloads: a partial file whose date matches gives
 * a 206, a stale one a 200. Then two packages are evicted through the index (as the janitor does) and
 * `apt-get download` gets them again: the gateway fetches them back, verified, from a real Kubo on
 * loopback holding the repository's files (issue 13), and they are back in the tree.
 */
import { execFile } from 'node:child_process'
import { createHash, randomBytes } from 'node:crypto'
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  symlinkSync,
  unlinkSync,
  utimesSync,
  writeFileSync,
} from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type Database, openDatabase } from '../src/db.ts'
import { createFetchBack, type Gateway } from '../src/gateway/index.ts'
import { type MirrorIndex, openMirrorIndex } from '../src/index/index.ts'
import { KuboNode } from '../src/ipfs/index.ts'
import { gatewayOver } from './helpers/gateway.ts'
import { Kubo } from './helpers/kubo.ts'
import { tool } from './helpers/tools.ts'
import { waitFor } from './jobs-helpers.ts'

let work: string
let repo: string
let db: Database
let idx: MirrorIndex
let gw: Gateway
let aptConf: string
let accessLog: string
let kubo: Kubo

interface Run {
  code: number
  stdout: string
  stderr: string
}

function run(
  cmd: string,
  args: string[],
  opts: { cwd?: string; env?: NodeJS.ProcessEnv } = {},
): Promise<Run> {
  return new Promise((resolve) => {
    execFile(
      cmd,
      args,
      { cwd: opts.cwd, env: { ...process.env, ...opts.env }, maxBuffer: 1 << 24 },
      (err, stdout, stderr) => {
        resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, stdout, stderr })
      },
    )
  })
}

async function must(
  cmd: string,
  args: string[],
  opts: { cwd?: string; env?: NodeJS.ProcessEnv } = {},
): Promise<string> {
  const r = await run(cmd, args, opts)
  if (r.code !== 0) throw new Error(`${cmd} ${args.join(' ')} exited ${r.code}: ${r.stderr}${r.stdout}`)
  return r.stdout
}

const apt = (args: string[], cwd?: string) =>
  run(tool('apt-get'), args, { env: { APT_CONFIG: aptConf }, ...(cwd ? { cwd } : {}) })

const sha256 = (p: string): string => createHash('sha256').update(readFileSync(p)).digest('hex')

/** The access log's lines (written in batches: wait until `want` shows). */
async function logLines(want: (lines: string[]) => boolean): Promise<string[]> {
  const deadline = Date.now() + 30_000
  for (;;) {
    let lines: string[] = []
    try {
      lines = readFileSync(accessLog, 'utf8').trim().split('\n')
    } catch {}
    if (want(lines) || Date.now() > deadline) return lines
    await new Promise((r) => setTimeout(r, 25))
  }
}

const PACKAGES = [
  {
    name: 'hello-cidmirror',
    version: '1.0-1',
    file: 'pool/main/h/hello-cidmirror/hello-cidmirror_1.0-1_all.deb',
    local: 'hello-cidmirror_1.0-1_all.deb',
  },
  {
    name: 'libcid++1',
    version: '2:1.2+dfsg-3',
    file: 'pool/main/libc/libcid++1/libcid++1_1.2+dfsg-3_all.deb',
    local: 'libcid++1_2%3a1.2+dfsg-3_all.deb',
  },
  {
    name: 'big-data',
    version: '0.5~rc1-1',
    file: 'pool/main/b/big-data/big-data_0.5~rc1-1_all.deb',
    local: 'big-data_0.5~rc1-1_all.deb',
  },
]

async function buildDeb(pkg: (typeof PACKAGES)[number], out: string, payload: Buffer): Promise<void> {
  const src = join(work, 'build', pkg.name)
  mkdirSync(join(src, 'DEBIAN'), { recursive: true })
  mkdirSync(join(src, 'usr', 'share', pkg.name), { recursive: true })
  writeFileSync(join(src, 'usr', 'share', pkg.name, 'data'), payload)
  writeFileSync(
    join(src, 'DEBIAN', 'control'),
    `Package: ${pkg.name}\nVersion: ${pkg.version}\nArchitecture: all\nMaintainer: cidmirror tests <tests@example.org>\nDescription: a package of the gateway's apt test\n`,
  )
  mkdirSync(join(out, '..'), { recursive: true })
  await must(tool('dpkg-deb'), ['--root-owner-group', '-Zgzip', '--build', src, out])
}

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), 'cidmirror-gw-apt-'))
  repo = join(work, 'mirrors', 'debian')
  mkdirSync(repo, { recursive: true })
  // Packages: one small, one with + in its name and an epoch, one large (several chunks, from disk).
  // Random bytes: gzip inside dpkg-deb cannot shrink them, so the large one stays several chunks.
  const payloads = [Buffer.from('hello\n'), randomBytes(50_000), randomBytes(3_000_000)]
  for (const [i, p] of PACKAGES.entries()) await buildDeb(p, join(repo, p.file), payloads[i]!)
  // The index files of one suite, by hash too.
  const dist = join(repo, 'dists', 'bookworm')
  const bin = join(dist, 'main', 'binary-amd64')
  mkdirSync(bin, { recursive: true })
  const packages = await must(tool('apt-ftparchive'), ['packages', 'pool'], { cwd: repo })
  writeFileSync(join(bin, 'Packages'), packages)
  await must('gzip', ['-9', '-k', '-n', join(bin, 'Packages')])
  for (const f of ['Packages', 'Packages.gz']) {
    for (const algo of ['SHA256', 'SHA512']) {
      const h = createHash(algo.toLowerCase())
        .update(readFileSync(join(bin, f)))
        .digest('hex')
      mkdirSync(join(bin, 'by-hash', algo), { recursive: true })
      copyFileSync(join(bin, f), join(bin, 'by-hash', algo, h))
    }
  }
  const release = await must(
    tool('apt-ftparchive'),
    [
      '-o',
      'APT::FTPArchive::Release::Origin=cidmirror-test',
      '-o',
      'APT::FTPArchive::Release::Suite=stable',
      '-o',
      'APT::FTPArchive::Release::Codename=bookworm',
      '-o',
      'APT::FTPArchive::Release::Architectures=amd64',
      '-o',
      'APT::FTPArchive::Release::Components=main',
      '-o',
      'APT::FTPArchive::Release::Acquire-By-Hash=yes',
      'release',
      '.',
    ],
    { cwd: dist },
  )
  writeFileSync(join(dist, 'Release'), release)
  // A throwaway key, in a keyring of its own.
  const gnupg = join(work, 'gnupg')
  mkdirSync(gnupg, { mode: 0o700 })
  const g = (args: string[]) =>
    must(tool('gpg'), [
      '--homedir',
      gnupg,
      '--batch',
      '--pinentry-mode',
      'loopback',
      '--passphrase',
      '',
      ...args,
    ])
  await g(['--quick-gen-key', 'cidmirror test <tests@example.org>', 'ed25519', 'sign', 'never'])
  await g(['--clearsign', '-o', join(dist, 'InRelease'), join(dist, 'Release')])
  await g(['-abs', '-o', join(dist, 'Release.gpg'), join(dist, 'Release')])
  const keyring = join(work, 'apt', 'key.gpg')
  mkdirSync(join(work, 'apt'), { recursive: true })
  writeFileSync(
    keyring,
    Buffer.from(
      await new Promise<Buffer>((resolve, reject) => {
        execFile(tool('gpg'), ['--homedir', gnupg, '--export'], { encoding: 'buffer' }, (err, out) =>
          err ? reject(err) : resolve(out),
        )
      }),
    ),
  )
  symlinkSync('bookworm', join(repo, 'dists', 'stable'))
  // Upstream dates, as rsync keeps them.
  const when = new Date('2024-06-01T10:00:00Z')
  for (const p of PACKAGES) utimesSync(join(repo, p.file), when, when)

  db = await openDatabase(join(work, 'db'))
  idx = openMirrorIndex(db, 'debian', repo)
  await idx.scan()
  // A Kubo holding the repository's packages (what replication would have stored elsewhere): the
  // fetch-back's source once they are evicted. Its CIDs are the index's.
  kubo = await Kubo.create({ parent: work })
  await kubo.start()
  for (const p of PACKAGES) {
    const cid = (await kubo.ok(['add', '-Q', '--cid-version=1', join(repo, p.file)])).trim()
    expect(cid).toBe((await idx.get(p.file))?.cid)
  }
  accessLog = join(work, 'log', 'access.log')
  gw = await gatewayOver(db, [{ name: 'debian', root: repo }], {
    accessLog: { file: accessLog },
    fetchBack: createFetchBack({
      rootOf: (m) => (m === 'debian' ? repo : undefined),
      recorderOf: (m) => (m === 'debian' ? idx.local : undefined),
      node: new KuboNode({ api: kubo.api }),
    }),
    // Each request checks its file's stat, so an eviction is seen at once (with the default 1 s a
    // small file's cached bytes, the same bytes, are served for up to 1 s after it).
    cache: { statTtlMs: 0 },
  })

  // apt, isolated: its own config, state, cache, lists, keyring and sources.
  const a = join(work, 'apt')
  for (const d of [
    'state/lists/partial',
    'cache/archives/partial',
    'etc/apt.conf.d',
    'etc/preferences.d',
    'etc/trusted.gpg.d',
    'etc/sources.list.d',
    'log',
    'dl',
  ])
    mkdirSync(join(a, d), { recursive: true })
  writeFileSync(join(a, 'state', 'status'), '')
  writeFileSync(
    join(a, 'etc', 'sources.list'),
    `deb [arch=amd64 signed-by=${keyring}] ${gw.url}/debian stable main\n`,
  )
  aptConf = join(a, 'apt.conf')
  writeFileSync(
    aptConf,
    [
      `Dir "${a}/";`,
      `Dir::State "${a}/state/";`,
      `Dir::State::Lists "${a}/state/lists/";`,
      `Dir::State::status "${a}/state/status";`,
      `Dir::Cache "${a}/cache/";`,
      `Dir::Etc "${a}/etc/";`,
      `Dir::Etc::SourceList "${a}/etc/sources.list";`,
      `Dir::Etc::SourceParts "${a}/etc/sources.list.d/";`,
      `Dir::Etc::Parts "${a}/etc/apt.conf.d/";`,
      `Dir::Etc::PreferencesParts "${a}/etc/preferences.d/";`,
      `Dir::Etc::TrustedParts "${a}/etc/trusted.gpg.d/";`,
      `Dir::Log "${a}/log/";`,
      'APT::Architecture "amd64";',
      'APT::Architectures { "amd64"; };',
      // Root runs the tests: apt's downloads would drop to _apt, which cannot write a private temp dir.
      'APT::Sandbox::User "root";',
      'Debug::NoLocking "true";',
      'Acquire::Languages "none";',
      'Acquire::IndexTargets::deb::Contents-deb::DefaultEnabled "false";',
      'Acquire::Retries "0";',
      '',
    ].join('\n'),
  )
}, 120_000)

afterAll(async () => {
  await gw?.close()
  await db?.close()
  await kubo?.dispose()
  rmSync(work, { recursive: true, force: true })
})

describe('apt-get against the gateway', () => {
  it('update: the signed InRelease through dists/stable, the Packages index by hash', async () => {
    const r = await apt(['update'])
    expect(r.stderr).not.toMatch(/^(E|W):/m)
    expect(r.code).toBe(0)
    expect(r.stdout).toMatch(/Get:\d+ http:\/\/127\.0\.0\.1:\d+\/debian stable InRelease/)
    const lists = readdirSync(join(work, 'apt', 'state', 'lists'))
    expect(lists.some((f) => f.endsWith('_dists_stable_InRelease'))).toBe(true)
    expect(
      lists.some((f) => f.endsWith('_main_binary-amd64_Packages') || f.includes('binary-amd64_Packages')),
    ).toBe(true)
    const lines = await logLines((l) => l.some((x) => x.includes('/by-hash/')))
    expect(lines.some((l) => / "GET \/debian\/dists\/stable\/InRelease HTTP\/1\.1" 200 /.test(l))).toBe(true)
    expect(
      lines.some((l) =>
        /\/debian\/dists\/stable\/main\/binary-amd64\/by-hash\/SHA(256|512)\/[0-9a-f]{64,128} HTTP\/1\.1" 200 /.test(
          l,
        ),
      ),
    ).toBe(true)
  })

  it('download of every package, hashes checked by apt and by the test', async () => {
    const dl = join(work, 'apt', 'dl')
    const r = await apt(['download', ...PACKAGES.map((p) => p.name)], dl)
    expect(r.stderr).not.toMatch(/^(E|W):/m)
    expect(r.code).toBe(0)
    for (const p of PACKAGES) {
      expect(sha256(join(dl, p.local))).toBe(sha256(join(repo, p.file)))
    }
    const lines = await logLines((l) =>
      l.some((x) => x.includes('libcid%2b%2b1') || x.includes('libcid++1_')),
    )
    // apt asks for + as %2b: the gateway decodes it once.
    expect(
      lines.some((l) =>
        /GET \/debian\/pool\/main\/libc\/libcid(%2b%2b|\+\+)1\/libcid(%2b%2b|\+\+)1_1\.2(%2b|\+)dfsg-3_all\.deb HTTP\/1\.1" 200 /i.test(
          l,
        ),
      ),
    ).toBe(true)
  })

  it('a second update is answered 304 (If-Modified-Since as apt sends it)', async () => {
    const before = (await logLines(() => true)).length
    const r = await apt(['update'])
    expect(r.code).toBe(0)
    expect(r.stdout).toMatch(/Hit:\d+ http:\/\/127\.0\.0\.1:\d+\/debian stable InRelease/)
    const lines = await logLines((l) => l.slice(before).some((x) => x.includes('InRelease')))
    expect(
      lines.slice(before).some((l) => / "GET \/debian\/dists\/stable\/InRelease HTTP\/1\.1" 304 0 /.test(l)),
    ).toBe(true)
  })

  it('a resumed download: a matching partial gives 206, a stale one 200, both end right', async () => {
    const archives = join(work, 'apt', 'cache', 'archives')
    const big = PACKAGES[2]!
    const small = PACKAGES[1]!
    const upstream = join(repo, big.file)
    const bytes = readFileSync(upstream)
    const lastModified = statSync(upstream).mtime
    // apt's http method resumes a file in archives/partial, with If-Range from the partial's date.
    writeFileSync(join(archives, 'partial', big.local), bytes.subarray(0, 1_000_000))
    utimesSync(join(archives, 'partial', big.local), lastModified, lastModified)
    const smallBytes = readFileSync(join(repo, small.file))
    writeFileSync(join(archives, 'partial', small.local), smallBytes.subarray(0, 10_000))
    const stale = new Date('2020-01-01T00:00:00Z')
    utimesSync(join(archives, 'partial', small.local), stale, stale)
    const before = (await logLines(() => true)).length
    const r = await apt(['install', '--download-only', '-y', '--no-install-recommends', big.name, small.name])
    expect(r.stderr).not.toMatch(/^E:/m)
    expect(r.code).toBe(0)
    expect(sha256(join(archives, big.local))).toBe(sha256(upstream))
    expect(sha256(join(archives, small.local))).toBe(sha256(join(repo, small.file)))
    const lines = (
      await logLines((l) => l.slice(before).filter((x) => x.includes('/pool/')).length >= 2)
    ).slice(before)
    // apt asks for ~ as %7e.
    const resumed = new RegExp(
      `big-data_0\\.5(~|%7e)rc1-1_all\\.deb HTTP/1\\.1" 206 ${bytes.length - 1_000_000} `,
      'i',
    )
    expect(lines.some((l) => resumed.test(l))).toBe(true)
    expect(
      lines.some((l) => new RegExp(`libcid.*_all\\.deb HTTP/1\\.1" 200 ${smallBytes.length} `).test(l)),
    ).toBe(true)
  })

  it('download of evicted packages: fetched back from Kubo, hashes checked, back in the tree', async () => {
    const evicted = [PACKAGES[1]!, PACKAGES[2]!]
    for (const p of evicted) {
      const rec = (await idx.get(p.file))!
      const out = await idx.local.evict(
        [{ path: p.file, cid: rec.cid, size: rec.size, mtimeMs: rec.mtimeMs }],
        async (r) => unlinkSync(join(repo, r.path)),
      )
      expect(out).toEqual([expect.objectContaining({ evicted: true })])
      expect(existsSync(join(repo, p.file))).toBe(false)
      expect((await idx.local.of(p.file))?.state).toBe('evicted')
    }
    const dl = join(work, 'apt', 'dl-evicted')
    mkdirSync(dl)
    const before = (await logLines(() => true)).length
    const r = await apt(['download', ...evicted.map((p) => p.name)], dl)
    expect(r.stderr).not.toMatch(/^(E|W):/m)
    expect(r.code).toBe(0)
    // apt checked each file against the Packages index's hashes; the test checks against Kubo's bytes.
    for (const p of evicted) {
      const want = createHash('sha256')
        .update(await kubo.cat((await idx.get(p.file))!.cid))
        .digest('hex')
      expect(sha256(join(dl, p.local))).toBe(want)
    }
    // Cached again while it streamed: the file is back in the tree, recorded as fetched back.
    for (const p of evicted) {
      await waitFor(async () => (await idx.local.of(p.file))?.state === 'refetched', `${p.name} refetched`)
      expect(existsSync(join(repo, p.file))).toBe(true)
      expect(sha256(join(repo, p.file))).toBe(sha256(join(dl, p.local)))
    }
    const lines = (
      await logLines((l) => l.slice(before).filter((x) => x.includes('/pool/')).length >= 2)
    ).slice(before)
    expect(lines.filter((l) => /_all\.deb HTTP\/1\.1" 200 /.test(l))).toHaveLength(2)
  }, 120_000)

  it('a resumed download of an evicted package: If-Range matches, 206, the rest fetched back', async () => {
    const big = PACKAGES[2]!
    const bytes = readFileSync(join(repo, big.file))
    const lastModified = statSync(join(repo, big.file)).mtime
    const rec = (await idx.get(big.file))!
    // Fetched back above: it may be evicted again (the index allows it; the janitor's refetched_ttl aside).
    const out = await idx.local.evict(
      [{ path: big.file, cid: rec.cid, size: rec.size, mtimeMs: rec.mtimeMs }],
      async (r) => unlinkSync(join(repo, r.path)),
    )
    expect(out).toEqual([expect.objectContaining({ evicted: true })])
    const archives = join(work, 'apt', 'cache', 'archives')
    rmSync(join(archives, big.local), { force: true })
    writeFileSync(join(archives, 'partial', big.local), bytes.subarray(0, 1_200_000))
    utimesSync(join(archives, 'partial', big.local), lastModified, lastModified)
    const before = (await logLines(() => true)).length
    const r = await apt(['install', '--download-only', '-y', '--no-install-recommends', big.name])
    expect(r.stderr).not.toMatch(/^E:/m)
    expect(r.code).toBe(0)
    expect(sha256(join(archives, big.local))).toBe(createHash('sha256').update(bytes).digest('hex'))
    const lines = (await logLines((l) => l.slice(before).some((x) => x.includes('/pool/')))).slice(before)
    expect(
      lines.some((l) =>
        new RegExp(
          `big-data_0\\.5(~|%7e)rc1-1_all\\.deb HTTP/1\\.1" 206 ${bytes.length - 1_200_000} `,
          'i',
        ).test(l),
      ),
    ).toBe(true)
  }, 120_000)
})
