import { type ChildProcess, execFile, spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { tool } from './tools.ts'

export interface KuboCreateOptions {
  /**
   * Folder to make the repo in (default the system temp folder). Kubo's filestore references only
   * files under the repo's parent folder, so a test that references a mirror tree in place puts both
   * in one folder.
   */
  parent?: string
  /** `Experimental.FilestoreEnabled` (default false, as Kubo's own default). */
  filestore?: boolean
  /**
   * A private-network key (`swarm.key`, 64 hex digits): only nodes holding the same key connect. Nodes
   * made by `Kubo.swarm` share one unless told `swarmKey: false`.
   */
  swarmKey?: string
}

export interface RunResult {
  stdout: string
  stderr: string
  code: number
}

/**
 * A throwaway Kubo: its own IPFS_PATH, initialised with `--profile test,unixfs-v1-2025` (loopback
 * addresses on port 0, so random free ports), no bootstrap peers, AutoConf, AutoTLS and MDNS off,
 * telemetry off. Offline commands (`add --only-hash`, `dag import`, `cat` with `--offline`) need no
 * daemon; `start()` runs one for tests that do.
 */
export class Kubo {
  readonly bin: string
  readonly repo: string
  readonly env: NodeJS.ProcessEnv
  #daemon: ChildProcess | undefined
  #apiAddr: string | undefined

  private constructor(bin: string, repo: string) {
    this.bin = bin
    this.repo = repo
    this.env = {
      ...process.env,
      IPFS_PATH: repo,
      IPFS_TELEMETRY: 'off',
      // Never pick up a developer's own node or its API.
      IPFS_API: undefined,
      LIBP2P_FORCE_PNET: undefined,
    }
  }

  /** Make and configure a new repo. */
  static async create(opts: KuboCreateOptions = {}): Promise<Kubo> {
    const parent = opts.parent ?? tmpdir()
    mkdirSync(parent, { recursive: true })
    const k = new Kubo(tool('ipfs'), mkdtempSync(join(parent, 'cidmirror-kubo-')))
    await k.ok(['init', '--profile', 'test,unixfs-v1-2025'])
    await k.ok(['bootstrap', 'rm', '--all'])
    for (const [key, value] of [
      ['AutoConf.Enabled', 'false'],
      ['AutoTLS.Enabled', 'false'],
      ['Discovery.MDNS.Enabled', 'false'],
      ['Addresses.Swarm', '["/ip4/127.0.0.1/tcp/0"]'],
      ['Addresses.API', '"/ip4/127.0.0.1/tcp/0"'],
      ['Addresses.Gateway', '"/ip4/127.0.0.1/tcp/0"'],
      ['Experimental.FilestoreEnabled', opts.filestore ? 'true' : 'false'],
    ] as const) {
      await k.ok(['config', '--json', key, value])
    }
    if (opts.swarmKey) {
      writeFileSync(join(k.repo, 'swarm.key'), `/key/swarm/psk/1.0.0/\n/base16/\n${opts.swarmKey}\n`)
    }
    return k
  }

  /**
   * `n` online daemons on loopback that know only each other: one private-network key, no bootstrap,
   * every pair connected by hand (unless `connect: false`). Dispose them with `disposeAll`.
   */
  static async swarm(
    n: number,
    opts: Omit<KuboCreateOptions, 'swarmKey'> & { swarmKey?: string | false; connect?: boolean } = {},
  ): Promise<Kubo[]> {
    const swarmKey = opts.swarmKey === false ? undefined : (opts.swarmKey ?? randomBytes(32).toString('hex'))
    const nodes: Kubo[] = []
    try {
      for (let i = 0; i < n; i++) nodes.push(await Kubo.create({ ...opts, swarmKey }))
      await Promise.all(nodes.map((k) => k.start({ online: true })))
      for (let i = 0; opts.connect !== false && i < n; i++) {
        for (let j = i + 1; j < n; j++) await nodes[i]!.connect(nodes[j]!)
      }
    } catch (err) {
      await disposeAll(nodes)
      throw err
    }
    return nodes
  }

  /** Run `ipfs ARGS...` (with optional stdin); never throws on a non-zero exit. */
  run(args: string[], opts: { input?: Uint8Array | string; cwd?: string } = {}): Promise<RunResult> {
    return new Promise((resolve, reject) => {
      const child = execFile(
        this.bin,
        args,
        { env: this.env, cwd: opts.cwd, maxBuffer: 1 << 30, encoding: 'utf8' },
        (err, stdout, stderr) => {
          const code = err ? (typeof err.code === 'number' ? err.code : -1) : 0
          if (err && typeof err.code !== 'number') return reject(err)
          resolve({ stdout, stderr, code })
        },
      )
      if (opts.input !== undefined) child.stdin?.end(opts.input)
      else child.stdin?.end()
    })
  }

  /** Run and return stdout; throws with stderr on failure. */
  async ok(args: string[], opts: { input?: Uint8Array | string; cwd?: string } = {}): Promise<string> {
    const r = await this.run(args, opts)
    if (r.code !== 0) throw new Error(`ipfs ${args.join(' ')} exited ${r.code}: ${r.stderr.trim()}`)
    return r.stdout
  }

  /**
   * Its RPC API asks for credentials (`API.Authorizations`, before `start`): each name's AuthSecret
   * (`bearer:TOKEN` or `basic:user:password`), allowed the whole `/api/v0`.
   */
  async authorize(secrets: Record<string, string>): Promise<void> {
    const auths = Object.fromEntries(
      Object.entries(secrets).map(([name, secret]) => [
        name,
        { AuthSecret: secret, AllowedPaths: ['/api/v0'] },
      ]),
    )
    await this.ok(['config', '--json', 'API.Authorizations', JSON.stringify(auths)])
  }

  /** `ipfs cat --offline PATH` as raw bytes. */
  cat(path: string): Promise<Buffer> {
    return new Promise((resolve, reject) => {
      execFile(
        this.bin,
        ['cat', '--offline', path],
        { env: this.env, maxBuffer: 1 << 30, encoding: 'buffer' },
        (err, stdout, stderr) => {
          if (err) reject(new Error(`ipfs cat ${path}: ${stderr.toString().trim() || err.message}`))
          else resolve(stdout)
        },
      )
    })
  }

  /** `ipfs add -r --only-hash --cid-version=1 [-H]` as a map from printed name to CID. */
  async addedMap(
    paths: string[],
    opts: { hidden?: boolean; cwd?: string } = {},
  ): Promise<Map<string, string>> {
    return new Map((await this.addOnlyHash(paths, opts)).map(([cid, name]) => [name, cid]))
  }

  /** `ipfs add -r --only-hash --cid-version=1 [-H]` lines as [cid, name] pairs, in Kubo's order. */
  async addOnlyHash(
    paths: string[],
    opts: { hidden?: boolean; cwd?: string } = {},
  ): Promise<[string, string][]> {
    const args = [
      'add',
      '-r',
      '--only-hash',
      '--cid-version=1',
      ...(opts.hidden ? ['-H'] : []),
      '--',
      ...paths,
    ]
    const out = await this.ok(args, { cwd: opts.cwd })
    return out
      .split('\n')
      .filter((l) => l.startsWith('added '))
      .map((l) => {
        const rest = l.slice('added '.length)
        const sp = rest.indexOf(' ')
        return [rest.slice(0, sp), rest.slice(sp + 1)] as [string, string]
      })
  }

  /** The root CID `ipfs add -r --only-hash --cid-version=1 [-H] -Q` gives for one path. */
  async rootCid(path: string, opts: { hidden?: boolean } = {}): Promise<string> {
    const args = [
      'add',
      '-r',
      '-Q',
      '--only-hash',
      '--cid-version=1',
      ...(opts.hidden ? ['-H'] : []),
      '--',
      path,
    ]
    return (await this.ok(args)).trim()
  }

  /**
   * Start a daemon (random loopback ports); resolves when it is ready. Offline by default (no swarm
   * at all); `online` for tests between nodes.
   */
  async start(opts: { online?: boolean } = {}): Promise<void> {
    if (this.#daemon) return
    const child = spawn(this.bin, ['daemon', ...(opts.online ? [] : ['--offline'])], {
      env: this.env,
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    this.#daemon = child
    let log = ''
    await new Promise<void>((resolve, reject) => {
      const onData = (d: Buffer) => {
        log += d.toString()
        if (log.includes('Daemon is ready')) resolve()
      }
      child.stdout!.on('data', onData)
      child.stderr!.on('data', onData)
      child.once('exit', (code) => reject(new Error(`ipfs daemon exited ${code}: ${log}`)))
      setTimeout(() => reject(new Error(`ipfs daemon not ready after 60 s: ${log}`)), 60_000).unref()
    })
    this.#apiAddr = readFileSync(join(this.repo, 'api'), 'utf8').trim()
  }

  /** The running daemon's RPC API multiaddr. */
  get apiAddr(): string | undefined {
    return this.#apiAddr
  }

  /** The running daemon's RPC API multiaddr, or throws when none runs. */
  get api(): string {
    if (!this.#apiAddr) throw new Error(`no daemon runs on ${this.repo}`)
    return this.#apiAddr
  }

  /** The running daemon's HTTP gateway, `http://127.0.0.1:PORT` (Kubo writes it to the repo's `gateway` file). */
  get gateway(): string {
    if (!this.#apiAddr) throw new Error(`no daemon runs on ${this.repo}`)
    return readFileSync(join(this.repo, 'gateway'), 'utf8').trim()
  }

  /** The peer ID and the swarm addresses the running daemon listens on (each with `/p2p/<id>`). */
  async peer(): Promise<{ id: string; addresses: string[] }> {
    const out = JSON.parse(await this.ok(['id'])) as { ID: string; Addresses: string[] | null }
    return { id: out.ID, addresses: out.Addresses ?? [] }
  }

  /** Dial `other` from this daemon (both running). */
  async connect(other: Kubo): Promise<void> {
    const { addresses } = await other.peer()
    const addr = addresses.find((a) => a.startsWith('/ip4/127.0.0.1/tcp/'))
    if (!addr) throw new Error(`no loopback TCP address among ${addresses.join(' ')}`)
    await this.ok(['swarm', 'connect', addr])
  }

  async stop(): Promise<void> {
    const child = this.#daemon
    this.#daemon = undefined
    this.#apiAddr = undefined
    if (!child || child.exitCode !== null) return
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
    child.kill('SIGTERM')
    const timer = setTimeout(() => child.kill('SIGKILL'), 10_000)
    await exited
    clearTimeout(timer)
  }

  /** Stop the daemon and delete the repo. */
  async dispose(): Promise<void> {
    await this.stop()
    rmSync(this.repo, { recursive: true, force: true })
  }
}

/** Dispose every node, whichever fail. */
export async function disposeAll(nodes: Kubo[]): Promise<void> {
  await Promise.allSettled(nodes.map((k) => k.dispose()))
}
