import { statSync } from 'node:fs'
import { open } from 'node:fs/promises'
import { join, resolve } from 'node:path'
import { multiaddr } from '@multiformats/multiaddr'
import { create, type KuboRPCClient } from 'kubo-rpc-client'
import type { CID } from 'multiformats/cid'
import { FileChangedError, fsError } from '../cid/index.ts'
import { type CidmirrorError, isCidmirrorError } from '../errors.ts'
import { carOf, entityBlocks, rawLeaves, rootBlock } from './dag-walk.ts'
import {
  BlockNotFoundError,
  FilestoreLayoutError,
  IpfsAuthRefusedError,
  IpfsCommandError,
  IpfsUnreachableError,
  ReferenceMismatchError,
} from './errors.ts'
import { checkFilestoreLayout, filestoreRoot } from './filestore-layout.ts'
import type { IpfsNode } from './index.ts'
import { type FilePart, KuboHttp, multipart, type Params } from './kubo-http.ts'
import type {
  BlockOptions,
  CarOptions,
  DropResult,
  FileToReference,
  FindProvidersOptions,
  PeerInfo,
  PinOptions,
  PinType,
  ReferenceCheck,
  ReferenceOptions,
  ReferenceResult,
  ReferenceStatus,
  Signal,
  VerifyOptions,
} from './types.ts'
import { parseCid, verifyBlock } from './verify-block.ts'

/**
 * `ipfs add` parameters of the `unixfs-v1-2025` profile (IPIP-499) for one file, sent explicitly so a
 * node whose own Import config differs still computes the index's CIDs. No pin, no announcement: those
 * are the caller's decisions.
 */
const ADD_PARAMS: Params = [
  ['nocopy', 'true'],
  ['cid-version', '1'],
  ['raw-leaves', 'true'],
  ['hash', 'sha2-256'],
  ['chunker', 'size-1048576'],
  ['max-file-links', '1024'],
  ['trickle', 'false'],
  ['inline', 'false'],
  ['progress', 'false'],
  ['fast-provide-root', 'false'],
  ['fast-provide-dag', 'false'],
]

/** The MFS folder under which `retain` keeps each mirror's tree. */
const MFS_ROOT = '/cidmirror'

/** A mirror name as one MFS path component (`/` would nest, and MFS rejects an empty name). */
function mfsName(name: string): string {
  return encodeURIComponent(name) || '_'
}

/** The name of the directory part that holds a batch of files (the answers name `batch/<index>`). */
const BATCH_DIR = 'batch'

/** Files, and bytes, per nocopy `add` request of referenceFiles. */
const ADD_BATCH_FILES = 256
const ADD_BATCH_BYTES = 256 * 1024 * 1024

/**
 * The first `size` bytes of a file, read in chunks of at most 1 MiB through one descriptor (a read
 * stream per file costs several times more for the small files most mirrors hold). A file that
 * shrank ends early, which the request's Content-Length then reports.
 */
async function* fileBytes(path: string, size: number): AsyncGenerator<Uint8Array> {
  if (size === 0) return
  const fh = await open(path, 'r')
  try {
    for (let off = 0; off < size; ) {
      const buf = Buffer.allocUnsafe(Math.min(1 << 20, size - off))
      const { bytesRead } = await fh.read(buf, 0, buf.length, off)
      if (bytesRead === 0) return
      off += bytesRead
      yield bytesRead === buf.length ? buf : buf.subarray(0, bytesRead)
    }
  } finally {
    await fh.close()
  }
}

/** A file's size, or undefined when it cannot be stat'ed (the add then reports why). */
function sizeOf(path: string): number | undefined {
  try {
    return statSync(path).size
  } catch {
    return undefined
  }
}

/** Our error for a file that cannot be stat'ed. */
function fsErrorOf(path: string): CidmirrorError {
  try {
    statSync(path)
  } catch (err) {
    const e = fsError(path, err)
    if (isCidmirrorError(e)) return e
  }
  return new FileChangedError(path, "it could not be stat'ed")
}

/** CIDs per RPC call where Kubo takes them as repeated `arg`s (keeps the URL well under limits). */
const ARG_BATCH = 256

/** `filestore verify` status codes (boxo/filestore/util.go). */
const STATUS: Record<number, ReferenceStatus> = {
  0: 'ok',
  10: 'error',
  11: 'no-file',
  12: 'changed',
  20: 'error',
  30: 'missing',
}

