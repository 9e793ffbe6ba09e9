/**
 * A room is a folder of src/ with a face, its index.ts: code outside the room imports that file only,
 * so a room can move its insides without touching its callers (DEVELOPING.md).
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs'
import { dirname, join, relative, resolve, sep } from 'node:path'
import { describe, expect, it } from 'vitest'

const SRC = resolve(import.meta.dirname, '../src')

const rooms = readdirSync(SRC, { withFileTypes: true })
  .filter((e) => e.isDirectory() && existsSync(join(SRC, e.name, 'index.ts')))
  .map((e) => e.name)

const files = readdirSync(SRC, { recursive: true, withFileTypes: true })
  .filter((e) => e.isFile() && e.name.endsWith('.ts'))
  .map((e) => join(e.parentPath, e.name))

/** Relative specifiers of static imports, re-exports and `import()` in a source text. */
function specifiers(text: string): string[] {
  return [...text.matchAll(/(?:\bfrom\s*|\bimport\s*\(\s*)'(\.{1,2}\/[^']+)'/g)].map((m) => m[1]!)
}

/** `file -> target` for each import from outside a room into one of its files other than its face. */
function pastTheFace(sources: Map<string, string>): string[] {
  const out: string[] = []
  for (const [file, text] of sources) {
    for (const spec of specifiers(text)) {
      const target = resolve(dirname(file), spec)
      const [room, ...rest] = relative(SRC, target).split(sep)
      if (!room || !rooms.includes(room) || rest.length === 0) continue
      if (relative(SRC, file).split(sep)[0] === room) continue
      if (rest.join('/') !== 'index.ts') out.push(`${relative(SRC, file)} -> ${relative(SRC, target)}`)
    }
  }
  return out
}

describe('room faces', () => {
  it('knows the rooms', () => {
    expect(rooms).toEqual(expect.arrayContaining(['cid', 'daemon', 'index', 'sync']))
  })

  it('outside a room, only its index.ts is imported', () => {
    expect(pastTheFace(new Map(files.map((f) => [f, readFileSync(f, 'utf8')])))).toEqual([])
  })

  it('catches an import past a face (the check above can fail)', () => {
    const probe = new Map([
      [
        join(SRC, 'daemon', 'probe.ts'),
        `import { Worker } from '../sync/worker/worker.ts'\nimport { x } from './jobs.ts'\n` +
          `const m = await import('../sync/config/index.ts')\nimport type { Y } from '../sync/index.ts'`,
      ],
    ])
    expect(pastTheFace(probe)).toEqual([
      'daemon/probe.ts -> sync/worker/worker.ts',
      'daemon/probe.ts -> sync/config/index.ts',
    ])
  })
})
