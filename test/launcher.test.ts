import { cpSync, mkdirSync, statSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs'
import { homedir } from 'node:os'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { runFile } from './helpers/cli.ts'
import { tempDir } from './jobs-helpers.ts'

/**
 * `./cidmirror` and `scripts/node` in a new shell: nothing on PATH but the system's folders, whose
 * Node may be older than the project's (this machine's is 20). They find a new enough Node (PATH, else
 * the cache ./quickstart fills), build dist/ when needed, or say in one line what to run.
 */

const REPO = join(import.meta.dirname, '..')
const VERSION = (await import('../package.json', { with: { type: 'json' } })).default.version
const CACHE = process.env.CIDMIRROR_CACHE ?? join(homedir(), '.cache', 'cidmirror')

/** A new login shell's environment: HOME and the system PATH, nothing else. */
function freshEnv(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  return { HOME: homedir(), PATH: '/usr/bin:/bin', CIDMIRROR_CACHE: CACHE, ...extra }
}

/** Runs with exactly `env` (runFile adds the test's own environment; these must not see it). */
function runFresh(file: string, args: string[], env: NodeJS.ProcessEnv, cwd: string) {
  const clear = Object.fromEntries(Object.keys(process.env).map((k) => [k, undefined]))
  return runFile(
    '/usr/bin/env',
    [
      '-i',
      ...Object.entries(env).map(([k, v]) => `${k}=${v}`),
      '/bin/sh',
      '-c',
      `cd "$1" && shift && exec "$@"`,
      'sh',
      cwd,
      file,
      ...args,
    ],
    clear,
  )
}

let tmp: ReturnType<typeof tempDir>
beforeEach(() => {
  tmp = tempDir('cidmirror-launcher-')
})
afterEach(() => tmp.cleanup())

describe('./cidmirror', () => {
  it('runs the CLI from any folder in a fresh shell, and through a symlink on PATH', async () => {
    const r = await runFresh(join(REPO, 'cidmirror'), ['--version'], freshEnv(), tmp.dir)
    expect(r).toMatchObject({ code: 0, stdout: `${VERSION}\n` })
    const bin = join(tmp.dir, 'bin')
    mkdirSync(bin)
    symlinkSync(join(REPO, 'cidmirror'), join(bin, 'cidmirror'))
    const viaPath = await runFresh(
      'cidmirror',
      ['--version'],
      freshEnv({ PATH: `${bin}:/usr/bin:/bin` }),
      tmp.dir,
    )
    expect(viaPath).toMatchObject({ code: 0, stdout: `${VERSION}\n` })
  })

  it('with no Node >= 22.12 anywhere, says in one line to run ./quickstart', async () => {
    // A PATH with only what the launcher needs before it looks for Node: no node at all.
    const bin = join(tmp.dir, 'bin')
    mkdirSync(bin)
    symlinkSync('/usr/bin/dirname', join(bin, 'dirname'))
    const empty = join(tmp.dir, 'no-cache')
    const r = await runFresh(
      join(REPO, 'cidmirror'),
      ['jobs', 'list'],
      freshEnv({ PATH: bin, CIDMIRROR_CACHE: empty }),
      tmp.dir,
    )
    expect(r.code, r.stderr).toBe(2)
    expect(r.stderr).toBe(
      `cidmirror: no Node >= 22.12 on PATH or in ${empty}/node24: run ${REPO}/quickstart once (it installs Node 24 there)\n`,
    )
  })

  it('builds dist/ when it is missing or older than the sources, and only then', async () => {
    const copy = join(tmp.dir, 'repo')
    mkdirSync(join(copy, 'scripts'), { recursive: true })
    for (const f of ['src', 'package.json', 'tsconfig.json', 'cidmirror', 'scripts/find-node.sh']) {
      cpSync(join(REPO, f), join(copy, f), { recursive: true })
    }
    symlinkSync(join(REPO, 'node_modules'), join(copy, 'node_modules'))
    const main = join(copy, 'dist', 'cli', 'main.js')

    const first = await runFresh(join(copy, 'cidmirror'), ['--version'], freshEnv(), tmp.dir)
    expect(first).toMatchObject({
      code: 0,
      stdout: `${VERSION}\n`,
      stderr: 'cidmirror: building dist/ (missing, or older than src/)\n',
    })
    expect(statSync(main).mode & 0o111).toBe(0o111)

    const again = await runFresh(join(copy, 'cidmirror'), ['--version'], freshEnv(), tmp.dir)
    expect(again).toMatchObject({ code: 0, stdout: `${VERSION}\n`, stderr: '' })

    // A source newer than the build: built again. A broken one: tsc's report and exit 2.
    const past = new Date(Date.now() - 3_600_000)
    utimesSync(main, past, past)
    writeFileSync(join(copy, 'src', 'broken.ts'), 'export const n: number = "not a number"\n')
    const broken = await runFresh(join(copy, 'cidmirror'), ['--version'], freshEnv(), tmp.dir)
    expect(broken.code).toBe(2)
    expect(broken.stderr).toContain(
      "src/broken.ts(1,14): error TS2322: Type 'string' is not assignable to type 'number'.",
    )
    expect(broken.stderr).toMatch(/cidmirror: building dist\/ failed: tsc's report is above\n$/)
    expect(broken.stdout).toBe('')
    // Two full tsc builds: on a busy 2-core machine each can take a minute or more.
  }, 600_000)
})

describe('scripts/node (the npm scripts test, start, bench)', () => {
  it('runs a Node >= 22.18 in a fresh shell, and with none stops with one line naming what to run', async () => {
    const ok = await runFresh(
      join(REPO, 'scripts', 'node'),
      ['-p', 'process.features.typescript'],
      freshEnv(),
      tmp.dir,
    )
    expect(ok).toMatchObject({ code: 0, stdout: 'strip\n' })
    const bin = join(tmp.dir, 'bin')
    mkdirSync(bin)
    symlinkSync('/usr/bin/dirname', join(bin, 'dirname'))
    const empty = join(tmp.dir, 'no-cache')
    const r = await runFresh(
      join(REPO, 'scripts', 'node'),
      ['--check', 'npm test'],
      freshEnv({ PATH: bin, CIDMIRROR_CACHE: empty }),
      tmp.dir,
    )
    expect(r.code, r.stderr).toBe(2)
    expect(r.stderr).toBe(
      `cidmirror: npm test needs Node >= 22.18 (on PATH: none; none in ${empty}/node24): run ./quickstart once, it installs Node 24 there\n`,
    )
  })
})
