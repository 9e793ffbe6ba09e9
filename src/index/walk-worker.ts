/**
 * A walker thread: a depth-first walk with sync `readdirSync` + `lstatSync` (far faster than async fs,
 * whose every call is a trip through the thread pool), each directory listed in UTF-8 name order,
 * entries sent to the main thread in batches. A shared counter of unconsumed batches holds the walker
 * back (bounded memory).
 *
 * The walk may be split over several threads by key (walk-protocol.ts `WalkerData`): a thread whose
 * part starts at key `lo` lists the directories above `lo` and starts inside them; one whose part ends
 * at `hi` stops at the first key >= `hi`. Key order is walk order, so the parts, taken in order, are
 * exactly the one-thread walk.
 *
 * With a stat cache to compare against (statcache.ts), the walker first only compares: while every
 * entry equals the cache's, in order, it sends nothing, and a part that matches to its end is reported
 * as `identical`; the thread then waits for the scanner's verdict (all parts identical: nothing to
 * merge; else `replay`). At the first difference it replays the matched entries from the cache as
 * batches and goes on as a plain walk. A plain walk writes the stat cache of what it sent, for the next
 * scan.
 *
 * A first scan (nothing stored, no stat cache) walks `listed`: regular files, known as such from the
 * directory listing itself, are sent without an lstat, since there is nothing to compare them with; the
 * hash worker stats each one on the descriptor it opens to hash it (one path lookup per file, not two).
 *
 * `walkerMain` runs from its source text (`new Worker(src, { eval: true })`), so the thread starts
 * without a module loader or the TypeScript stripper (each costs tens of milliseconds and ~15 MB per
 * thread). It must therefore be self-contained: no imports (built-ins come from
 * `process.getBuiltinModule`), no references to anything outside its body. What it shares with the
 * main thread comes in instead: the constants in its `WalkerData` (entry kinds, the batch and stat
 * cache layouts, the replay word), and the name order as keys.ts `utf8Order`, whose source text walker.ts passes.
 */
import type { utf8Order } from './keys.ts'
import type { WalkerData, WalkMessage, WalkPartConfig } from './walk-protocol.ts'

