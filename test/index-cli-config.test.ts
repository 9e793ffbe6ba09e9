import { execFile } from 'node:child_process'
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'

const MAIN = fileURLToPath(new URL('../src/cli/main.ts', import.meta.url))
const run = promisify(execFile)
let work: string

beforeEach(() => {
  work = mkdtempSync(join(tmpdir(), 'cidmirror-index-cli-'))
})
afterEach(() => rmSync(work, { recursive: true, force: true }))

async function cli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, [MAIN, ...args], {
      env: { ...process.env, CIDMIRROR_DB: '' },
    })
    return { code: 0, stdout, stderr }
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string }
    return { code: e.code, stdout: e.stdout, stderr: e.stderr }
  }
}

describe('cidmirror index and stat: which database, which mirror', () => {
  it('refuses to move a mirror whose name only came from the folder name', async () => {
    const db = join(work, 'db')
    for (const side of ['a', 'b']) {
      mkdirSync(join(work, side, 'debian'), { recursive: true })
      writeFileSync(join(work, side, 'debian', `${side}.txt`), side)
    }
    expect((await cli(['index', join(work, 'a', 'debian'), '--db', db, '--progress', 'none'])).code).toBe(0)
    const clash = await cli(['index', join(work, 'b', 'debian'), '--db', db, '--progress', 'none'])
    expect(clash.code).toBe(2)
    expect(clash.stderr.trim().split('\n')).toHaveLength(1)
    expect(clash.stderr).toContain(`mirror debian is indexed at ${join(work, 'a', 'debian')}`)
    // Named explicitly, it is another mirror, and the first one is untouched.
    const named = await cli([
      'index',
      join(work, 'b', 'debian'),
      '--db',
      db,
      '--name',
      'debian-b',
      '--progress',
      'none',
    ])
    expect(named.stdout).toContain('mirror       debian-b')
    const first = await cli(['stat', join(work, 'a', 'debian', 'a.txt'), '--db', db, '--json'])
    expect(JSON.parse(first.stdout)).toMatchObject({ mirror: 'debian', path: 'a.txt', state: 'present' })
  })

  it("with -c, uses the daemon config's database and mirror names", async () => {
    const mirrorDir = join(work, 'mirrors', 'ubuntu-releases')
    mkdirSync(mirrorDir, { recursive: true })
    writeFileSync(join(mirrorDir, 'SHA256SUMS'), 'sums\n')
    const config = join(work, 'cidmirror.toml')
    writeFileSync(
      config,
      `[global]\nmirror_dir = "${join(work, 'mirrors')}"\n[manager]\ntoken = "t"\n[database]\npath = "${join(work, 'state', 'db')}"\n[[mirrors]]\nname = "ubuntu-releases"\nprovider = "command"\ncommand = "true"\n`,
    )
    const indexed = await cli(['index', mirrorDir, '-c', config, '--progress', 'none'])
    expect(indexed.code).toBe(0)
    expect(indexed.stdout).toContain('mirror       ubuntu-releases')
    const stat = await cli(['stat', join(mirrorDir, 'SHA256SUMS'), '-c', config, '--json'])
    expect(JSON.parse(stat.stdout)).toMatchObject({
      mirror: 'ubuntu-releases',
      path: 'SHA256SUMS',
      kind: 'file',
    })
  })
})

describe('cidmirror index --progress', () => {
  it('draws the bar with --progress bar even on a pipe, and refuses an unknown mode', async () => {
    const tree = join(work, 'tree')
    mkdirSync(tree)
    writeFileSync(join(tree, 'a.txt'), 'a\n')
    const db = join(work, 'db')
    const bar = await cli(['index', tree, '--db', db, '--progress', 'bar'])
    expect(bar.code).toBe(0)
    expect(bar.stderr).toMatch(/^ committing \[=+\] 2\/\? entries \| hashed 1 files/m)
    // auto: no terminal, no bar
    const auto = await cli(['index', tree, '--db', db])
    expect(auto).toMatchObject({ code: 0, stderr: '' })
    const bad = await cli(['index', tree, '--db', db, '--progress', 'bars'])
    expect(bad.code).toBe(2)
    expect(bad.stderr).toMatch(/argument 'bars' is invalid\. Allowed choices are auto, bar, lines, none/)
  })
})
