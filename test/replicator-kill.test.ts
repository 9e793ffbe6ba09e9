/**
 * kill -9 in the middle of a large replication (a few hundred files pinned one by one on two real
 * Kubo daemons by a replicator in its own process), then a restart: what was done before the kill is
 * not stored again, the restart finishes the rest, and a further restart stores nothing, leaves the
 * pins as they are and the audit's output unchanged.
 */
import { type ChildProcess, spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { openDatabase } from '../src/db.ts'
import { openMirrorIndex } from '../src/index/index.ts'
import { KuboNode } from '../src/ipfs/index.ts'
import { auditMirror, publishMirror } from '../src/replicator/index.ts'
import { disposeAll, Kubo } from './helpers/kubo.ts'

const FILES = 240
let dir: string
let tree: string
let dbPath: string
let kubos: Kubo[]
const child = join(import.meta.dirname, 'helpers', 'replicate-child.ts')

interface Line {
  processed?: string
  state?: string
  msg?: string
  cid?: string
  target?: string
  done?: number
}

/** Runs the child; `killAfter` processed items, kill -9 it. Resolves with its lines and exit. */
function runChild(
  killAfter?: number,
): Promise<{ lines: Line[]; code: number | null; signal: string | null }> {
  return new Promise((resolve, reject) => {
    const p: ChildProcess = spawn(process.execPath, [child, dbPath, tree, ...kubos.map((k) => k.api)], {
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    const lines: Line[] = []
    let buf = ''
    let stderr = ''
    let processed = 0
    p.stderr!.on('data', (d: Buffer) => {
      stderr += d.toString()
    })
    p.stdout!.on('data', (d: Buffer) => {
      buf += d.toString()
      let i = buf.indexOf('\n')
      while (i >= 0) {
        const l = JSON.parse(buf.slice(0, i)) as Line
        buf = buf.slice(i + 1)
        lines.push(l)
        if (l.processed && ++processed === killAfter) p.kill('SIGKILL')
        i = buf.indexOf('\n')
      }
    })
    p.once('error', reject)
    p.once('exit', (code, signal) => {
      if (killAfter === undefined && code !== 0) reject(new Error(`child exited ${code}: ${stderr}`))
      else resolve({ lines, code, signal })
    })
  })
}

async function pinsOf(k: Kubo): Promise<string[]> {
  const out = await k.ok(['pin', 'ls', '--type=recursive', '--quiet'])
  return out.split('\n').filter(Boolean).sort()
}

async function audit(): Promise<unknown[]> {
  const db = await openDatabase(dbPath)
  const files: unknown[] = []
  try {
    await auditMirror(
      db,
      openMirrorIndex(db, 'm', tree),
      { n: 2 },
      {
        onFile: (f) =>
          files.push({
            path: f.path,
            cid: f.cid,
            verified: f.verified,
            verdict: f.verdict,
            holders: f.copies.map((c) => `${c.holder}:${c.status}`).sort(),
          }),
      },
    )
  } finally {
    await db.close()
  }
  return files
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'cidmirror-repl-kill-'))
  tree = join(dir, 'mirror')
  for (let i = 0; i < FILES; i++) {
    const p = join(tree, `pool/${i % 12}`, `f${i}.deb`)
    mkdirSync(join(p, '..'), { recursive: true })
    writeFileSync(p, randomBytes(8192 + i))
  }
  dbPath = join(dir, 'db')
  kubos = await Kubo.swarm(3, { parent: dir, filestore: true })
  const db = await openDatabase(dbPath)
  const a = new KuboNode({ api: kubos[0]!.api, local: true })
  try {
    const idx = openMirrorIndex(db, 'm', tree)
    const s = await idx.scan()
    await publishMirror(db, idx, a, { since: s.id })
  } finally {
    await a.close()
    await db.close()
  }
}, 180_000)

afterAll(async () => {
  await disposeAll(kubos ?? [])
  rmSync(dir, { recursive: true, force: true })
})

describe('kill -9 during a replication', () => {
  it('the restart stores nothing done before the kill, finishes, and a further restart changes nothing', async () => {
    // A new repo already pins Kubo's init documents: only what the replicator adds is ours.
    const baseline = new Set(await pinsOf(kubos[1]!))
    const first = await runChild(40)
    expect(first.signal).toBe('SIGKILL')
    const doneBefore = new Set(
      first.lines.filter((l) => l.state === 'satisfied').map((l) => l.processed!.slice(4)),
    )
    expect(doneBefore.size).toBeGreaterThan(0)
    expect(doneBefore.size).toBeLessThan(FILES)

    const second = await runChild()
    expect(second.lines.at(-1)).toEqual({ done: FILES })
    const storedAgain = second.lines.filter((l) => l.msg === 'stored' && doneBefore.has(l.cid!))
    expect(storedAgain).toEqual([])
    // Nothing forgotten: every file is pinned on both targets, once.
    const pinsB = await pinsOf(kubos[1]!)
    const pinsC = await pinsOf(kubos[2]!)
    expect(pinsB.filter((c) => !baseline.has(c))).toHaveLength(FILES)
    expect(pinsC).toEqual(pinsB)
    // Every store in both runs was of a distinct (CID, target): a logged store is a pin that landed,
    // and the restart checks before it stores.
    const stores = [...first.lines, ...second.lines]
      .filter((l) => l.msg === 'stored')
      .map((l) => `${l.cid} ${l.target}`)
    expect(stores.length).toBe(new Set(stores).size)
    const before = await audit()
    expect(before).toHaveLength(FILES)
    expect(before.every((f) => (f as { verdict: string }).verdict === 'ok')).toBe(true)

    const third = await runChild()
    expect(third.lines.filter((l) => l.msg === 'stored' || l.processed)).toEqual([])
    expect(await pinsOf(kubos[1]!)).toEqual(pinsB)
    expect(await pinsOf(kubos[2]!)).toEqual(pinsC)
    expect(await audit()).toEqual(before)
  }, 300_000)
})
