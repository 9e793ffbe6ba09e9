/**
 * The embedded IPFS node: Helia 7 in this process, the default when no Kubo is configured. Its
 * blockstore is the mirror tree itself (MirrorBlockstore over the index's block map), so serving a
 * mirror stores nothing; peers fetch over bitswap. By default it listens on loopback and joins no
 * network (no bootstrap, no DHT, no AutoTLS, no UPnP): a peer must dial it. `public: true` takes
 * Helia's own libp2p defaults, which join the public network.
 */
import { mkdirSync } from 'node:fs'
import { isAbsolute, join, relative, resolve, sep } from 'node:path'
import { withBitswap } from '@helia/bitswap'
import { withLibp2p, withLibp2pLight } from '@helia/libp2p'
import { CarBlockIterator } from '@ipld/car/iterator'
import * as dagPb from '@ipld/dag-pb'
import { identify } from '@libp2p/identify'
import { noise } from '@libp2p/noise'
import { tcp } from '@libp2p/tcp'
import { yamux } from '@libp2p/yamux'
import { multiaddr } from '@multiformats/multiaddr'
import { LevelBlockstore } from 'blockstore-level'
import { LevelDatastore } from 'datastore-level'
import { createHeliaLight } from 'helia'
import { Key } from 'interface-datastore'
import type { CID } from 'multiformats/cid'
import { cidOfFile } from '../cid/index.ts'
import type { Database } from '../db.ts'
import { isCidmirrorError } from '../errors.ts'
import { BlockReader, listMirrors, openMirrorIndex } from '../index/index.ts'
import { carOf, entityBlocks, rawLeaves, rootBlock } from './dag-walk.ts'
import { BlockNotFoundError, IpfsCommandError, ReferenceMismatchError } from './errors.ts'
import { FetchedBlocks } from './fetched-blocks.ts'
import type { IpfsNode } from './index.ts'
import { MirrorBlockstore } from './mirror-blockstore.ts'
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
  Signal,
} from './types.ts'
import { parseCid, verifyBlock } from './verify-block.ts'

const DAG_PB = 0x70

export interface HeliaNodeOptions {
  /** The cidmirror database: the index's block map is the node's blockstore for mirror blocks. */
  db: Database
  /** The node's own folder: its peer key, pins, and the blocks it holds that are not the mirror's. */
  dataDir: string
  /** libp2p listen addresses (default loopback TCP on a free port). */
  listen?: string[]
  /** Join the public IPFS network (bootstrap, DHT, ...: Helia's libp2p defaults). Default false. */
  public?: boolean
  /** Whether the node's blocks are on the mirror's disk (default true: it serves the mirror tree). */
  local?: boolean
  /**
   * Blocks one peer may have wanted of us at once (default 32): what bitswap holds in memory for a
   * peer while it serves, about this many 1 MiB leaves.
   */
  maxWants?: number
  /** Cap of the fetched-block store in bytes (default 1 GiB): the oldest fetched blocks go first. */
  storeMaxBytes?: number
  /** Called with each block asked of the node that it cannot serve (absent, or its file changed): for logs. */
  onMissing?: (cid: string) => void
}

/** The fetched-block store's cap by default. */
const DEFAULT_STORE_MAX = 1024 ** 3

/** Wants kept per peer: a peer asking for more has its oldest wants dropped, and asks again. */
const DEFAULT_MAX_WANTS = 32

/**
 * What bounds the memory of serving. @helia/bitswap 4.0.19 documents `maxWantlistSize` but its ledger
 * reads `maxWantListSize` (peer-want-lists/ledger.js), so the documented key alone changes nothing:
 * both are given. One send per peer at a time (each send reads every wanted block into one message),
 * and few inbound streams, so what is in flight is about `maxWants` blocks per peer.
 */
export function bitswapOptions(maxWants: number) {
  return {
    maxWantlistSize: maxWants,
    maxWantListSize: maxWants,
    sendBlocksConcurrency: 1,
    sendBlocksMaxQueueLength: 4,
    maxInboundStreams: 32,
  }
}

type Helia = Awaited<ReturnType<typeof startHelia>>

/**
 * The libp2p options of the embedded node. Private (the default): TCP on `listen` (loopback), noise,
 * yamux, identify, and nothing that finds or announces peers (no bootstrap, DHT, mDNS, AutoTLS, UPnP,
 * relay): a peer must dial it. Public: Helia's own libp2p defaults with `listen`, which join the
 * public network.
 */
