/**
 * The one error model: every code is a row of src/error-codes.ts, spelled nowhere else in src/, carried
 * by exactly one error class, and listed in docs/errors.md with the same exit and HTTP status.
 */
import { spawnSync } from 'node:child_process'
import { readdirSync, readFileSync } from 'node:fs'
import { join, relative, resolve } from 'node:path'
import ts from 'typescript'
import { describe, expect, it } from 'vitest'
import { ERROR_CODES, type ErrorCodeInfo, errorCode, errorInfo } from '../src/error-codes.ts'

const ROOT = resolve(import.meta.dirname, '..')
const SRC = join(ROOT, 'src')
const REGISTRY = join(SRC, 'error-codes.ts')
const KEYS = new Set(Object.keys(ERROR_CODES))

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true, recursive: true })
    .filter((e) => e.isFile() && e.name.endsWith('.ts'))
    .map((e) => join(e.parentPath, e.name))
    .sort()
}

interface ErrorClass {
  name: string
  file: string
  keys: Set<string>
}

/**
 * The classes extending CidmirrorError (directly or not) in `files` (path -> source), each with the
 * table keys it uses: string literals in its body (`super('DB_LOCKED', ...)`) and in the arguments of
 * `new ThatClass(...)` anywhere (a family class as ConfigError takes its key from the caller).
 */
function errorClasses(files: Map<string, string>): ErrorClass[] {
  const parentOf = new Map<string, string>()
  const declared: { name: string; file: string; node: ts.ClassDeclaration }[] = []
  const news: { callee: string; node: ts.NewExpression }[] = []
  for (const [file, text] of files) {
    const sf = ts.createSourceFile(file, text, ts.ScriptTarget.Latest, true, ts.ScriptKind.TS)
    const visit = (node: ts.Node): void => {
      if (ts.isClassDeclaration(node) && node.name) {
        declared.push({ name: node.name.text, file, node })
        const ext = node.heritageClauses?.find((h) => h.token === ts.SyntaxKind.ExtendsKeyword)
        const base = ext?.types[0]?.expression
        if (base && ts.isIdentifier(base)) parentOf.set(node.name.text, base.text)
      }
      if (ts.isNewExpression(node) && ts.isIdentifier(node.expression))
        news.push({ callee: node.expression.text, node })
      ts.forEachChild(node, visit)
    }
    visit(sf)
  }
  const isError = (name: string): boolean => {
    for (let n: string | undefined = name, hops = 0; n && hops < 20; n = parentOf.get(n), hops++)
      if (n === 'CidmirrorError') return true
    return false
  }
  const literals = (node: ts.Node, into: Set<string>): void => {
    if (ts.isStringLiteralLike(node) && KEYS.has(node.text)) into.add(node.text)
    ts.forEachChild(node, (c) => literals(c, into))
  }
  const classes = new Map<string, ErrorClass>()
  for (const d of declared) {
    if (d.name === 'CidmirrorError' || !isError(d.name)) continue
    const c = classes.get(d.name) ?? { name: d.name, file: relative(ROOT, d.file), keys: new Set<string>() }
    if (classes.has(d.name)) c.file += `, ${relative(ROOT, d.file)}`
    literals(d.node, c.keys)
    classes.set(d.name, c)
  }
  for (const n of news) {
    const c = classes.get(n.callee)
    if (c) for (const arg of n.node.arguments ?? []) literals(arg, c.keys)
  }
  return [...classes.values()]
}

/** Codes carried by more than one class, with those classes. */
function sharedCodes(classes: ErrorClass[]): Record<string, string[]> {
  const owners = new Map<string, string[]>()
  for (const c of classes) for (const k of c.keys) owners.set(k, [...(owners.get(k) ?? []), c.name])
  return Object.fromEntries([...owners].filter(([, names]) => names.length > 1))
}

const files = new Map(sourceFiles(SRC).map((f) => [f, readFileSync(f, 'utf8')]))

