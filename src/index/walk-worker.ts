/**
 * The walker thread: a depth-first walk with sync `readdirSync` + `lstatSync` (far faster than async fs,
 * see MEASURED.md), each directory listed in UTF-8 name order, entries sent to the main thread in
 * batches. A shared counter of unconsumed batches holds the walker back (bounded memory).
 *
 * With a stat cache to compare against (statcache.ts), the walker first only compares: while every
 * entry equals the cache's, in order, it sends nothing, and a walk that matches to the end is reported as
 * `identical` (an unchanged rescan: the main thread has nothing to merge). At the first difference it
 * replays the matched entries from the cache as batches and goes on as a plain walk. A plain walk writes
 * the stat cache of what it sent, for the next scan.
 *
 * `walkerMain` runs from its source text (`new Worker(src, { eval: true })`), so the thread starts
 * without a module loader or the TypeScript stripper (each costs tens of milliseconds and ~15 MB per
 * thread). It must therefore be self-contained: no imports (built-ins come from
 * `process.getBuiltinModule`), no references to anything outside its body.
 */
import type { WalkerData, WalkMessage } from './walk-protocol.ts'

export function walkerMain(): void {
  const fs = process.getBuiltinModule('node:fs') as typeof import('node:fs')
  const crypto = process.getBuiltinModule('node:crypto') as typeof import('node:crypto')
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

  // The stat cache (format in statcache.ts; a copy of it here, since this body stands alone).
  const MAGIC = 'CIDMSC01'
  const ENTRY = 37
  const FOOTER = 33
  const SUM = 32
  const counts = { files: 0, dirs: 0, bytes: 0 }

  interface Cache {
    buf: Buffer
    start: number
    pos: number
    end: number
  }
  const openCache = (file: string, token: number, root: string): Cache | undefined => {
    let buf: Buffer
    try {
      buf = fs.readFileSync(file)
    } catch {
      return undefined
    }
    if (buf.length < 12 + FOOTER + SUM || buf.toString('latin1', 0, 8) !== MAGIC) return undefined
    const sum = crypto.hash('sha256', buf.subarray(0, buf.length - SUM), 'buffer') as Buffer
    if (!sum.equals(buf.subarray(buf.length - SUM))) return undefined
    const hl = buf.readUInt32LE(8)
    const end = buf.length - SUM - FOOTER
    if (12 + hl > end || buf[end] !== 0xff) return undefined
    let header: { token?: unknown; root?: unknown }
    try {
      header = JSON.parse(buf.toString('utf8', 12, 12 + hl))
    } catch {
      return undefined
    }
    if (header.token !== token || header.root !== root) return undefined
    return { buf, start: 12 + hl, pos: 12 + hl, end }
  }
  let cmp = data.compare ? openCache(data.compare.file, data.compare.token, data.root) : undefined

  // The writer of this walk's stat cache: opened with the first entry sent, off after any error.
  let wfd = -1
  let wbuf: Buffer | undefined
  let wpos = 0
  let wn = 0
  let whash: import('node:crypto').Hash | undefined
  let wfailed = !data.write
  const wfail = (): void => {
    wfailed = true
    if (wfd >= 0) {
      try {
        fs.closeSync(wfd)
        fs.unlinkSync(data.write!.file)
      } catch {}
    }
    wfd = -1
    wbuf = undefined
  }
  const wflush = (): void => {
    if (wpos === 0) return
    const chunk = wbuf!.subarray(0, wpos)
    whash!.update(chunk)
    let off = 0
    while (off < wpos) off += fs.writeSync(wfd, chunk, off, wpos - off)
    wpos = 0
  }
  const wopen = (): void => {
    try {
      wfd = fs.openSync(data.write!.file, 'w', 0o600)
      wbuf = Buffer.allocUnsafe(1 << 20)
      whash = crypto.createHash('sha256')
      wbuf.write(MAGIC, 0, 'latin1')
      const hl = wbuf.write(JSON.stringify({ token: data.write!.token, root: data.root }), 12, 'utf8')
      wbuf.writeUInt32LE(hl, 8)
      wpos = 12 + hl
    } catch {
      wfail()
    }
  }
  const wentry = (
    key: string,
    kind: number,
    size: number,
    mtime: number,
    ctime: number,
    ino: number,
  ): void => {
    if (wfailed) return
    try {
      if (wfd < 0) wopen()
      if (wfailed) return
      let b = wbuf!
      const need = ENTRY + key.length * 3
      if (wpos + need > b.length) {
        wflush()
        if (need > b.length) {
          b = Buffer.allocUnsafe(need * 2)
          wbuf = b
        }
      }
      const kl = b.write(key, wpos + ENTRY, 'utf8')
      b[wpos] = kind
      b.writeUInt32LE(kl, wpos + 1)
      b.writeDoubleLE(size, wpos + 5)
      b.writeDoubleLE(mtime, wpos + 13)
      b.writeDoubleLE(ctime, wpos + 21)
      b.writeDoubleLE(ino, wpos + 29)
      wpos += ENTRY + kl
      wn++
    } catch {
      wfail()
    }
  }
  const wclose = (): boolean => {
    if (wfailed) return false
    try {
      if (wfd < 0) wopen()
      if (wfailed) return false
      if (wpos + FOOTER > wbuf!.length) wflush()
      const b = wbuf!
      b[wpos] = 0xff
      b.writeDoubleLE(wn, wpos + 1)
      b.writeDoubleLE(counts.files, wpos + 9)
      b.writeDoubleLE(counts.dirs, wpos + 17)
      b.writeDoubleLE(counts.bytes, wpos + 25)
      wpos += FOOTER
      wflush()
      fs.writeSync(wfd, whash!.digest())
      fs.fsyncSync(wfd)
      fs.closeSync(wfd)
      wfd = -1
      return true
    } catch {
      wfail()
      return false
    }
  }

  /** Sends one entry (kind 0 file, 1 directory, 2 symlink) to the main thread and the cache writer. */
  const send = (key: string, kind: number, size: number, mtime: number, ctime: number, ino: number): void => {
    const o = keys.length * 5
    keys.push(key)
    nums[o] = kind
    nums[o + 1] = size
    nums[o + 2] = mtime
    nums[o + 3] = ctime
    nums[o + 4] = ino
    wentry(key, kind, size, mtime, ctime, ino)
    if (keys.length === BATCH) flush()
  }

  /** Leaves compare mode: the entries matched so far are sent from the cache, as the walk saw them. */
  const replay = (): void => {
    const c = cmp!
    cmp = undefined
    const b = c.buf
    for (let p = c.start; p < c.pos; ) {
      const kl = b.readUInt32LE(p + 1)
      const key = b.toString('utf8', p + ENTRY, p + ENTRY + kl)
      send(
        key,
        b[p]!,
        b.readDoubleLE(p + 5),
        b.readDoubleLE(p + 13),
        b.readDoubleLE(p + 21),
        b.readDoubleLE(p + 29),
      )
      p += ENTRY + kl
    }
  }

  /** In compare mode: whether the next cache entry is this one (and if so, step past it). */
  const matches = (
    key: string,
    kind: number,
    size: number,
    mtime: number,
    ctime: number,
    ino: number,
  ): boolean => {
    const c = cmp!
    const b = c.buf
    const p = c.pos
    if (p >= c.end || b[p] !== kind) return false
    if (
      b.readDoubleLE(p + 5) !== size ||
      b.readDoubleLE(p + 13) !== mtime ||
      b.readDoubleLE(p + 21) !== ctime ||
      b.readDoubleLE(p + 29) !== ino
    )
      return false
    const kl = b.readUInt32LE(p + 1)
    if (b.toString('utf8', p + ENTRY, p + ENTRY + kl) !== key) return false
    c.pos = p + ENTRY + kl
    return true
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
    const size = kind === 1 ? 0 : st.size
    if (kind === 1) counts.dirs++
    else {
      counts.files++
      if (kind === 0) counts.bytes += size
    }
    if (cmp) {
      if (matches(key, kind, size, st.mtimeMs, st.ctimeMs, st.ino)) return kind
      replay()
    }
    send(key, kind, size, st.mtimeMs, st.ctimeMs, st.ino)
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
  if (cmp) {
    if (cmp.pos === cmp.end) {
      port.postMessage({ type: 'identical', counts } satisfies WalkMessage)
      return
    }
    replay() // the cache holds entries no longer on disk
  }
  flush()
  const cacheWritten = wclose()
  port.postMessage({ type: 'done', cacheWritten } satisfies WalkMessage)
}