interface VerifyLine {
  Status: number
  ErrorMsg: string
  Key: { '/': string }
  FilePath: string
  Offset: number
  Size: number
}

export interface KuboNodeOptions {
  /** The RPC API: a multiaddr (`/ip4/127.0.0.1/tcp/5001`, as in `$IPFS_PATH/api`) or a URL. */
  api: string
  /** True when the node shares the mirror's disk (see IpfsNode.local). Default false. */
  local?: boolean
  /** The `Authorization` header its RPC API needs (rpcAuthorization of the target's token), if any. */
  authorization?: string
  /** The config key of `api` (`ipfs.api`), which an error for refused credentials names. */
  what?: string
}

/**
 * Kubo over its RPC API. Calls that answer at once go through `kubo-rpc-client` (connect, pin ls and
 * rm, block get, find providers, config); the rest through undici (`kubo-http.ts`): what the client
 * cannot send (a nocopy add with an `Abspath-Encoded` part, `filestore verify` with removal,
 * `provide once`, an offline `dag export`), what it misreads (`id` of an offline daemon), and the
 * commands that answer only when done (pin add of a tree, pin update, dag import), which Node's fetch
 * abandons after 300 s without response headers.
 */
export class KuboNode implements IpfsNode {
  readonly kind = 'kubo' as const
  readonly local: boolean
  readonly label: string
  readonly #client: KuboRPCClient
  readonly #http: KuboHttp
  #fsRoot: Promise<string> | undefined

