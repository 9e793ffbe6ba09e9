/**
 * The walker thread: a depth-first walk with sync `readdirSync` + `lstatSync` (far faster than async fs,
 * see MEASURED.md), each directory listed in UTF-8 name order, entries sent to the main thread in
 * batches. A shared counter of unconsumed batches holds the walker back (bounded memory).
 *
 * `walkerMain` runs from its source text (`new Worker(src, { eval: true })`), so the thread starts
 * without a module loader or the TypeScript stripper (each costs tens of milliseconds and ~15 MB per
 * thread). It must therefore be self-contained: no imports (built-ins come from
 * `process.getBuiltinModule`), no references to anything outside its body.
 */
import type { WalkerData, WalkMessage } from './walk-protocol.ts'

export function walkerMain(): void {
  const fs = process.getBuiltinModule('node:fs') as typeof import('node:fs')
  const wt = process.getBuiltinModule('node:worker_threads') as typeof import('node:worker_threads')
  const lstatSync = fs.lstatSync
  const readdirSync = fs.readdirSync
  const data = wt.workerData as WalkerData
  const port = wt.parentPort!
  const credits = new Int32Array(data.credits)
  const BATCH = data.batch
  const S_IFMT = 0o170000
  const S_IFREG = 0o100000
  const S_IFDIR = 0o040000
  const S_IFLNK = 0o120000

  let keys: string[] = []
  let nums = new Float64Array(BATCH * 5)

  const flush = (): void => {
    if (keys.length === 0) return
    for (;;) {
      const inFlight = Atomics.load(credits, 0)
      if (inFlight < data.maxBatches) break
      Atomics.wait(credits, 0, inFlight, 1000)
    }
    Atomics.add(credits, 0, 1)
    const msg: WalkMessage = { type: 'batch', keys: keys.join('/'), nums: nums.subarray(0, keys.length * 5) }
    port.postMessage(msg, [nums.buffer])
    keys = []
    nums = new Float64Array(BATCH * 5)
  }

  // Sorting as keys.ts `sortNames` does (UTF-8 byte order); a copy, since this body stands alone.
  const HIGH = /[\ud800-\uffff]/
  const fix = (c: number): number => (c >= 0xe000 ? c - 0x800 : c + 0x2000)
  const compareUtf8 = (a: string, b: string): number => {
    const n = Math.min(a.length, b.length)
    for (let i = 0; i < n; i++) {
      let x = a.charCodeAt(i)
      let y = b.charCodeAt(i)
      if (x !== y) {
        if (x >= 0xd800 && y >= 0xd800) {
          x = fix(x)
          y = fix(y)
        }
        return x < y ? -1 : 1
      }
    }
    return a.length - b.length
  }
  const sortNames = (names: string[]): string[] => {
    for (const n of names) if (HIGH.test(n)) return names.sort(compareUtf8)
    return names.sort()
  }

  function fail(path: string, err: unknown): never {
    const e = err as NodeJS.ErrnoException
    const msg: WalkMessage = { type: 'error', path, code: e.code ?? '', message: e.message }
    port.postMessage(msg)
    process.exit(0)
  }

  const list = (path: string): string[] | undefined => {
    try {
      return sortNames(readdirSync(path))
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code
      if (code === 'ENOENT' || code === 'ENOTDIR') return undefined // vanished while walking
      fail(path, err)
    }
  }

  /** Adds one entry; kind 0 file, 1 directory, 2 symlink; -1 (sockets, FIFOs, devices) is skipped. */
  const emit = (key: string, st: import('node:fs').Stats): number => {
    const t = st.mode & S_IFMT
    const kind = t === S_IFREG ? 0 : t === S_IFDIR ? 1 : t === S_IFLNK ? 2 : -1
    if (kind < 0) return kind
    const o = keys.length * 5
    keys.push(key)
    nums[o] = kind
    nums[o + 1] = kind === 1 ? 0 : st.size
    nums[o + 2] = st.mtimeMs
    nums[o + 3] = st.ctimeMs
    nums[o + 4] = st.ino
    if (keys.length === BATCH) flush()
    return kind
  }

  interface Frame {
    path: string
    /** The directory's key followed by `\x00` ('' for the root). */
    keyPrefix: string
    names: string[]
    i: number
  }

  const root = data.root
  let st: import('node:fs').Stats
  try {
    st = lstatSync(root)
  } catch (err) {
    fail(root, err)
  }
  emit('', st)
  const stack: Frame[] = []
  const rootNames = list(root)
  if (rootNames) stack.push({ path: `${root}/`, keyPrefix: '', names: rootNames, i: 0 })
  while (stack.length > 0) {
    const f = stack[stack.length - 1]!
    if (f.i === f.names.length) {
      stack.pop()
      continue
    }
    const name = f.names[f.i++]!
    const path = f.path + name
    const s = lstatSync(path, { throwIfNoEntry: false })
    if (!s) continue
    const key = f.keyPrefix + name
    if (emit(key, s) === 1) {
      const sub = list(path)
      if (sub && sub.length > 0) stack.push({ path: `${path}/`, keyPrefix: `${key}\x00`, names: sub, i: 0 })
    }
  }
  flush()
  port.postMessage({ type: 'done' } satisfies WalkMessage)
}