export function libp2pOptions(opts: Pick<HeliaNodeOptions, 'listen' | 'public'>) {
  const listen = opts.listen ?? ['/ip4/127.0.0.1/tcp/0']
  if (opts.public) return { public: true as const, options: { addresses: { listen } } }
  return {
    public: false as const,
    options: {
      addresses: { listen },
      transports: [tcp()],
      connectionEncrypters: [noise()],
      streamMuxers: [yamux()],
      peerDiscovery: [],
      services: { identify: identify() },
    },
  }
}

async function startHelia(opts: HeliaNodeOptions, blockstore: MirrorBlockstore, datastore: LevelDatastore) {
  const light = createHeliaLight({ blockstore, datastore })
  const net = libp2pOptions(opts)
  const withNet = net.public ? withLibp2p(light, net.options) : withLibp2pLight(light, net.options)
  const helia = withBitswap(withNet, bitswapOptions(opts.maxWants ?? DEFAULT_MAX_WANTS))
  await helia.start()
  return helia
}

/** Starts an embedded node over the mirrors indexed in `opts.db`. */
export async function createHeliaNode(opts: HeliaNodeOptions): Promise<HeliaNode> {
  const dir = resolve(opts.dataDir)
  mkdirSync(dir, { recursive: true })
  const level = new LevelBlockstore(join(dir, 'blocks'))
  const datastore = new LevelDatastore(join(dir, 'datastore'))
  await level.open()
  await datastore.open()
  const extra = new FetchedBlocks(level, join(dir, 'blocks-index'), opts.storeMaxBytes ?? DEFAULT_STORE_MAX)
  const blockstore = new MirrorBlockstore(new BlockReader(opts.db), extra, opts.onMissing)
  try {
    await extra.open()
    const helia = await startHelia(opts, blockstore, datastore)
    return new HeliaNode(helia, blockstore, level, extra, datastore, opts)
  } catch (err) {
    await Promise.allSettled([level.close(), datastore.close(), extra.close()])
    throw err
  }
}

const RETAIN = '/cidmirror/retain'
const PINS = '/cidmirror/pins'

export class HeliaNode implements IpfsNode {
  readonly kind = 'helia' as const
  readonly local: boolean
  readonly label: string
  readonly #helia: Helia
  readonly #store: MirrorBlockstore
  readonly #level: LevelBlockstore
  readonly #fetched: FetchedBlocks
  readonly #datastore: LevelDatastore
  readonly #public: boolean
  readonly #db: Database

  constructor(
    helia: Helia,
    store: MirrorBlockstore,
    level: LevelBlockstore,
    fetched: FetchedBlocks,
    datastore: LevelDatastore,
    opts: HeliaNodeOptions,
  ) {
    this.#helia = helia
    this.#store = store
    this.#level = level
    this.#fetched = fetched
    this.#datastore = datastore
    this.#public = opts.public ?? false
    this.#db = opts.db
    this.local = opts.local ?? true
    this.label = `embedded node ${helia.libp2p.peerId.toString()}`
  }