  constructor(opts: KuboNodeOptions) {
    this.#http = new KuboHttp(opts.api, opts.authorization, opts.what)
    this.label = this.#http.url
    this.local = opts.local ?? false
    this.#client = create({
      url: `${this.#http.url}/api/v0`,
      ...(opts.authorization ? { headers: { authorization: opts.authorization } } : {}),
    })
  }

  canAskPeers(): boolean {
    return true
  }

  async id(opts: Signal = {}): Promise<PeerInfo> {
    // Direct: kubo-rpc-client's id() fails on an offline daemon, whose Addresses are null.
    const r = await this.#http.json<{ ID: string; Addresses: string[] | null }>('id', [], {
      signal: opts.signal,
    })
    return { peerId: r.ID, addresses: r.Addresses ?? [] }
  }

  async connect(addr: string, opts: Signal = {}): Promise<void> {
    await this.#call('swarm/connect', () =>
      this.#client.swarm.connect(multiaddr(addr), { signal: opts.signal }),
    )
  }

  async disconnect(peer: string, opts: Signal = {}): Promise<void> {
    try {
      await this.#call('swarm/disconnect', () =>
        this.#client.swarm.disconnect(multiaddr(peer), { signal: opts.signal }),
      )
    } catch (err) {
      // Kubo refuses a peer it has no connection to: nothing to close.
      if (!/not connected|no connection|conn not found/i.test(String((err as Error).message))) throw err
    }
  }

  async referenceFile(absPath: string, opts: ReferenceOptions = {}): Promise<string> {
    const [r] = await this.#addBatch([{ path: resolve(absPath), expect: opts.expect }], opts)
    if ('error' in r!) throw r.error
    return r!.cid
  }

  async *referenceFiles(
    files: Iterable<string | FileToReference>,
    opts: Signal & { pin?: boolean } = {},
  ): AsyncGenerator<ReferenceResult> {
    let batch: FileToReference[] = []
    let bytes = 0
    for (const f of files) {
      const file = typeof f === 'string' ? { path: resolve(f) } : { ...f, path: resolve(f.path) }
      batch.push(file)
      bytes += sizeOf(file.path) ?? 0
      if (batch.length >= ADD_BATCH_FILES || bytes >= ADD_BATCH_BYTES) {
        yield* await this.#addBatch(batch, opts)
        batch = []
        bytes = 0
      }
    }
    if (batch.length > 0) yield* await this.#addBatch(batch, opts)
  }

  /**
   * One nocopy `add` of several files, one multipart part each (named by its index, so the answers
   * map back whatever the file names, and a name Kubo would refuse never reaches it). A batch that fails as a whole is tried file by file, so one
   * file that vanished or shrank costs only its own result; a node that cannot be reached, or has its
   * filestore off, fails the call.
   */
  async #addBatch(files: FileToReference[], opts: Signal & { pin?: boolean }): Promise<ReferenceResult[]> {
    const results: (ReferenceResult | undefined)[] = files.map(() => undefined)
    const parts: FilePart[] = []
    const sent: number[] = []
    for (const [i, f] of files.entries()) {
      const size = sizeOf(f.path)
      if (size === undefined) {
        results[i] = { path: f.path, error: fsErrorOf(f.path) }
        continue
      }
      sent.push(i)
      parts.push({
        filename: `${BATCH_DIR}/${i}`,
        // Kubo records this path for the file's blocks and reads them from it later: it must be
        // absolute, and %-encoded (Go's url.QueryUnescape reads it back; `+` stays `%2B`).
        headers: { 'Abspath-Encoded': encodeURIComponent(f.path) },
        // No further than the size stat'ed: a file that grows meanwhile is sent as it was; one that
        // shrinks breaks the Content-Length and is reported as changed.
        content: () => fileBytes(f.path, size),
        size,
      })
    }
    if (parts.length > 0) {
      try {
        // The files as entries of one directory part, as `ipfs add -r` sends a tree: Kubo adds
        // several top-level files 3-4x slower than the same files inside a directory. The
        // directory's own node is left unpinned in the blockstore (a few KiB per batch).
        const { body, headers } = multipart([
          { filename: BATCH_DIR, directory: true, content: () => [] },
          ...parts,
        ])
        const params: Params = [...ADD_PARAMS, ['pin', String(opts.pin ?? false)]]
        for await (const line of this.#http.ndjson<{ Name: string; Hash: string }>('add', params, {
          body,
          headers,
          signal: opts.signal,
        })) {
          if (!line.Name.startsWith(`${BATCH_DIR}/`)) continue
          const i = Number(line.Name.slice(BATCH_DIR.length + 1))
          const f = files[i]
          if (!f || !line.Hash) continue
          results[i] =
            f.expect !== undefined && line.Hash !== f.expect
              ? { path: f.path, error: new ReferenceMismatchError(f.path, f.expect, line.Hash) }
              : { path: f.path, cid: line.Hash }
        }
      } catch (caught) {
        const err = await this.#referenceError(files[sent[0]!]!.path, caught)
        if (
          err instanceof IpfsUnreachableError ||
          (err instanceof FilestoreLayoutError && err.reason === 'off')
        )
          throw err
        if ((err as { name?: string })?.name === 'AbortError') throw err
        if (sent.length === 1) {
          if (!isCidmirrorError(err)) throw err
          results[sent[0]!] = { path: files[sent[0]!]!.path, error: err }
        } else {
          for (const i of sent) results[i] = (await this.#addBatch([files[i]!], opts))[0]
        }
      }
    }
    return results.map(
      (r, i) =>
        r ?? {
          path: files[i]!.path,
          error: new IpfsCommandError(this.label, 'add', `no answer for ${files[i]!.path}`),
        },
    )
  }

  async retain(name: string, root: string | undefined, opts: Signal = {}): Promise<void> {
    const entry = `${MFS_ROOT}/${mfsName(name)}`
    // MFS is a GC root that Kubo walks best effort (absent blocks are skipped), unlike a pin; and
    // `files cp` links the root without fetching anything below it.
    try {
      await this.#http.call(
        'files/rm',
        [
          ['arg', entry],
          ['recursive', 'true'],
          ['force', 'true'],
        ],
        { signal: opts.signal },
      )
    } catch (err) {
      if (!(err instanceof IpfsCommandError && /does not exist|not found/i.test(err.detail))) throw err
    }
    if (root === undefined) return
    await this.#http.call(
      'files/cp',
      [
        ['arg', `/ipfs/${parseCid(root).toString()}`],
        ['arg', entry],
        ['parents', 'true'],
        ['offline', 'true'],
      ],
      { signal: opts.signal },
    )
  }

  async putBlocks(car: AsyncIterable<Uint8Array>, opts: Signal = {}): Promise<void> {
    // Direct: Kubo answers a dag import only when it is done, and fetch gives up after 300 s
    // without response headers; undici here waits.
    const { body, headers } = multipart([{ filename: 'blocks.car', content: () => car }])
    for await (const _ of this.#http.ndjson('dag/import', [['pin-roots', 'false']], {
      body,
      headers,
      signal: opts.signal,
    })) {
      // Nothing is pinned, so nothing is reported but errors; draining waits for the import.
    }
  }

  async pin(cid: string, opts: PinOptions = {}): Promise<void> {
    const params: Params = [
      ['arg', parseCid(cid).toString()],
      ['recursive', String(opts.recursive ?? true)],
      // Progress lines every half second keep a long pin (a whole mirror tree) talking.
      ['progress', 'true'],
    ]
    if (opts.name) params.push(['name', opts.name])
    for await (const _ of this.#http.ndjson('pin/add', params, { signal: opts.signal })) {
      // {"Progress": n, "Bytes": b} while fetching, then {"Pins": [cid]}.
    }
  }

  async pinUpdate(from: string, to: string, opts: Signal & { unpin?: boolean } = {}): Promise<void> {
    // Direct, as putBlocks: `pin update` of a big change answers only when every new block is in.
    await this.#http.json(
      'pin/update',
      [
        ['arg', parseCid(from).toString()],
        ['arg', parseCid(to).toString()],
        ['unpin', String(opts.unpin ?? true)],
      ],
      { signal: opts.signal },
    )
  }

  async unpin(cid: string, opts: Signal & { recursive?: boolean } = {}): Promise<void> {
    const c = parseCid(cid)
    try {
      await this.#call('pin/rm', () =>
        this.#client.pin.rm(c, { recursive: opts.recursive ?? true, signal: opts.signal }),
      )
    } catch (err) {
      if (err instanceof IpfsCommandError && /not pinned/.test(err.detail)) return
      throw err
    }
  }

  async pinned(cid: string, opts: Signal = {}): Promise<PinType | undefined> {
    const c = parseCid(cid)
    try {
      return await this.#call('pin/ls', async () => {
        for await (const p of this.#client.pin.ls({ paths: c, type: 'all', signal: opts.signal })) {
          // Kubo says `indirect through <cid>` for an indirect pin.
          const type = String(p.type).split(' ')[0]
          if (type === 'recursive' || type === 'direct' || type === 'indirect') return type
        }
        return undefined
      })
    } catch (err) {
      if (err instanceof IpfsCommandError && /is not pinned/.test(err.detail)) return undefined
      throw err
    }
  }

  async has(cid: string, opts: Signal = {}): Promise<boolean> {
    const c = parseCid(cid)
    try {
      // block/stat reads the block, so a reference whose file is gone or changed fails here too.
      await this.#http.json(
        'block/stat',
        [
          ['arg', c.toString()],
          ['offline', 'true'],
        ],
        { signal: opts.signal },
      )
      return true
    } catch (err) {
      if (err instanceof IpfsCommandError && (isNotFound(err.detail) || isBrokenReference(err.detail)))
        return false
      throw err
    }
  }

  async getBlock(cid: string, opts: BlockOptions = {}): Promise<Uint8Array> {
    const c = parseCid(cid)
    let bytes: Uint8Array
    try {
      bytes = await this.#call('block/get', () =>
        this.#client.block.get(c, { offline: opts.offline ?? false, signal: opts.signal } as never),
      )
    } catch (err) {
      if (err instanceof IpfsCommandError && (isNotFound(err.detail) || isBrokenReference(err.detail))) {
        throw new BlockNotFoundError(cid, this.label, { cause: err })
      }
      throw err
    }
    verifyBlock(c, bytes, this.label)
    return bytes
  }

  async *car(cid: string, opts: CarOptions = {}): AsyncGenerator<Uint8Array> {
    const root = parseCid(cid)
    const scope = opts.scope ?? 'all'
    if (scope === 'all') {
      yield* this.#http.bytes(
        'dag/export',
        [
          ['arg', root.toString()],
          ['offline', String(opts.offline ?? false)],
        ],
        { signal: opts.signal },
      )
      return
    }
    const get = (c: CID) => this.getBlock(c.toString(), opts)
    yield* carOf(root, scope === 'block' ? rootBlock(root, get) : entityBlocks(root, get))
  }

  async provide(cids: string[], opts: Signal & { recursive?: boolean } = {}): Promise<void> {
    for (let i = 0; i < cids.length; i += ARG_BATCH) {
      const params: Params = cids.slice(i, i + ARG_BATCH).map((c) => ['arg', parseCid(c).toString()])
      if (opts.recursive) params.push(['recursive', 'true'])
      for await (const _ of this.#http.ndjson('provide/once', params, { signal: opts.signal })) {
        // One {"Queued": cid} per CID; draining waits until all are queued.
      }
    }
  }

  async *findProviders(cid: string, opts: FindProvidersOptions = {}): AsyncGenerator<PeerInfo> {
    const c = parseCid(cid)
    const limit = opts.limit ?? 20
    const seen = new Set<string>()
    const events = this.#client.routing.findProvs(c, { numProviders: limit, signal: opts.signal } as never)
    try {
      for await (const e of events) {
        if (e.name !== 'PROVIDER') continue
        for (const p of e.providers) {
          const peerId = p.id.toString()
          if (seen.has(peerId)) continue
          seen.add(peerId)
          yield { peerId, addresses: p.multiaddrs.map((a) => a.toString()) }
          if (seen.size >= limit) return
        }
      }
    } catch (err) {
      throw this.#clientError('routing/findprovs', err)
    }
  }

  async *verifyReferences(opts: VerifyOptions = {}): AsyncGenerator<ReferenceCheck> {
    const root = await this.filestoreRoot(opts)
    const batches = opts.cids
      ? chunk(
          opts.cids.map((c) => parseCid(c).toString()),
          ARG_BATCH,
        )
      : [[]]
    for (const batch of batches) {
      const params: Params = batch.map((c) => ['arg', c])
      for await (const line of this.#http.ndjson<VerifyLine>('filestore/verify', params, {
        signal: opts.signal,
      })) {
        yield toCheck(line, root)
      }
    }
  }

  async dropReference(cid: string, opts: Signal = {}): Promise<DropResult> {
    const root = parseCid(cid)
    let complete = true
    const local = async (c: CID) => {
      try {
        return await this.getBlock(c.toString(), { offline: true, signal: opts.signal })
      } catch (err) {
        if (!(err instanceof BlockNotFoundError)) throw err
        complete = false
        return undefined
      }
    }
    const leaves: string[] = []
    for await (const leaf of rawLeaves(root, local)) leaves.push(leaf.toString())
    const bad: string[] = []
    for await (const check of this.verifyReferences({ cids: leaves, signal: opts.signal })) {
      if (check.status === 'ok') continue
      if (check.status === 'missing') {
        // Not referenced in place; the same bytes may be stored in the blockstore proper.
        if (!(await this.has(check.cid, opts))) complete = false
        continue
      }
      complete = false
      bad.push(check.cid)
    }
    let dropped = 0
    // `remove-bad-blocks` removes the reference itself, unlike `block rm`, which refuses blocks under a
    // pin: a pinned tree keeps its pin while the file's blocks are referenced again from the new path.
    // Kubo checks each block again before removing it, so one that reads again by now is kept.
    for (const batch of chunk(bad, ARG_BATCH)) {
      const params: Params = [
        ...batch.map((c): [string, string] => ['arg', c]),
        ['remove-bad-blocks', 'true'],
      ]
      for await (const line of this.#http.ndjson<VerifyLine>('filestore/verify', params, {
        signal: opts.signal,
      })) {
        if (line.Status === 10 || line.Status === 11 || line.Status === 12) dropped++
      }
    }
    return { dropped, complete }
  }

  /**
   * The folder this Kubo may reference files under (the parent of its repo, from `repo stat`), which
   * `filestore verify` paths are relative to.
   */
  filestoreRoot(opts: Signal = {}): Promise<string> {
    this.#fsRoot ??= this.#repoPath(opts).then(filestoreRoot)
    this.#fsRoot.catch(() => {
      this.#fsRoot = undefined
    })
    return this.#fsRoot
  }

  /**
   * What stops this Kubo from referencing the files of mirrors at `mirrorRoots` in place, one line each
   * (empty when nothing does): the filestore switched off, or the repo in a folder that does not hold
   * the mirrors. For `cidmirror doctor` and the daemon's start.
   */
  async filestoreProblems(mirrorRoots: string[], opts: Signal = {}): Promise<string[]> {
    const problems: string[] = []
    const enabled = await this.#call('config', () =>
      this.#client.config.get('Experimental.FilestoreEnabled', { signal: opts.signal }),
    ).catch((err) => {
      if (err instanceof IpfsCommandError && /not found|no such|key has no attributes/i.test(err.detail))
        return false
      throw err
    })
    if (enabled !== true) problems.push(filestoreOff(this.label))
    const layout = checkFilestoreLayout(await this.#repoPath(opts), mirrorRoots)
    if (layout) problems.push(`IPFS node at ${this.label}: ${layout}`)
    return problems
  }

  async close(): Promise<void> {
    await this.#http.close()
  }

  async #repoPath(opts: Signal): Promise<string> {
    // Only the full `repo stat` names the repo (`size-only` leaves RepoPath empty); it counts the
    // blocks too, so the answer is kept (see filestoreRoot).
    const stat = await this.#http.json<{ RepoPath: string }>('repo/stat', [], { signal: opts.signal })
    if (!stat.RepoPath) throw new IpfsCommandError(this.label, 'repo/stat', 'the node did not name its repo')
    return stat.RepoPath
  }

  /**
   * Our error for a failed add: the file changed or went while it was sent, or the filestore cannot
   * take it (one line that says what to change).
   */
  async #referenceError(path: string, err: unknown): Promise<unknown> {
    const code = (err as { code?: string } | undefined)?.code
    if (code === 'UND_ERR_REQ_CONTENT_LENGTH_MISMATCH')
      return new FileChangedError(path, 'its size changed while it was referenced')
    if (typeof code === 'string' && /^E[A-Z]+$/.test(code) && !(err instanceof IpfsUnreachableError))
      return fsError(path, err)
    if (!(err instanceof IpfsCommandError)) return err
    if (/filestore is not enabled/i.test(err.detail))
      return new FilestoreLayoutError('off', filestoreOff(this.label), { cause: err })
    if (/outside ipfs root|outside the ipfs root/i.test(err.detail)) {
      const repo = await this.#repoPath({}).catch(() => undefined)
      const hint = repo ? checkFilestoreLayout(repo, path) : undefined
      return new FilestoreLayoutError('outside', `cannot reference ${path} in place: ${hint ?? err.detail}`, {
        cause: err,
      })
    }
    return err
  }

  /** Run a kubo-rpc-client call, turning its errors into ours. */
  async #call<T>(command: string, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn()
    } catch (err) {
      throw this.#clientError(command, err)
    }
  }

  #clientError(command: string, err: unknown): unknown {
    if (
      err instanceof IpfsCommandError ||
      err instanceof IpfsUnreachableError ||
      err instanceof IpfsAuthRefusedError
    )
      return err
    const e = err as { name?: string; message?: string; response?: { status?: number } }
    if (e?.name === 'AbortError') return err
    if (e?.name === 'HTTPError' && e.response?.status === 403) return this.#http.refused(e.message ?? '')
    if (e?.name === 'HTTPError' || e?.name === 'TimeoutError') {
      return new IpfsCommandError(this.label, command, e.message ?? String(err), { cause: err })
    }
    const mapped = this.#http.networkError(err)
    if (mapped !== err) return mapped
    // fetch wraps connection failures in a TypeError whose cause carries the code.
    if (e?.name === 'TypeError' && /fetch failed/.test(e.message ?? '')) {
      const cause = (err as { cause?: { code?: string; message?: string } }).cause
      return new IpfsUnreachableError(this.label, cause?.code ?? cause?.message ?? 'fetch failed', {
        cause: err,
      })
    }
    return err
  }
}

function filestoreOff(label: string): string {
  return `IPFS node at ${label} has its filestore off, so it cannot reference mirror files in place: run \`ipfs config --json Experimental.FilestoreEnabled true\` and restart it`
}

function isNotFound(detail: string): boolean {
  return /not found|could not find/i.test(detail)
}

/** The errors Kubo's filestore gives when a referenced file is gone, shorter, or changed. */
function isBrokenReference(detail: string): boolean {
  return /no such file|did not match|expected to read|unexpected EOF|is a directory|permission denied/i.test(
    detail,
  )
}

function toCheck(line: VerifyLine, root: string): ReferenceCheck {
  const status = STATUS[line.Status] ?? 'error'
  const check: ReferenceCheck = { cid: line.Key['/'], status }
  if (line.FilePath) {
    check.path = join(root, line.FilePath)
    check.offset = line.Offset
    check.size = line.Size
  }
  if (status !== 'ok' && line.ErrorMsg) check.message = line.ErrorMsg
  return check
}

function chunk<T>(items: T[], size: number): T[][] {
  const out: T[][] = []
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size))
  return out
}