describe('the error code table', () => {
  it('has well-formed rows: a key, a room, a CLI exit status, an HTTP error status where there is one', () => {
    for (const [key, info] of Object.entries(ERROR_CODES) as [string, ErrorCodeInfo][]) {
      expect(key).toMatch(/^[A-Z][A-Z0-9]*(_[A-Z0-9]+)*$/)
      expect([1, 2, 70], key).toContain(info.exit)
      if (info.http !== undefined) expect(info.http >= 400 && info.http <= 599, key).toBe(true)
      expect(info.summary.length, key).toBeGreaterThan(10)
      expect(errorInfo(errorCode(key as keyof typeof ERROR_CODES))).toBe(info)
    }
    expect(errorInfo('CIDMIRROR_ERR_NO_SUCH_THING')).toBeUndefined()
    expect(errorInfo('toString')).toBeUndefined()
  })

  it('is the only place in src/ that spells a full code', () => {
    const spelled = [...files]
      .filter(([f, text]) => f !== REGISTRY && /CIDMIRROR_ERR_[A-Z]/.test(text))
      .map(([f]) => relative(ROOT, f))
    expect(spelled).toEqual([])
  })

  it('gives each code to exactly one class, and every class a code of the table', () => {
    const classes = errorClasses(files)
    // The test knows the classes it should: a sample from each room.
    const names = classes.map((c) => c.name)
    for (const n of ['DatabaseLockedError', 'UsageError', 'PathNotFoundError', 'MirrorRootNotFoundError'])
      expect(names).toContain(n)
    for (const n of ['ConfigError', 'ProviderError', 'HookError', 'UnauthorizedError', 'RemoteError'])
      expect(names).toContain(n)
    expect(sharedCodes(classes)).toEqual({})
    // One class per name, so that `instanceof` and the docs mean one thing.
    expect(classes.filter((c) => c.file.includes(',')).map((c) => `${c.name}: ${c.file}`)).toEqual([])
    // ApiError is the base of the API's classes and takes its key from them.
    const keyless = classes.filter((c) => c.keys.size === 0).map((c) => c.name)
    expect(keyless.sort()).toEqual(['ApiError'])
  })

  it('has no row that no code in src/ uses', () => {
    const used = new Set<string>()
    for (const [f, text] of files) {
      if (f === REGISTRY) continue
      for (const m of text.matchAll(/'([A-Z][A-Z0-9_]+)'/g)) used.add(m[1]!)
    }
    expect([...KEYS].filter((k) => !used.has(k))).toEqual([])
  })

  it('finds a code shared by two classes (the check above can fail)', () => {
    const twin = new Map([
      [
        'a.ts',
        `class A extends CidmirrorError { constructor() { super('DB_LOCKED', 'a') } }
         class B extends A {}
         class C extends B { constructor() { super(); void 'UNREADABLE' } }`,
      ],
      ['b.ts', `class D extends CidmirrorError { constructor() { super('UNREADABLE', 'd') } }`],
      ['c.ts', `class F extends CidmirrorError {}; new F('DB_LOCKED', 'f'); class G extends Error {}`],
    ])
    const classes = errorClasses(twin)
    expect(classes.map((c) => c.name).sort()).toEqual(['A', 'B', 'C', 'D', 'F'])
    expect(sharedCodes(classes)).toEqual({ DB_LOCKED: ['A', 'F'], UNREADABLE: ['C', 'D'] })
  })
})

describe('docs/errors.md', () => {
  it('lists every code of the table, with its exit status and HTTP status, and no other', () => {
    const doc = readFileSync(join(ROOT, 'docs/errors.md'), 'utf8')
    const rows = new Map<string, { exit: number; http: number | undefined }>()
    for (const m of doc.matchAll(/^\|\s*`CIDMIRROR_ERR_([A-Z0-9_]+)`\s*\|\s*(\d+)\s*\|\s*(\d*)\s*\|/gm)) {
      expect(rows.has(m[1]!), `listed twice: ${m[1]}`).toBe(false)
      rows.set(m[1]!, { exit: Number(m[2]), http: m[3] ? Number(m[3]) : undefined })
    }
    const table = Object.fromEntries(
      (Object.entries(ERROR_CODES) as [string, ErrorCodeInfo][]).map(([k, i]) => [
        k,
        { exit: i.exit, http: i.http },
      ]),
    )
    expect(Object.fromEntries(rows)).toEqual(table)
  })
})

describe('the CLI exit status', () => {
  const MAIN = join(SRC, 'cli/main.ts')
  const run = (args: string[]) => spawnSync(process.execPath, [MAIN, ...args], { encoding: 'utf8' })

  it('is 2 for a command-line mistake commander finds, 0 for --help', () => {
    const bad = run(['index', '--no-such-option'])
    expect(bad.status).toBe(2)
    expect(bad.stderr).toMatch(/unknown option/)
    expect(run(['--help']).status).toBe(0)
  })
})
