#!/usr/bin/env node
/**
 * `npm start`: the quick start. Serves the bundled sample tree (examples/quickstart/upstream) with a
 * local `rsync --daemon` on 127.0.0.1:8873, then runs the cidmirror daemon (manager and worker in one
 * process) on examples/quickstart/cidmirror.toml: the mirror syncs into ./data/mirrors/sample at once,
 * is indexed, served by the gateway (printed URL), and syncs again every 10 minutes. Ctrl-C stops everything.
 *
 * Environment: CIDMIRROR_QUICKSTART_RSYNC_PORT (default 8873; the config's upstream is rewritten to
 * match), CIDMIRROR_LOG_LEVEL (default "warn" here: the daemon's JSON log on stderr).
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process'
import { mkdirSync, writeFileSync } from 'node:fs'
import { connect, createServer } from 'node:net'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { QuickstartError } from '../src/cli/errors.ts'
import {
  createLogger,
  readGatewayConfig,
  readReplicationConfig,
  runUntilSignal,
  startDaemon,
} from '../src/daemon/index.ts'
import { EXIT_BUG, EXIT_USER, errorInfo } from '../src/error-codes.ts'
import { isCidmirrorError } from '../src/errors.ts'
import { explainListenError, ListenError, type ListenSource, loadConfig } from '../src/sync/index.ts'
import { jobLines } from './job-lines.ts'

const repo = resolve(dirname(fileURLToPath(import.meta.url)), '..')
const example = join(repo, 'examples', 'quickstart')
const data = join(repo, 'data')
const port = Number(process.env.CIDMIRROR_QUICKSTART_RSYNC_PORT ?? 8873)

function say(line: string): void {
  process.stdout.write(`${line}\n`)
}

/** A path as a shell line can carry it. */
function shellWord(s: string): string {
  return /^[\w@%+=:,./-]+$/.test(s) ? s : `'${s.replaceAll("'", `'\\''`)}'`
}

/**
 * Fails before anything starts when a port the quick start needs is taken, naming the key (or the
 * variable) that sets it: nothing is half started, and ./data is not touched.
 */
async function ensureFree(host: string, p: number, keys?: ListenSource): Promise<void> {
  const srv = createServer()
  await new Promise<void>((done, fail) => {
    srv.once('error', fail)
    srv.listen({ host, port: p, exclusive: true }, () => done())
  }).catch((err) => {
    const e = explainListenError(err, host, p, keys)
    if (!keys && e instanceof ListenError && (err as NodeJS.ErrnoException).code === 'EADDRINUSE') {
      throw new ListenError(
        e.address,
        'the port is in use: set CIDMIRROR_QUICKSTART_RSYNC_PORT to a free port',
      )
    }
    throw e
  })
  await new Promise((done) => srv.close(done))
}

function canConnect(p: number): Promise<boolean> {
  return new Promise((done) => {
    const s = connect({ host: '127.0.0.1', port: p })
    s.once('connect', () => {
      s.destroy()
      done(true)
    })
    s.once('error', () => done(false))
  })
}

async function startRsyncd(): Promise<ChildProcess> {
  try {
    execFileSync('rsync', ['--version'], { stdio: 'ignore' })
  } catch {
    throw new QuickstartError("rsync is not installed: apt-get install rsync (or your system's package)")
  }
  const dir = join(data, 'rsyncd')
  mkdirSync(dir, { recursive: true })
  const lines = [
    `log file = ${join(dir, 'rsyncd.log')}`,
    `lock file = ${join(dir, 'rsyncd.lock')}`,
    'use chroot = no',
    'reverse lookup = no',
  ]
  if (process.getuid?.() === 0) lines.push('uid = 0', 'gid = 0')
  lines.push('[sample]', `path = ${join(example, 'upstream')}`, 'read only = yes', 'munge symlinks = no')
  const conf = join(dir, 'rsyncd.conf')
  writeFileSync(conf, `${lines.join('\n')}\n`)
  const child = spawn(
    'rsync',
    ['--daemon', '--no-detach', `--config=${conf}`, `--port=${port}`, '--address=127.0.0.1'],
    {
      stdio: ['ignore', 'ignore', 'inherit'],
    },
  )
  for (let i = 0; i < 100; i++) {
    if (child.exitCode !== null) break
    if (await canConnect(port)) return child
    await new Promise((r) => setTimeout(r, 50))
  }
  child.kill('SIGKILL')
  throw new QuickstartError(
    `rsync --daemon did not start on 127.0.0.1:${port} (its log: ${join(dir, 'rsyncd.log')})`,
  )
}

async function main(): Promise<void> {
  const configFile = join(example, 'cidmirror.toml')
  const config = await loadConfig(configFile)
  for (const m of config.mirrors) m.upstream = m.upstream.replace(':8873/', `:${port}/`)
  await ensureFree('127.0.0.1', port)
  await ensureFree(config.manager.listenAddr, config.manager.listenPort, config.manager.listenSource)
  await ensureFree(config.server.listenAddr, config.server.listenPort, config.server.listenSource)
  const gateway = readGatewayConfig(config)
  if (gateway) {
    const key = { file: gateway.file, key: 'gateway.listen_port' }
    await ensureFree(gateway.listenAddr, gateway.listenPort, {
      addr: { ...key, key: 'gateway.listen_addr' },
      port: key,
    })
  }
  // The embedded IPFS node's fixed port (4011), so that one taken stops nothing half started either.
  const ipfs = readReplicationConfig(config).ipfs
  for (const addr of ipfs && !ipfs.api ? ipfs.embedded.listen : []) {
    const m = /^\/ip4\/([^/]+)\/tcp\/(\d+)$/.exec(addr)
    const key = { file: configFile, key: 'ipfs.listen' }
    if (m && m[2] !== '0') await ensureFree(m[1]!, Number(m[2]), { addr: key, port: key })
  }
  const rsyncd = await startRsyncd()
  try {
    const log = createLogger({ level: process.env.CIDMIRROR_LOG_LEVEL ?? 'warn' })
    say(`upstream: rsync://127.0.0.1:${port}/sample/ (serving examples/quickstart/upstream)`)
    const daemon = await startDaemon({ config, manager: true, worker: true, log })
    // Absolute paths: these lines work as written in any new shell, wherever it starts.
    const cli = shellWord(join(repo, 'cidmirror'))
    const cfg = shellWord(configFile)
    say(`manager:  ${daemon.manager?.url}/jobs  (public status, tunasync's JSON)`)
    say(`mirror:   ${config.mirrors[0]?.mirrorDir}`)
    if (daemon.gateway)
      say(
        `gateway:  ${daemon.gateway.url}/${config.mirrors[0]?.name ?? ''}/  (the mirror over HTTP; status at /_status)`,
      )
    say(`cli:      ${cli}  (from any shell: it finds Node 24 and builds dist/ when needed)`)
    say(`try:      ${cli} jobs list -c ${cfg}`)
    say(`          ${cli} jobs start sample -c ${cfg}`)
    say(`          ${cli} audit -c ${cfg}`)
    say(`          ${cli} jobs stop sample -c ${cfg}`)
    const node = await daemon.replication?.node?.id()
    if (node) say(`ipfs:     embedded node ${node.addresses.join(' ')} (loopback; ipfs swarm connect ADDR)`)
    say('Ctrl-C stops.')
    const lines = jobLines()
    daemon.worker?.onStatus((s) => {
      for (const line of lines(s)) say(line)
    })
    // A job stopped before the last Ctrl-C stays paused (as tunasync's worker keeps it): say so, or
    // the quick start looks as if it did nothing.
    for (const s of daemon.worker?.statuses() ?? [])
      if (s.status === 'paused' || s.status === 'disabled') for (const line of lines(s)) say(line)
    await runUntilSignal(daemon)
  } finally {
    rsyncd.kill('SIGTERM')
  }
}

main().catch((err) => {
  // A user's error is one line and its code's exit status (2); anything else is a bug: its stack, 70.
  const exit = isCidmirrorError(err) ? (errorInfo(err.code)?.exit ?? EXIT_USER) : EXIT_BUG
  process.stderr.write(
    `cidmirror quick start: ${exit !== EXIT_BUG ? (err as Error).message : (err as Error).stack}\n`,
  )
  process.exitCode = exit
})
