/**
 * `cidmirror doctor -c FILE` against real Kubo daemons: a repo beside the mirrors with the filestore
 * on passes; the filestore off and a repo whose folder does not hold the mirrors are each one line
 * that says what to change, with exit 1.
 */
import { execFile } from 'node:child_process'
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { checkFilestoreLayout } from '../src/ipfs/index.ts'
import { Kubo } from './helpers/kubo.ts'

const MAIN = fileURLToPath(new URL('../src/cli/main.ts', import.meta.url))
const run = promisify(execFile)

let work: string
let config: string
let good: Kubo
let bad: Kubo

async function cli(
  args: string[],
  env: NodeJS.ProcessEnv = {},
): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, [MAIN, ...args], {
      env: { ...process.env, ...env },
    })
    return { code: 0, stdout, stderr }
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string }
    return { code: e.code, stdout: e.stdout, stderr: e.stderr }
  }
}

/** A loopback port that was free a moment ago: nobody listens there. */
function closedPort(): Promise<number> {
  return new Promise((resolve) => {
    const srv = createServer().listen(0, '127.0.0.1', () => {
      const p = (srv.address() as { port: number }).port
      srv.close(() => resolve(p))
    })
  })
}

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), 'cidmirror-doctor-'))
  mkdirSync(join(work, 'srv', 'mirrors', 'debian'), { recursive: true })
  config = join(work, 'cidmirror.toml')
  writeFileSync(
    config,
    `[global]\nmirror_dir = "${join(work, 'srv', 'mirrors')}"\n[manager]\ntoken = "t"\n[database]\npath = "${join(work, 'db')}"\n[[mirrors]]\nname = "debian"\nprovider = "command"\ncommand = "true"\n`,
  )
  // Beside the mirrors: its parent folder (srv) holds them. The other lives elsewhere, filestore off.
  ;[good, bad] = await Promise.all([
    Kubo.create({ parent: join(work, 'srv'), filestore: true }),
    Kubo.create({ parent: join(work, 'elsewhere') }),
  ])
  await Promise.all([good.start(), bad.start()])
})

afterAll(async () => {
  await Promise.allSettled([good?.dispose(), bad?.dispose()])
  rmSync(work, { recursive: true, force: true })
})

describe('cidmirror doctor', () => {
  it('passes when the local Kubo can reference every mirror in place', async () => {
    const r = await cli(['doctor', '-c', config, '--ipfs-api', good.api])
    expect(r.stderr).toBe('')
    expect(r.code).toBe(0)
    expect(r.stdout).toContain(`ok    filestore on; every mirror lies under ${join(work, 'srv')}`)
    expect(r.stdout).not.toContain('FAIL')
  })

  it('finds the api file through IPFS_PATH', async () => {
    const r = await cli(['doctor', '-c', config], { IPFS_PATH: good.repo })
    expect(r.code).toBe(0)
    expect(r.stdout).toContain(`(from ${join(good.repo, 'api')})`)
  })

  it("uses the config's [ipfs] api before IPFS_PATH, and says when [ipfs] is the embedded node", async () => {
    const withApi = join(work, 'with-api.toml')
    writeFileSync(withApi, `${readFileSync(config, 'utf8')}[ipfs]\napi = "${good.api}"\n`)
    const r = await cli(['doctor', '-c', withApi], { IPFS_PATH: bad.repo })
    expect(r.code).toBe(0)
    expect(r.stdout).toContain('(from [ipfs] api)')
    expect(r.stdout).toContain(`ok    filestore on; every mirror lies under ${join(work, 'srv')}`)
    const embedded = join(work, 'embedded.toml')
    writeFileSync(embedded, `${readFileSync(config, 'utf8')}[ipfs]\nlisten = ["/ip4/127.0.0.1/tcp/0"]\n`)
    const e = await cli(['doctor', '-c', embedded], { IPFS_PATH: join(work, 'no-repo') })
    expect(e.code).toBe(0)
    expect(e.stdout).toContain('ok    local node: the embedded Helia node ([ipfs] without api)')
    expect(e.stdout).not.toContain('local Kubo')
  })

  it('names the filestore switch and the repo layout to change, one line each, exit 1', async () => {
    const r = await cli(['doctor', '-c', config, '--ipfs-api', bad.api])
    expect(r.code).toBe(1)
    const fails = r.stdout.split('\n').filter((l) => l.startsWith('FAIL'))
    expect(fails).toHaveLength(2)
    expect(fails[0]).toContain('ipfs config --json Experimental.FilestoreEnabled true')
    expect(fails[1]).toContain(
      `references only files under ${join(work, 'elsewhere')} (the parent of IPFS_PATH ${bad.repo}) and mirror root ${join(work, 'srv', 'mirrors', 'debian')} lies outside it: move the repo to ${join(work, 'srv', 'mirrors', '.ipfs')}`,
    )
  })

  it('says in one line when no Kubo answers, exit 1', async () => {
    const port = await closedPort()
    const r = await cli(['doctor', '-c', config, '--ipfs-api', `/ip4/127.0.0.1/tcp/${port}`])
    expect(r.code).toBe(1)
    expect(r.stdout).toContain(
      `FAIL  cannot reach the IPFS node's API at http://127.0.0.1:${port}: ECONNREFUSED\n`,
    )
  })
})

describe('checkFilestoreLayout', () => {
  it("follows Kubo's plain prefix test on the repo's parent folder", () => {
    expect(checkFilestoreLayout('/srv/.ipfs', '/srv/mirror/debian')).toBeUndefined()
    expect(checkFilestoreLayout('/srv/.ipfs/', ['/srv/a', '/srv/b'])).toBeUndefined()
    // A plain prefix: /srv2 starts with /srv, so Kubo accepts it too.
    expect(checkFilestoreLayout('/srv/.ipfs', '/srv2/x')).toBeUndefined()
    expect(checkFilestoreLayout('/var/lib/ipfs/.ipfs', ['/data/mirror/debian', '/data/mirror/ubuntu'])).toBe(
      "Kubo's filestore references only files under /var/lib/ipfs (the parent of IPFS_PATH /var/lib/ipfs/.ipfs) and mirror roots /data/mirror/debian, /data/mirror/ubuntu lie outside it: move the repo to /data/mirror/.ipfs (IPFS_PATH), or the mirrors under /var/lib/ipfs",
    )
    expect(checkFilestoreLayout('.ipfs', '/data/m')).toMatch(/^IPFS_PATH \.ipfs is relative/)
  })
})