export function walkerMain(makeUtf8Order: typeof utf8Order): void {
  const fs = process.getBuiltinModule('node:fs') as typeof import('node:fs')
  const crypto = process.getBuiltinModule('node:crypto') as typeof import('node:crypto')
  const wt = process.getBuiltinModule('node:worker_threads') as typeof import('node:worker_threads')
  const lstatSync = fs.lstatSync
  const readdirSync = fs.readdirSync
  const data = wt.workerData as WalkerData
  let part: WalkPartConfig = {}
  const port = wt.parentPort!
  const me = data.index
  const parts = data.parts
  const ctl = new Int32Array(data.ctl)
  const stats = new Float64Array(data.stats)
  const CREDITS = me
  const SEGDONE = parts + me
  const ID = 2 * parts
  const BATCH = data.batch
  const NUMS = data.numsPerEntry
  const { File: FILE, Dir: DIR, Symlink: SYMLINK, Absent: ABSENT } = data.kind
  const S_IFMT = 0o170000
  const S_IFREG = 0o100000
  const S_IFDIR = 0o040000
  const S_IFLNK = 0o120000

  let keys: string[] = []
  let nums = new Float64Array(BATCH * NUMS)

  const flush = (): void => {
    if (keys.length === 0) return
    for (;;) {
      const inFlight = Atomics.load(ctl, CREDITS)
      if (inFlight < data.maxBatches) break
      Atomics.wait(ctl, CREDITS, inFlight, 1000)
    }
    Atomics.add(ctl, CREDITS, 1)
    const msg: WalkMessage = {
      type: 'batch',
      keys: keys.join('/'),
      nums: nums.subarray(0, keys.length * NUMS),
    }
    port.postMessage(msg, [nums.buffer])
    keys = []
    nums = new Float64Array(BATCH * NUMS)
  }

  // The stat cache (format in statcache.ts, its layout in `data.layout`).
  const MAGIC = data.layout.magic
  const MARK = data.layout.footerMark
  const {
    kind: E_KIND,
    keyLength: E_KEY_LENGTH,
    size: E_SIZE,
    mtimeMs: E_MTIME,
    ctimeMs: E_CTIME,
    ino: E_INO,
    key: ENTRY,
  } = data.layout.entry
  const {
    mark: F_MARK,
    entries: F_ENTRIES,
    files: F_FILES,
    dirs: F_DIRS,
    bytes: F_BYTES,
  } = data.layout.footer
  const FOOTER = data.layout.footer.header
  const counts = { files: 0, dirs: 0, bytes: 0 }

  interface Cache {
    buf: Buffer
    start: number
    pos: number
    end: number
  }
  let cmp: Cache | undefined

  // The writer of this walk's stat cache: opened with the first entry sent (or at the end), off after
  // any error. Thread 0 writes the file itself, the others a part file that thread 0 appends.
  const wfile = data.write === undefined ? '' : me === 0 ? data.write : `${data.write}.${me}`
  let wfd = -1
  let wbuf: Buffer | undefined
  let wpos = 0
  let wn = 0
  let whash: import('node:crypto').Hash | undefined
  let wfailed = data.write === undefined
  const wfail = (): void => {
    wfailed = true
    if (wfd >= 0) {
      try {
        fs.closeSync(wfd)
        fs.unlinkSync(wfile)
      } catch {}
    }
    wfd = -1
    wbuf = undefined
  }
  const wwrite = (chunk: Buffer): void => {
    whash?.update(chunk)
    let off = 0
    while (off < chunk.length) off += fs.writeSync(wfd, chunk, off, chunk.length - off)
  }
  const wflush = (): void => {
    if (wpos === 0) return
    wwrite(wbuf!.subarray(0, wpos))
    wpos = 0
  }
  const wopen = (): void => {
    try {
      wfd = fs.openSync(wfile, 'w', 0o600)
      wbuf = Buffer.allocUnsafe(1 << 20)
      if (me === 0) {
        whash = crypto.createHash('sha256')
        wbuf.write(MAGIC, 0, 'latin1')
        wpos = MAGIC.length
      }
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
      b[wpos + E_KIND] = kind
      b.writeUInt32LE(kl, wpos + E_KEY_LENGTH)
      b.writeDoubleLE(size, wpos + E_SIZE)
      b.writeDoubleLE(mtime, wpos + E_MTIME)
      b.writeDoubleLE(ctime, wpos + E_CTIME)
      b.writeDoubleLE(ino, wpos + E_INO)
      wpos += ENTRY + kl
      wn++
    } catch {
      wfail()
    }
  }
  /** Waits until the control word `i` is no longer 0; gives its value. */
  const waitSet = (i: number): number => {
    for (;;) {
      const v = Atomics.load(ctl, i)
      if (v !== 0) return v
      Atomics.wait(ctl, i, 0, 1000)
    }
  }
  /** Thread i > 0: completes its part file and tells thread 0. */
  const wclosePart = (): void => {
    let ok = false
    try {
      if (!wfailed && wfd < 0) wopen()
      if (!wfailed) {
        wflush()
        fs.closeSync(wfd)
        wfd = -1
        stats[4 * me] = wn
        stats[4 * me + 1] = counts.files
        stats[4 * me + 2] = counts.dirs
        stats[4 * me + 3] = counts.bytes
        ok = true
      }
    } catch {
      wfail()
    }
    Atomics.store(ctl, SEGDONE, ok ? 1 : 2)
    Atomics.notify(ctl, SEGDONE)
  }
  /** Thread 0: appends the other parts, then the footer (with the scan id) and the checksum. */
  const wclose = (): boolean => {
    if (wfailed) return false
    try {
      if (wfd < 0) wopen()
      if (wfailed) return false
      wflush()
      let entries = wn
      let files = counts.files
      let dirs = counts.dirs
      let bytes = counts.bytes
      const b = wbuf!
      for (let i = 1; i < parts; i++) {
        if (waitSet(parts + i) !== 1) throw new Error('part not written')
        const part = `${data.write}.${i}`
        const fd = fs.openSync(part, 'r')
        try {
          for (;;) {
            const n = fs.readSync(fd, b, 0, b.length, null)
            if (n === 0) break
            wwrite(b.subarray(0, n))
          }
        } finally {
          fs.closeSync(fd)
        }
        fs.unlinkSync(part)
        entries += stats[4 * i]!
        files += stats[4 * i + 1]!
        dirs += stats[4 * i + 2]!
        bytes += stats[4 * i + 3]!
      }
      const id = waitSet(ID)
      b[F_MARK] = MARK
      b.writeDoubleLE(entries, F_ENTRIES)
      b.writeDoubleLE(files, F_FILES)
      b.writeDoubleLE(dirs, F_DIRS)
      b.writeDoubleLE(bytes, F_BYTES)
      const hl = b.write(JSON.stringify({ token: id, root: data.root }), FOOTER, 'utf8')
      b.writeUInt32LE(hl, FOOTER + hl)
      wwrite(b.subarray(0, FOOTER + hl + 4))
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

  /** Sends one entry to the main thread and the cache writer. */
  const send = (key: string, kind: number, size: number, mtime: number, ctime: number, ino: number): void => {
    const o = keys.length * NUMS
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
      const kl = b.readUInt32LE(p + E_KEY_LENGTH)
      const key = b.toString('utf8', p + ENTRY, p + ENTRY + kl)
      send(
        key,
        b[p + E_KIND]!,
        b.readDoubleLE(p + E_SIZE),
        b.readDoubleLE(p + E_MTIME),
        b.readDoubleLE(p + E_CTIME),
        b.readDoubleLE(p + E_INO),
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
    if (p >= c.end || b[p + E_KIND] !== kind) return false
    if (
      b.readDoubleLE(p + E_SIZE) !== size ||
      b.readDoubleLE(p + E_MTIME) !== mtime ||
      b.readDoubleLE(p + E_CTIME) !== ctime ||
      b.readDoubleLE(p + E_INO) !== ino
    )
      return false
    const kl = b.readUInt32LE(p + E_KEY_LENGTH)
    if (p + ENTRY + kl > c.end || b.toString('utf8', p + ENTRY, p + ENTRY + kl) !== key) return false
    c.pos = p + ENTRY + kl
    return true
  }

  // Names in UTF-8 byte order, the scanner's key order.
  const { compare: compareUtf8, hasHigh, sortNames } = makeUtf8Order()

  function fail(path: string, err: unknown): never {
    const e = err as NodeJS.ErrnoException
    const msg: WalkMessage = { type: 'error', path, code: e.code ?? '', message: e.message }
    Atomics.store(ctl, SEGDONE, 2)
    Atomics.notify(ctl, SEGDONE)
    port.postMessage(msg)
    process.exit(0)
  }

  /**
   * The names in directory `path`, sorted; with `files`, read with their file types and the regular
   * files' names added to it (a listed walk).
   */
  const list = (path: string, files?: Set<string>): string[] | undefined => {
    try {
      if (!files) return sortNames(readdirSync(path))
      const names: string[] = []
      for (const d of readdirSync(path, { withFileTypes: true })) {
        names.push(d.name)
        if (d.isFile()) files.add(d.name)
      }
      return sortNames(names)
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code
      if (code === 'ENOENT' || code === 'ENOTDIR') return undefined // vanished while walking
      fail(path, err)
    }
  }

  /** Adds one entry; gives its kind (sockets, FIFOs and devices are absent: skipped). */
  const emit = (key: string, st: import('node:fs').Stats): number => {
    const t = st.mode & S_IFMT
    const kind = t === S_IFREG ? FILE : t === S_IFDIR ? DIR : t === S_IFLNK ? SYMLINK : ABSENT
    if (kind === ABSENT) return kind
    const size = kind === DIR ? 0 : st.size
    if (kind === DIR) counts.dirs++
    else {
      counts.files++
      if (kind === FILE) counts.bytes += size
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
    /** In a listed walk: the names that are regular files. */
    files: Set<string> | undefined
    i: number
  }

  const finish = (): void => {
    flush()
    port.postMessage({ type: 'done' } satisfies WalkMessage)
    if (data.write === undefined) return
    if (me > 0) wclosePart()
    else port.postMessage({ type: 'cache', written: wclose() } satisfies WalkMessage)
  }

  const root = data.root
  const run = (cfg: WalkPartConfig): void => {
    part = cfg
    if (part.skip) {
      finish()
      return
    }
    const listed = part.listed === true
    if (listed) wfail() // entries without a stat cannot go in the cache
    if (part.compare)
      cmp = {
        buf: Buffer.from(part.compare.sab),
        start: part.compare.start,
        pos: part.compare.start,
        end: part.compare.end,
      }
    const stack: Frame[] = []
    if (part.lo === undefined) {
      let st: import('node:fs').Stats
      try {
        st = lstatSync(root)
      } catch (err) {
        fail(root, err)
      }
      emit('', st)
      const files = listed ? new Set<string>() : undefined
      const rootNames = list(root, files)
      if (rootNames) stack.push({ path: `${root}/`, keyPrefix: '', names: rootNames, files, i: 0 })
    } else {
      // Start inside the directories above `lo`: in each, after the name on the way to `lo` (at `lo`'s
      // own name in the last); those directories themselves belong to an earlier part.
      const names = part.lo.split('\x00')
      let path = `${root}/`
      let keyPrefix = ''
      let listed = list(root)
      for (let d = 0; listed; d++) {
        const name = names[d]!
        const last = d === names.length - 1
        let i = 0
        while (i < listed.length && compareUtf8(listed[i]!, name) < (last ? 0 : 1)) i++
        stack.push({ path, keyPrefix, names: listed, files: undefined, i })
        if (last) break
        const s = lstatSync(path + name, { throwIfNoEntry: false })
        if (!s || (s.mode & S_IFMT) !== S_IFDIR) break
        listed = list(path + name)
        path = `${path}${name}/`
        keyPrefix = `${keyPrefix}${name}\x00`
      }
    }
    const hi = part.hi
    // JavaScript's `<` is UTF-8 order unless both sides hold units >= U+D800 (keys.ts `compareKeys`).
    const hiPlain = hi !== undefined && !hasHigh(hi)
    while (stack.length > 0) {
      const f = stack[stack.length - 1]!
      if (f.i === f.names.length) {
        stack.pop()
        continue
      }
      const name = f.names[f.i++]!
      const key = f.keyPrefix + name
      if (hi !== undefined && (hiPlain ? key >= hi : compareUtf8(key, hi) >= 0)) break
      const path = f.path + name
      if (f.files?.has(name)) {
        counts.files++
        send(key, FILE, Number.NaN, Number.NaN, Number.NaN, Number.NaN)
        continue
      }
      const s = lstatSync(path, { throwIfNoEntry: false })
      if (!s) continue
      if (emit(key, s) === DIR) {
        const files = listed ? new Set<string>() : undefined
        const sub = list(path, files)
        if (sub && sub.length > 0)
          stack.push({ path: `${path}/`, keyPrefix: `${key}\x00`, names: sub, files, i: 0 })
      }
    }

    if (cmp) {
      if (cmp.pos === cmp.end) {
        const c = cmp
        port.on('message', (m: unknown) => {
          if (m !== data.replay || cmp !== c) return
          replay()
          finish()
          port.unref()
        })
        port.postMessage({ type: 'identical', counts } satisfies WalkMessage)
        return
      }
      replay() // the cache holds entries no longer on disk
    }
    finish()
  }
  // The part to walk comes once the scanner has read the stat cache (this thread boots meanwhile).
  port.once('message', run)
}
