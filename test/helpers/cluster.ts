import { type ChildProcess, execFile, spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { request } from 'undici'
import type { Kubo } from './kubo.ts'
import { tool } from './tools.ts'

/** One `ipfs-cluster-service` peer in front of one test Kubo. */
export interface ClusterPeer {
  /** Its config folder (`--config`): service.json, identity.json, its datastore. */
  readonly dir: string
  readonly kubo: Kubo
  /** The REST API, `http://127.0.0.1:PORT` (no trailing slash). */
  readonly api: string
  /** The REST API as a multiaddr, for `ipfs-cluster-ctl --host`. */
  readonly apiAddr: string
  readonly peerId: string
  /** Its cluster (libp2p) address, `/ip4/127.0.0.1/tcp/PORT/p2p/ID`. */
  readonly address: string
  /** Its IPFS proxy (`http://127.0.0.1:PORT`: Kubo's RPC API through the peer), when started with one. */
  readonly ipfsProxy?: string
}

interface Running extends ClusterPeer {
  child: ChildProcess
}

/**
 * A throwaway IPFS Cluster on loopback over test Kubo daemons, one cluster peer per Kubo: configs
 * from `ipfs-cluster-service init`, then every listen address on 127.0.0.1 port 0 (the REST API's and
 * the cluster's own, read back from the log), mDNS and relays off, the proxy and pinning-service APIs
 * left out, one shared secret, and every peer after the first bootstrapped to the first by hand.
 * Metrics are sent every second, so a pin with a replication factor allocates soon after start.
 */
export class Cluster {
  readonly peers: ClusterPeer[]
  readonly #running: Running[]
  readonly #root: string

  private constructor(root: string, running: Running[]) {
    this.#root = root
    this.#running = running
    this.peers = running
  }

  /** Start one cluster peer per Kubo (each Kubo's daemon must be running); resolves when all see all. */
  static async start(kubos: Kubo[], opts: { parent?: string; ipfsProxy?: boolean } = {}): Promise<Cluster> {
    const root = mkdtempSync(join(opts.parent ?? tmpdir(), 'cidmirror-cluster-'))
    const secret = randomBytes(32).toString('hex')
    const running: Running[] = []
    const cluster = new Cluster(root, running)
    try {
      for (const [i, kubo] of kubos.entries()) {
        const dir = join(root, `peer${i}`)
        mkdirSync(dir)
        await run(['--config', dir, 'init', '--datastore', 'pebble'], { CLUSTER_SECRET: secret })
        configure(dir, {
          name: `peer${i}`,
          secret,
          kubo: kubo.api,
          bootstrap: running[0]?.address,
          ipfsProxy: opts.ipfsProxy ?? false,
        })
        running.push(await startPeer(dir, kubo, opts.ipfsProxy ?? false))
      }
      await cluster.#waitForMembers(60_000)
    } catch (err) {
      await cluster.dispose()
      throw err
    }
    return cluster
  }

  /** `ipfs-cluster-ctl --host <peer's REST API> ARGS...`; throws with stderr on failure. */
  ctl(args: string[], peer = 0): Promise<string> {
    const host = this.peers[peer]!.apiAddr
    return new Promise((resolve, reject) => {
      execFile(
        tool('ipfs-cluster-ctl'),
        ['--host', host, ...args],
        { encoding: 'utf8' },
        (err, stdout, stderr) => {
          if (err) reject(new Error(`ipfs-cluster-ctl ${args.join(' ')}: ${stderr.trim() || err.message}`))
          else resolve(stdout)
        },
      )
    })
  }

  /**
   * GET/POST/DELETE on a peer's REST API; resolves to the parsed JSON, an array for the listings that
   * stream one object per line (throws on a non-2xx).
   */
  async rest<T>(method: 'GET' | 'POST' | 'DELETE', path: string, peer = 0): Promise<T> {
    const res = await request(`${this.peers[peer]!.api}${path}`, { method })
    const text = await res.body.text()
    if (res.statusCode >= 300) throw new Error(`${method} ${path}: ${res.statusCode} ${text.trim()}`)
    if (!text.trim()) return undefined as T
    try {
      return JSON.parse(text) as T
    } catch {
      // Listings (`/peers`, `/pins`) stream one JSON object per line.
      return text
        .split('\n')
        .filter((l) => l.trim())
        .map((l) => JSON.parse(l)) as T
    }
  }

  /** Stop every cluster peer (the Kubo daemons are the caller's) and delete their folders. */
  async dispose(): Promise<void> {
    await Promise.allSettled(this.#running.map((p) => stopChild(p.child)))
    rmSync(this.#root, { recursive: true, force: true })
  }

  /** Until every peer lists all peers and holds a live free-space metric of each. */
  async #waitForMembers(ms: number): Promise<void> {
    const deadline = Date.now() + ms
    const n = this.peers.length
    let last = ''
    for (;;) {
      const counts = await Promise.all(
        this.peers.map(async (_, i) => {
          const metrics = await this.rest<{ peer: string; valid: boolean }[]>(
            'GET',
            '/monitor/metrics/freespace',
            i,
          )
          return new Set(metrics.filter((m) => m.valid).map((m) => m.peer)).size
        }),
      )
      if (counts.every((c) => c === n)) return
      last = counts.join(',')
      if (Date.now() > deadline)
        throw new Error(`cluster peers see ${last} of ${n} peers' metrics after ${ms} ms`)
      await new Promise((r) => setTimeout(r, 50))
    }
  }
}

/** Run `ipfs-cluster-service ARGS...` to completion. */
function run(args: string[], env: Record<string, string>): Promise<void> {
  return new Promise((resolve, reject) => {
    execFile(tool('ipfs-cluster-service'), args, { env: { ...process.env, ...env } }, (err, _out, stderr) => {
      if (err) reject(new Error(`ipfs-cluster-service ${args.join(' ')}: ${stderr.trim() || err.message}`))
      else resolve()
    })
  })
}

/** Edit the service.json `init` wrote for a loopback-only test peer. */
function configure(
  dir: string,
  o: { name: string; secret: string; kubo: string; bootstrap?: string; ipfsProxy: boolean },
): void {
  const file = join(dir, 'service.json')
  // biome-ignore lint/suspicious/noExplicitAny: service.json is Cluster's, edited in place
  const c = JSON.parse(readFileSync(file, 'utf8')) as any
  Object.assign(c.cluster, {
    peername: o.name,
    secret: o.secret,
    listen_multiaddress: ['/ip4/127.0.0.1/tcp/0'],
    announce_multiaddress: [],
    enable_relay_hop: false,
    mdns_interval: '0s',
    monitor_ping_interval: '1s',
    peer_watch_interval: '1s',
    peer_addresses: o.bootstrap ? [o.bootstrap] : [],
  })
  // The REST API, and the IPFS proxy when asked (both on port 0, read back from the log); never the
  // pinning-service API (a fixed port).
  const proxy = o.ipfsProxy
    ? {
        ipfsproxy: {
          ...c.api.ipfsproxy,
          listen_multiaddress: '/ip4/127.0.0.1/tcp/0',
          node_multiaddress: o.kubo,
        },
      }
    : {}
  c.api = { restapi: { ...c.api.restapi, http_listen_multiaddress: '/ip4/127.0.0.1/tcp/0' }, ...proxy }
  Object.assign(c.ipfs_connector.ipfshttp, { node_multiaddress: o.kubo, connect_swarms_delay: '0s' })
  c.monitor.pubsubmon.check_interval = '1s'
  // A peer re-sends its metrics every ttl/2, and the allocator drops a peer whose metric expired. At 3 s a
  // loaded machine (load 16) let one lapse between the start's wait and a pin ("not enough peers to
  // allocate... Available candidates: 1"); 10 s rides out such stalls and costs the start ~5 s.
  for (const informer of Object.values(c.informer) as { metric_ttl?: string }[]) informer.metric_ttl = '10s'
  writeFileSync(file, JSON.stringify(c, null, 2))
}

async function startPeer(dir: string, kubo: Kubo, ipfsProxy: boolean): Promise<Running> {
  const child = spawn(tool('ipfs-cluster-service'), ['--config', dir, 'daemon'], {
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let log = ''
  try {
    await new Promise<void>((resolve, reject) => {
      const onData = (d: Buffer) => {
        log += d.toString()
        // The REST API's (and the proxy's) address line may come after READY (seen under load): wait for all.
        if (
          log.includes('IPFS Cluster is READY') &&
          /RESTAPI \(HTTP\): /.test(log) &&
          (!ipfsProxy || /IPFS Proxy: \/ip4\//.test(log))
        )
          resolve()
      }
      child.stdout!.on('data', onData)
      child.stderr!.on('data', onData)
      child.once('exit', (code) => reject(new Error(`ipfs-cluster-service exited ${code}: ${log}`)))
      setTimeout(() => reject(new Error(`ipfs-cluster-service not ready after 60 s: ${log}`)), 60_000).unref()
    })
  } catch (err) {
    await stopChild(child)
    throw err
  }
  const apiAddr = /RESTAPI \(HTTP\): (\/ip4\/127\.0\.0\.1\/tcp\/(\d+))/.exec(log)
  const address = /listening on:\s+(\/ip4\/127\.0\.0\.1\/tcp\/\d+\/p2p\/(\w+))/.exec(log)
  const proxy = /IPFS Proxy: \/ip4\/127\.0\.0\.1\/tcp\/(\d+) ->/.exec(log)
  if (!apiAddr || !address) {
    await stopChild(child)
    throw new Error(`cannot read the REST API or cluster address from the log: ${log}`)
  }
  return {
    dir,
    kubo,
    child,
    apiAddr: apiAddr[1]!,
    api: `http://127.0.0.1:${apiAddr[2]}`,
    address: address[1]!,
    peerId: address[2]!,
    ...(proxy ? { ipfsProxy: `http://127.0.0.1:${proxy[1]}` } : {}),
  }
}

async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
  child.kill('SIGTERM')
  const timer = setTimeout(() => child.kill('SIGKILL'), 10_000)
  await exited
  clearTimeout(timer)
}