  /** Bytes in the fetched-block store: the capped cache, and blocks kept for pins. */
  storeBytes(): { cache: number; kept: number; max: number } {
    return { ...this.#fetched.bytes, max: this.#fetched.maxBytes }
  }

  async id(): Promise<PeerInfo> {
    const libp2p = this.#helia.libp2p
    return {
      peerId: libp2p.peerId.toString(),
      addresses: libp2p.getMultiaddrs().map((a) => a.toString()),
    }
  }

  async connect(addr: string, opts: Signal = {}): Promise<void> {
    try {
      await this.#helia.libp2p.dial(multiaddr(addr), { signal: opts.signal })
    } catch (err) {
      throw new IpfsCommandError(this.label, 'connect', String((err as Error).message ?? err), { cause: err })
    }
  }

  async disconnect(peer: string, opts: Signal = {}): Promise<void> {
    try {
      await this.#helia.libp2p.hangUp(multiaddr(peer), { signal: opts.signal })
    } catch (err) {
      throw new IpfsCommandError(this.label, 'disconnect', String((err as Error).message ?? err), {
        cause: err,
      })
    }
  }

  /**
   * Nothing to store: the index's block map already serves the file. The CID is the index's when
   * `expect` is what the index holds for this path and its root block reads from the mirror as
   * indexed; otherwise it is computed from the file (and must equal `expect`).
   */
  async referenceFile(absPath: string, opts: ReferenceOptions = {}): Promise<string> {
    const path = resolve(absPath)
    if (opts.expect !== undefined && (await this.#indexed(path)) === opts.expect) {
      if (await this.#store.mirrorBlock(parseCid(opts.expect))) {
        if (opts.pin) await this.pin(opts.expect, opts)
        return opts.expect
      }
    }
    const got = (await cidOfFile(path)).cid.toString()
    if (opts.expect !== undefined && got !== opts.expect)
      throw new ReferenceMismatchError(path, opts.expect, got)
    if (opts.pin) await this.pin(got, opts)
    return got
  }

  /** The CID the index holds for the file at `path`, when a mirror's tree holds it present. */
  async #indexed(path: string): Promise<string | undefined> {
    for (const { mirror, root } of await listMirrors(this.#db)) {
      const rel = relative(resolve(root), path)
      if (rel === '' || rel.startsWith('..') || isAbsolute(rel)) continue
      const rec = await openMirrorIndex(this.#db, mirror, root).get(rel.split(sep).join('/'))
      if (rec?.kind === 'file' && rec.state === 'present') return rec.cid
    }
    return undefined
  }

  async *referenceFiles(
    files: Iterable<string | FileToReference>,
    opts: Signal & { pin?: boolean } = {},
  ): AsyncGenerator<ReferenceResult> {
    for (const f of files) {
      const file = typeof f === 'string' ? { path: f } : f
      const path = resolve(file.path)
      try {
        yield { path, cid: await this.referenceFile(path, { ...opts, expect: file.expect }) }
      } catch (err) {
        if (!isCidmirrorError(err)) throw err
        yield { path, error: err }
      }
    }
  }

  /** Records the mirror's root: the mirror's blocks are never collected, so nothing else is needed. */
  async retain(name: string, root: string | undefined): Promise<void> {
    const key = new Key(`${RETAIN}/${encodeURIComponent(name) || '_'}`)
    if (root === undefined) await this.#datastore.delete(key)
    else await this.#datastore.put(key, new TextEncoder().encode(parseCid(root).toString()))
  }

  /** The directory nodes are in the index already; blocks that are not are kept in the node's own store. */
  async putBlocks(car: AsyncIterable<Uint8Array>, opts: Signal = {}): Promise<void> {
    const blocks = await CarBlockIterator.fromIterable(car)
    for await (const { cid, bytes } of blocks) {
      opts.signal?.throwIfAborted()
      await this.#store.put(cid as unknown as CID, bytes, { ...opts, keep: true })
    }
  }

  /**
   * Records the pin. A DAG whose root the node holds is the mirror's (or was fetched whole): nothing
   * is walked. Otherwise its blocks are fetched over bitswap into the node's own store.
   */
  async pin(cid: string, opts: PinOptions = {}): Promise<void> {
    const root = parseCid(cid)
    const recursive = opts.recursive ?? true
    if (!(await this.#store.has(root, opts))) {
      if (recursive) await this.#fetchDag(root, opts)
      else await this.getBlock(cid, opts)
    }
    await this.#datastore.put(pinKey(root), new TextEncoder().encode(recursive ? 'recursive' : 'direct'))
  }

  async #fetchDag(cid: CID, opts: Signal): Promise<void> {
    const bytes = await this.#get(cid, opts)
    // Fetched (or held) in the cache: a pinned DAG's blocks stay past its cap.
    await this.#store.keep(cid)
    if (cid.code !== DAG_PB) return
    for (const link of dagPb.decode(bytes).Links) await this.#fetchDag(link.Hash, opts)
  }

  async pinUpdate(from: string, to: string, opts: Signal & { unpin?: boolean } = {}): Promise<void> {
    await this.pin(to, opts)
    if (opts.unpin ?? true) await this.unpin(from)
  }

  async unpin(cid: string): Promise<void> {
    await this.#datastore.delete(pinKey(parseCid(cid)))
  }

  /** Recursive or direct as recorded; indirect pins are not tracked (the node never collects). */
  async pinned(cid: string): Promise<PinType | undefined> {
    const key = pinKey(parseCid(cid))
    if (!(await this.#datastore.has(key))) return undefined
    return new TextDecoder().decode(await this.#datastore.get(key)) as PinType
  }

  async has(cid: string, opts: Signal = {}): Promise<boolean> {
    return this.#store.has(parseCid(cid), opts)
  }

  async getBlock(cid: string, opts: BlockOptions = {}): Promise<Uint8Array> {
    return this.#get(parseCid(cid), opts)
  }

  async #get(c: CID, opts: BlockOptions): Promise<Uint8Array> {
    const own = await this.#store.read(c, opts)
    if (own) return own
    if (opts.offline) throw new BlockNotFoundError(c.toString(), this.label)
    const parts: Uint8Array[] = []
    try {
      for await (const p of this.#helia.blockstore.get(c, { signal: opts.signal })) parts.push(p)
    } catch (err) {
      opts.signal?.throwIfAborted()
      throw new BlockNotFoundError(c.toString(), this.label, { cause: err })
    }
    const bytes = parts.length === 1 ? parts[0]! : Buffer.concat(parts)
    verifyBlock(c, bytes, this.label)
    return bytes
  }

  async *car(cid: string, opts: CarOptions = {}): AsyncGenerator<Uint8Array> {
    const root = parseCid(cid)
    const scope = opts.scope ?? 'all'
    const get = (c: CID) => this.#get(c, opts)
    const blocks =
      scope === 'block'
        ? rootBlock(root, get)
        : scope === 'entity'
          ? entityBlocks(root, get)
          : dagBlocks(root, get)
    yield* carOf(root, blocks)
  }

  /** A private node (the default) has no routing: only a connected peer can give a block it lacks. */
  canAskPeers(): boolean {
    return this.#public || this.#helia.libp2p.getConnections().length > 0
  }

  /** Announces through the routing the node has; a private node (the default) has none to tell. */
  async provide(cids: string[], opts: Signal & { recursive?: boolean } = {}): Promise<void> {
    if (!this.#public) return
    for (const c of cids) await this.#helia.routing.provide(parseCid(c), { signal: opts.signal })
  }

  async *findProviders(cid: string, opts: FindProvidersOptions = {}): AsyncGenerator<PeerInfo> {
    if (!this.#public) return
    const limit = opts.limit ?? 20
    const seen = new Set<string>()
    for await (const p of this.#helia.routing.findProviders(parseCid(cid), { signal: opts.signal })) {
      const peerId = p.id.toString()
      if (seen.has(peerId)) continue
      seen.add(peerId)
      yield { peerId, addresses: p.multiaddrs.map((a) => a.toString()) }
      if (seen.size >= limit) return
    }
  }

  /**
   * The node holds no references of its own: the index's block map is checked on every read. Each
   * CID asked for is reported `ok` when it reads as indexed, `changed` when it does not.
   */
  async *verifyReferences(opts: { cids?: string[] } & Signal = {}): AsyncGenerator<ReferenceCheck> {
    for (const cid of opts.cids ?? []) {
      const ok = await this.#store.mirrorBlock(parseCid(cid))
      yield ok ? { cid, status: 'ok' } : { cid, status: 'changed', message: 'does not read as indexed' }
    }
  }

  /** Nothing to drop (the index maps blocks to current paths); says whether the whole DAG reads. */
  async dropReference(cid: string, opts: Signal = {}): Promise<DropResult> {
    let complete = true
    const local = async (c: CID) => {
      const b = await this.#store.read(c, opts)
      if (!b) complete = false
      return b
    }
    for await (const leaf of rawLeaves(parseCid(cid), local)) {
      if (!(await this.#store.has(leaf, opts))) complete = false
    }
    return { dropped: 0, complete }
  }

  /** Stops the node: an embedded node lives as long as its owner keeps it. */
  async close(): Promise<void> {
    await this.#helia.stop()
    await Promise.allSettled([this.#level.close(), this.#datastore.close(), this.#fetched.close()])
  }
}

function pinKey(c: CID): Key {
  return new Key(`${PINS}/${c.toString()}`)
}

async function* dagBlocks(
  cid: CID,
  get: (cid: CID) => Promise<Uint8Array>,
): AsyncGenerator<{ cid: CID; bytes: Uint8Array }> {
  const bytes = await get(cid)
  yield { cid, bytes }
  if (cid.code !== DAG_PB) return
  for (const link of dagPb.decode(bytes).Links) yield* dagBlocks(link.Hash, get)
}
