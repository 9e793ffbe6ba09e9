import { type ChildProcess, spawn, spawnSync } from 'node:child_process'
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { openDatabase } from '../src/db.ts'
import { openMirrorIndex } from '../src/index/index.ts'
import { kuboRepo } from './helpers/index-kubo.ts'

const MAIN = join(import.meta.dirname, '..', 'src', 'cli', 'main.ts')
let work: string
let tree: string
let dbPath: string

function cli(args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [MAIN, ...args], { encoding: 'utf8' })
  return { status: r.status, stdout: r.stdout, stderr: r.stderr }
}

function fill(dir: string, dirs: number, files: number, tag: string): void {
  for (let d = 0; d < dirs; d++) {
    mkdirSync(join(dir, `d${d}`), { recursive: true })
    for (let f = 0; f < files; f++) writeFileSync(join(dir, `d${d}`, `${tag}${f}`), `${tag} ${d} ${f}\n`)
  }
}

beforeAll(() => {
  work = mkdtempSync(join(tmpdir(), 'cidmirror-index-crash-'))
  tree = join(work, 'tree')
  dbPath = join(work, 'db')
  fill(tree, 4, 25, 'old')
})

afterAll(() => {
  rmSync(work, { recursive: true, force: true })
})

describe('index CLI', () => {
  it('indexes and prints a summary, stat prints a record', () => {
    const r = cli(['index', tree, '--db', dbPath, '--name', 'crash'])
    expect(r.stderr).toBe('')
    expect(r.status).toBe(0)
    expect(r.stdout).toMatch(/added\s+100/)
    expect(r.stdout).toMatch(/root CID\s+bafy/)
    const st = cli(['stat', join(tree, 'd1', 'old3'), '--db', dbPath, '--json'])
    expect(st.status).toBe(0)
    expect(JSON.parse(st.stdout)).toMatchObject({
      mirror: 'crash',
      path: 'd1/old3',
      kind: 'file',
      state: 'present',
    })
  })

  it('gives one-line errors for a missing path and a path not indexed', () => {
    let r = cli(['index', join(work, 'missing'), '--db', dbPath])
    expect(r.status).toBe(2)
    expect(r.stderr).toBe(`cidmirror: no such directory: ${join(work, 'missing')}\n`)
    r = cli(['stat', join(tree, 'nope'), '--db', dbPath])
    expect(r.status).toBe(2)
    expect(r.stderr.trim().split('\n')).toHaveLength(1)
    expect(r.stderr).toMatch(/^cidmirror: .*nope is not in the index of mirror crash/)
  })

  it('gives a one-line error when another process holds the database', async () => {
    const db = await openDatabase(dbPath)
    try {
      const r = cli(['index', tree, '--db', dbPath, '--name', 'crash'])
      expect(r.status).toBe(2)
      expect(r.stderr).toMatch(/^cidmirror: database .* is held by another process[^\n]*\n$/)
      const s = cli(['stat', join(tree, 'd1', 'old3'), '--db', dbPath])
      expect(s.status).toBe(2)
      expect(s.stderr).toMatch(/^cidmirror: database .* is held by another process[^\n]*\n$/)
    } finally {
      await db.close()
    }
  })
})

describe('a scan killed with SIGKILL', () => {
  // 20,000 files take tens of seconds to write on a busy machine: the hook's time, not the test's.
  beforeAll(() => fill(join(tree, 'new'), 20, 1000, 'n'))

  it('leaves the previous index, and the next scan reuses what it hashed', async () => {
    const child: ChildProcess = spawn(
      process.execPath,
      [MAIN, 'index', tree, '--db', dbPath, '--name', 'crash', '--progress', 'lines'],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    )
    let hashedAtKill = 0
    let buf = ''
    const exited = new Promise<NodeJS.Signals | null>((resolve) =>
      child.on('exit', (_c, sig) => resolve(sig)),
    )
    child.stderr!.on('data', (d: Buffer) => {
      buf += d.toString()
      let nl = buf.indexOf('\n')
      while (nl >= 0) {
        const line = buf.slice(0, nl)
        buf = buf.slice(nl + 1)
        nl = buf.indexOf('\n')
        if (!line.startsWith('{')) continue
        const p = JSON.parse(line) as { phase: string; filesHashed: number }
        if (hashedAtKill === 0 && p.phase === 'scan' && p.filesHashed >= 6000) {
          hashedAtKill = p.filesHashed
          child.kill('SIGKILL')
        }
      }
    })
    expect(await exited).toBe('SIGKILL')
    expect(hashedAtKill).toBeGreaterThanOrEqual(6000)

    const db = await openDatabase(dbPath)
    try {
      const idx = openMirrorIndex(db, 'crash', tree)
      // The previous index, whole.
      expect((await idx.lastScan())!.id).toBe(1)
      expect(await idx.get('new')).toBeUndefined()
      expect(await idx.get('new/d0/n0')).toBeUndefined()
      expect(await idx.get('d1/old3')).toMatchObject({ state: 'present', scan: 1 })
      const first = (await idx.lastScan())!

      const s = await idx.scan()
      expect(s.resumed).toBe(true)
      expect(s.added).toBe(20_000)
      // What the killed scan wrote out (in batches of at most a second) is not hashed again.
      expect(s.reused).toBeGreaterThan(hashedAtKill / 2)
      expect(s.filesHashed + s.reused).toBe(20_000)
      expect(s.unchanged).toBe(100)
      expect(s.id).toBeGreaterThan(first.id + 1)
      expect(s.rootCid).toBe(kuboRepo(work).rootCid(tree))
      expect(await idx.get('new/d19/n999')).toMatchObject({ state: 'present', scan: s.id })
      expect((await idx.pathsOf((await idx.get('new/d3/n5'))!.cid)).sort()).toEqual(['new/d3/n5'])
      const again = await idx.scan()
      expect(again).toMatchObject({ resumed: false, reused: 0, filesHashed: 0, unchanged: 20_100 })
    } finally {
      await db.close()
    }
  }, 300_000) // 20,000 files made, hashed, then hashed again: minutes on a busy machine
})
