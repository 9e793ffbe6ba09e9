/**
 * BENCH_ONLY=gateway: the gateway against nginx (Debian's package, one worker, `sendfile on`, its own
 * config on a free loopback port) serving the same tree, both measured with wrk (Debian's package):
 * requests/s for a 1 KiB file with 32 connections, MB/s for a 1 GiB file with 32 connections, and the
 * server's memory (RSS, all its processes) with 1,000 open keep-alive connections that each made one
 * request. Rounds interleave the two servers; each figure is its best round.
 *
 *   BENCH_GATEWAY_MIB=1024   the large file's size
 *   BENCH_GATEWAY_SECONDS=8  each wrk run
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import {
  chmodSync,
  closeSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readFileSync,
  rmSync,
  writeFileSync,
  writeSync,
} from 'node:fs'
import { connect, createServer, type Socket } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { openDatabase } from '../../src/db.ts'
import { openMirrorIndex } from '../../src/index/index.ts'
import type { Row } from './report.ts'

const say = (m: string) => process.stderr.write(`bench gateway: ${m}\n`)

function which(name: string, install: string): string {
  for (const c of [name, `/usr/sbin/${name}`]) {
    try {
      const p = execFileSync('sh', ['-c', `command -v "${c}"`], { encoding: 'utf8' }).trim()
      if (p) return p
    } catch {}
  }
  throw new Error(`${name} not found: ${install}`)
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer()
    s.once('error', reject)
    s.listen(0, '127.0.0.1', () => {
      const p = (s.address() as { port: number }).port
      s.close(() => resolve(p))
    })
  })
}

/** VmRSS of `pid` and its children, in MiB. */
function rssMiB(pid: number): number {
  const pids = [pid]
  try {
    pids.push(
      ...readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8')
        .trim()
        .split(/\s+/)
        .filter(Boolean)
        .map(Number),
    )
  } catch {}
  let kib = 0
  for (const p of pids) {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${p}/status`, 'utf8'))
    kib += m ? Number(m[1]) : 0
  }
  return kib / 1024
}

function wrk(bin: string, url: string, conns: number, seconds: number): { rps: number; bytesPerSec: number } {
  const out = execFileSync(bin, ['-t1', `-c${conns}`, `-d${seconds}s`, url], { encoding: 'utf8' })
  if (/Non-2xx/.test(out)) throw new Error(`wrk saw errors at ${url}:\n${out}`)
  const rps = Number(/Requests\/sec:\s+([\d.]+)/.exec(out)?.[1])
  const t = /Transfer\/sec:\s+([\d.]+)(\w+)/.exec(out)
  const unit: Record<string, number> = { B: 1, KB: 1024, MB: 1024 ** 2, GB: 1024 ** 3 }
  return { rps, bytesPerSec: t ? Number(t[1]) * (unit[t[2]!] ?? 1) : Number.NaN }
}

/** Opens `n` keep-alive connections, each asking for `path` once; resolves when every answer came. */
async function holdConnections(port: number, path: string, n: number): Promise<Socket[]> {
  const sockets: Socket[] = []
  const batch = 100
  for (let i = 0; i < n; i += batch) {
    await Promise.all(
      Array.from(
        { length: Math.min(batch, n - i) },
        () =>
          new Promise<void>((resolve, reject) => {
            const s = connect(port, '127.0.0.1')
            sockets.push(s)
            let got = ''
            s.on('data', (d: Buffer) => {
              got += d.toString('latin1')
              if (got.includes('\r\n\r\n') && got.length > 1024) resolve()
            })
            s.once('error', reject)
            s.write(`GET ${path} HTTP/1.1\r\nHost: bench\r\n\r\n`)
          }),
      ),
    )
  }
  return sockets
}

function startNginx(bin: string, dir: string, docroot: string, port: number): ChildProcess {
  const conf = join(dir, 'nginx.conf')
  const tmp = join(dir, 'nginx-tmp')
  mkdirSync(tmp, { recursive: true })
  writeFileSync(
    conf,
    `worker_processes 1;
daemon off;
master_process on;
pid ${dir}/nginx.pid;
error_log ${dir}/nginx-error.log;
events { worker_connections 4096; }
http {
  access_log off;
  sendfile on;
  tcp_nopush on;
  keepalive_requests 10000000;
  keepalive_timeout 75s;
  default_type application/octet-stream;
  client_body_temp_path ${tmp}; proxy_temp_path ${tmp}; fastcgi_temp_path ${tmp};
  uwsgi_temp_path ${tmp}; scgi_temp_path ${tmp};
  server { listen 127.0.0.1:${port}; root ${docroot}; }
}
`,
  )
  return spawn(bin, ['-c', conf, '-e', join(dir, 'nginx-error.log')], { stdio: 'ignore' })
}

async function waitHttp(port: number, path: string): Promise<void> {
  for (let i = 0; i < 400; i++) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = connect(port, '127.0.0.1')
      s.once('error', () => resolve(false))
      s.once('data', (d: Buffer) => {
        s.destroy()
        resolve(d.toString().startsWith('HTTP/1.1 200'))
      })
      s.write(`HEAD ${path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`)
    })
    if (ok) return
    await new Promise((r) => setTimeout(r, 50))
  }
  throw new Error(`nothing answered 200 for ${path} on port ${port}`)
}

export async function benchGateway(rounds: number): Promise<Row[]> {
  const nginxBin = which('nginx', 'apt-get install nginx-light')
  const wrkBin = which('wrk', 'apt-get install wrk')
  const mib = Number(process.env.BENCH_GATEWAY_MIB ?? '1024')
  const seconds = Number(process.env.BENCH_GATEWAY_SECONDS ?? '8')
  const dir = mkdtempSync(join(tmpdir(), 'cidmirror-bench-gateway-'))
  // nginx's workers run as an unprivileged user: they must read the tree.
  chmodSync(dir, 0o755)
  const docroot = join(dir, 'www')
  const root = join(docroot, 'bench')
  mkdirSync(root, { recursive: true })
  writeFileSync(join(root, '1k.bin'), randomBytes(1024))
  const fd = openSync(join(root, 'big.bin'), 'w')
  const chunk = randomBytes(1 << 20)
  for (let i = 0; i < mib; i++) writeSync(fd, chunk)
  closeSync(fd)
  say(`indexing ${mib} MiB`)
  const db = await openDatabase(join(dir, 'db'))
  await openMirrorIndex(db, 'bench', root).scan()
  await db.close()
  execFileSync('cat', [join(root, 'big.bin')], { stdio: ['ignore', 'ignore', 'ignore'], maxBuffer: 1 })
  const nginxPort = await freePort()
  const nginx = startNginx(nginxBin, dir, docroot, nginxPort)
  const ours = spawn(
    process.execPath,
    [join(import.meta.dirname, 'gateway-serve.ts'), join(dir, 'db'), root],
    {
      stdio: ['ignore', 'pipe', 'inherit'],
    },
  )
  const ourPort = await new Promise<number>((resolve, reject) => {
    let out = ''
    ours.stdout!.on('data', (d: Buffer) => {
      out += d.toString()
      const m = /port=(\d+)/.exec(out)
      if (m) resolve(Number(m[1]))
    })
    ours.once('exit', (code) => reject(new Error(`the gateway exited ${code}`)))
  })
  try {
    await waitHttp(nginxPort, '/bench/1k.bin')
    await waitHttp(ourPort, '/bench/1k.bin')
    const servers = [
      { name: 'nginx', port: nginxPort, pid: nginx.pid! },
      { name: 'cidmirror', port: ourPort, pid: ours.pid! },
    ]
    const best = new Map<string, { rps: number; mbs: number; rss: number; rssIdle: number }>()
    for (const s of servers) best.set(s.name, { rps: 0, mbs: 0, rss: Number.POSITIVE_INFINITY, rssIdle: 0 })
    for (let r = 0; r < rounds; r++) {
      for (const s of servers) {
        const b = best.get(s.name)!
        const small = wrk(wrkBin, `http://127.0.0.1:${s.port}/bench/1k.bin`, 32, seconds)
        const large = wrk(wrkBin, `http://127.0.0.1:${s.port}/bench/big.bin`, 32, seconds)
        b.rps = Math.max(b.rps, small.rps)
        b.mbs = Math.max(b.mbs, large.bytesPerSec / 1e6)
        say(
          `round ${r + 1} ${s.name}: ${small.rps.toFixed(0)} req/s, ${(large.bytesPerSec / 1e6).toFixed(0)} MB/s`,
        )
      }
    }
    for (const s of servers) {
      const b = best.get(s.name)!
      b.rssIdle = rssMiB(s.pid)
      const held = await holdConnections(s.port, '/bench/1k.bin', 1000)
      b.rss = rssMiB(s.pid)
      say(
        `${s.name}: RSS ${b.rssIdle.toFixed(1)} MiB before, ${b.rss.toFixed(1)} MiB with ${held.length} open connections`,
      )
      for (const h of held) h.destroy()
    }
    const n = best.get('nginx')!
    const o = best.get('cidmirror')!
    return [
      {
        figure: 'gateway: 1 KiB file, 32 connections',
        ours: `${o.rps.toFixed(0)} req/s`,
        peer: `nginx (1 worker, sendfile): ${n.rps.toFixed(0)} req/s`,
        ratio: o.rps / n.rps,
        goal: '>= 0.7',
      },
      {
        figure: `gateway: ${mib} MiB file, 32 connections`,
        ours: `${o.mbs.toFixed(0)} MB/s`,
        peer: `nginx: ${n.mbs.toFixed(0)} MB/s`,
        ratio: o.mbs / n.mbs,
        goal: '>= 0.9',
      },
      {
        figure: 'gateway: RSS with 1,000 open connections',
        ours: `${o.rss.toFixed(0)} MiB (${o.rssIdle.toFixed(0)} MiB before)`,
        peer: `nginx: ${n.rss.toFixed(1)} MiB (${n.rssIdle.toFixed(1)} MiB before)`,
        ratio: n.rss / o.rss,
        goal: 'bounded (growth per connection)',
      },
    ]
  } finally {
    nginx.kill('SIGTERM')
    ours.kill('SIGTERM')
    await Promise.all(
      [nginx, ours].map((c) => (c.exitCode !== null ? undefined : new Promise((r) => c.once('exit', r)))),
    )
    rmSync(dir, { recursive: true, force: true })
  }
}
