/**
 * `cidmirror cid` and `cidmirror car` run as processes (the source CLI under Node 24), against Kubo's
 * own output for the same arguments.
 */
import { execFile } from 'node:child_process'
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { Kubo } from './helpers/kubo.ts'

const MAIN = resolve(import.meta.dirname, '../src/cli/main.ts')

let kubo: Kubo
let dir: string

function cli(args: string[], cwd: string): Promise<{ stdout: string; stderr: string; code: number }> {
  return new Promise((res) => {
    execFile(
      process.execPath,
      [MAIN, ...args],
      { cwd, encoding: 'utf8', maxBuffer: 1 << 28 },
      (err, stdout, stderr) => {
        res({ stdout, stderr, code: err ? (typeof err.code === 'number' ? err.code : -1) : 0 })
      },
    )
  })
}

beforeAll(async () => {
  kubo = await Kubo.create()
  dir = mkdtempSync(join(tmpdir(), 'cidmirror-cid-cli-'))
  const w = (rel: string, s: string | Buffer) => {
    mkdirSync(join(dir, rel, '..'), { recursive: true })
    writeFileSync(join(dir, rel), s)
  }
  w('t/b/c/g', 'g\n')
  w('t/b/f', 'f\n')
  w('t/a/y', Buffer.alloc(1024 * 1024 + 1, 1))
  w('t/z', 'z\n')
  w('t/.dot', 'dot\n')
  w('t/.dotdir/x', 'x\n')
  w('t/ü/日本', 'utf8\n')
  mkdirSync(join(dir, 't/e'))
  symlinkSync('z', join(dir, 't/ln'))
  w('one', '1\n')
  w('q/zz/m', 'm\n')
})

afterAll(async () => {
  await kubo?.dispose()
  if (dir) rmSync(dir, { recursive: true, force: true })
})

describe('cidmirror cid', () => {
  for (const args of [
    ['t'],
    ['-H', 't'],
    ['t/b', 'one', 'q', 't/a'],
    ['./t/b/'],
    [join('t', 'ln')],
    ['t/.dot'],
  ]) {
    it(`prints what \`ipfs add -r --only-hash ${args.join(' ')}\` prints`, async () => {
      const expected = await kubo.ok(['add', '-r', '--only-hash', '--cid-version=1', ...args], { cwd: dir })
      const got = await cli(['cid', ...args], dir)
      expect(got.stderr).toBe('')
      expect(got.code).toBe(0)
      expect(got.stdout).toBe(expected)
    })
  }

  it('prints only the last root with -Q, as Kubo does', async () => {
    const args = ['-Q', 't/b', 'one', 'q']
    const expected = await kubo.ok(['add', '-r', '--only-hash', '--cid-version=1', ...args], { cwd: dir })
    const got = await cli(['cid', ...args], dir)
    expect(got.code).toBe(0)
    expect(got.stdout).toBe(expected)
  })

  it('fails with one line and exit 2 for a missing path, printing nothing else', async () => {
    const got = await cli(['cid', 't', 'nope'], dir)
    expect(got.code).toBe(2)
    expect(got.stdout).toBe('')
    expect(got.stderr).toBe('cidmirror: no such file or directory: nope\n')
  })

  it('fails with one line and exit 2 for an unreadable file', async () => {
    const got = await cli(['cid', '/proc/self/mem'], dir)
    expect(got.code).toBe(2)
    expect(got.stderr).toMatch(/^cidmirror: cannot read \/proc\/self\/mem: .+\n$/)
    expect(got.stderr.split('\n')).toHaveLength(2)
  })

  it('fails with one line and exit 2 for an unsupported entry', async () => {
    const got = await cli(['cid', '/dev/null'], dir)
    expect(got.code).toBe(2)
    expect(got.stderr).toBe('cidmirror: cannot add /dev/null: unsupported file type (character device)\n')
  })
})

describe('cidmirror car', () => {
  it('writes a CAR that Kubo imports, prints its root, leaves no temporary file', async () => {
    const out = join(dir, 'out', 't.car')
    mkdirSync(join(dir, 'out'))
    const got = await cli(['car', 't', '-o', out], dir)
    expect(got.stderr).toBe('')
    expect(got.code).toBe(0)
    const root = got.stdout.trim()
    expect(root).toBe(await kubo.rootCid(join(dir, 't')))
    expect(readdirSync(join(dir, 'out'))).toEqual(['t.car'])
    expect(await kubo.ok(['dag', 'import', out])).toContain(root)
    expect((await kubo.cat(`/ipfs/${root}/b/c/g`)).toString()).toBe('g\n')
    const hidden = await cli(['car', '-H', 't', '-o', join(dir, 'out', 'h.car')], dir)
    expect(hidden.stdout.trim()).toBe(await kubo.rootCid(join(dir, 't'), { hidden: true }))
  })

  it('fails with one line and exit 2 for a missing path, and writes nothing', async () => {
    const got = await cli(['car', 'nope', '-o', join(dir, 'nope.car')], dir)
    expect(got.code).toBe(2)
    expect(got.stderr).toBe('cidmirror: no such file or directory: nope\n')
    expect(existsSync(join(dir, 'nope.car'))).toBe(false)
  })

  it('fails with one line and exit 2 for an unreadable file, removing its temporary file', async () => {
    mkdirSync(join(dir, 'out2'))
    const got = await cli(['car', '/proc/self/mem', '-o', join(dir, 'out2', 'm.car')], dir)
    expect(got.code).toBe(2)
    expect(got.stderr).toMatch(/^cidmirror: cannot read \/proc\/self\/mem: .+\n$/)
    expect(readdirSync(join(dir, 'out2'))).toEqual([])
  })
})
