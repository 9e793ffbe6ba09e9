import { spawn } from 'node:child_process'
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { createServer, type Server } from 'node:net'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { killChild, MAIN, runCli, runFile, STACK_LINE } from './helpers/cli.ts'
import { commandMirror, freePort, TOKEN, tempDir, waitFor, writeToml } from './jobs-helpers.ts'

/**
 * What a user gets wrong is one line on stderr naming the file, the key or the port, and exit 2 (the error table's status for user errors);
 * never a stack, never exit 70 (bugs only). Each case runs the real CLI.
 */

const QUICKSTART = join(import.meta.dirname, '..', 'scripts', 'start.ts')
const QUICKSTART_CONFIG = join(import.meta.dirname, '..', 'examples', 'quickstart', 'cidmirror.toml')

let tmp: ReturnType<typeof tempDir>
const holders: Server[] = []
const cleanups: (() => Promise<void>)[] = []

beforeEach(() => {
  tmp = tempDir('cidmirror-user-errors-')
})
afterEach(async () => {
  for (const c of cleanups.splice(0)) await c()
  for (const s of holders.splice(0)) await new Promise((r) => s.close(r))
  tmp.cleanup()
})

/** Holds 127.0.0.1:port (a free one when 0) as another program would; resolves to the port. */
async function hold(port = 0): Promise<number> {
  const srv = createServer()
  await new Promise<void>((done, fail) => {
    srv.once('error', fail)
    srv.listen(port, '127.0.0.1', () => done())
  })
  holders.push(srv)
  const addr = srv.address()
  return typeof addr === 'object' && addr ? addr.port : port
}

/** The port is busy afterwards: held here when it was free, else someone else holds it already. */
async function holdOrBusy(port: number): Promise<void> {
  await hold(port).catch((err: NodeJS.ErrnoException) => {
    if (err.code !== 'EADDRINUSE') throw err
  })
}

/**
 * One line besides the daemon's JSON log (which a daemon writes on stderr by design, up to the
 * failure), no stack in either, exit 2.
 */
function oneLine(r: { code: number; stderr: string }, pattern: RegExp): void {
  expect(r.stderr).not.toMatch(STACK_LINE)
  expect(r.stderr).not.toContain('"stack"')
  const lines = r.stderr.split('\n').filter((l) => l !== '' && !l.startsWith('{"level"'))
  expect(lines, r.stderr).toHaveLength(1)
  expect(lines[0]).toMatch(pattern)
  expect(r.code).toBe(2)
}

const literal = (s: string): string => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')

describe('a listen port in use', () => {
  it('the manager: names api_base (where it listens by default), the file and the port', async () => {
    const port = await hold()
    const config = writeToml({ dir: tmp.dir, managerPort: port, mirrors: '' })
    const r = await runCli(['daemon', '-c', config])
    oneLine(
      r,
      new RegExp(
        `^cidmirror: config ${literal(config)}: manager\\.api_base: cannot listen on 127\\.0\\.0\\.1:${port}: the port is in use`,
      ),
    )
  })

  it('the manager with its own listen_port: names listen_port', async () => {
    const port = await hold()
    const config = writeToml({ dir: tmp.dir, managerPort: 1, mirrors: '' })
    const text = readFileSync(config, 'utf8').replace(
      `token = "${TOKEN}"`,
      `token = "${TOKEN}"\nlisten_port = ${port}`,
    )
    writeFileSync(config, text)
    const r = await runCli(['manager', '-c', config])
    oneLine(
      r,
      new RegExp(`: manager\\.listen_port: cannot listen on 127\\.0\\.0\\.1:${port}: the port is in use`),
    )
  })

  it("the worker: names server.listen_port, after the manager's listener is closed again", async () => {
    const port = await hold()
    const managerPort = await freePort()
    const config = writeToml({
      dir: tmp.dir,
      managerPort,
      workerPort: port,
      mirrors: commandMirror('m', 'true'),
    })
    const r = await runCli(['daemon', '-c', config])
    oneLine(
      r,
      new RegExp(
        `^cidmirror: config ${literal(config)}: server\\.listen_port: cannot listen on 127\\.0\\.0\\.1:${port}: the port is in use`,
      ),
    )
  })

  it("the embedded IPFS node: names ipfs.listen and the address, not libp2p's stack", async () => {
    const port = await hold()
    const config = writeToml({
      dir: tmp.dir,
      managerPort: await freePort(),
      mirrors: commandMirror('m', 'true'),
    })
    writeFileSync(
      config,
      `${readFileSync(config, 'utf8')}\n[ipfs]\nlisten = ["/ip4/127.0.0.1/tcp/${port}"]\n\n[replication]\nn = 1\n`,
    )
    const r = await runCli(['daemon', '-c', config])
    oneLine(
      r,
      new RegExp(
        `^cidmirror: config ${literal(config)}: ipfs\\.listen: cannot listen on 127\\.0\\.0\\.1:${port}: the port is in use`,
      ),
    )
  })

  it("the quick start's rsync port: names CIDMIRROR_QUICKSTART_RSYNC_PORT", async () => {
    const port = await hold()
    const r = await runFile(process.execPath, [QUICKSTART], { CIDMIRROR_QUICKSTART_RSYNC_PORT: String(port) })
    oneLine(
      r,
      new RegExp(
        `^cidmirror quick start: cannot listen on 127\\.0\\.0\\.1:${port}: the port is in use: set CIDMIRROR_QUICKSTART_RSYNC_PORT to a free port$`,
      ),
    )
  })

  it("the quick start's HTTP port (the manager's 14242): names api_base of its config", async () => {
    await holdOrBusy(14242)
    const rsyncPort = await freePort()
    const r = await runFile(process.execPath, [QUICKSTART], {
      CIDMIRROR_QUICKSTART_RSYNC_PORT: String(rsyncPort),
    })
    oneLine(
      r,
      new RegExp(
        `^cidmirror quick start: config ${literal(QUICKSTART_CONFIG)}: manager\\.api_base: cannot listen on 127\\.0\\.0\\.1:14242: the port is in use`,
      ),
    )
  })
})

describe('a command line that does not parse', () => {
  it('exec_on_success with an unterminated quote stops the load, naming the key and the file', async () => {
    const managerPort = await freePort()
    const config = writeToml({
      dir: tmp.dir,
      managerPort,
      globalExtra: `exec_on_success = ["echo 'unterminated"]`,
      mirrors: commandMirror('m', 'true'),
    })
    const r = await runCli(['daemon', '-c', config])
    oneLine(
      r,
      new RegExp(
        `^cidmirror: config ${literal(config)}: global\\.exec_on_success\\[0\\]: "echo 'unterminated": unterminated ' quote$`,
      ),
    )
  })

  it("a mirror's exec_on_failure_extra in an included file names that file and the mirror's key", async () => {
    mkdirSync(join(tmp.dir, 'mirrors.d'))
    const included = join(tmp.dir, 'mirrors.d', 'm.toml')
    writeFileSync(included, `${commandMirror('m', 'true')}exec_on_failure_extra = ["ok", "notify \\"oops"]\n`)
    const config = writeToml({ dir: tmp.dir, mirrors: 'include = ["mirrors.d/*.toml"]' })
    const text = readFileSync(config, 'utf8')
    // `include` is a top-level key: it must come before the first table.
    writeFileSync(
      config,
      `include = ["mirrors.d/*.toml"]\n${text.replace('include = ["mirrors.d/*.toml"]', '')}`,
    )
    const r = await runCli(['daemon', '-c', config])
    oneLine(
      r,
      new RegExp(
        `^cidmirror: config ${literal(included)}: mirrors\\[0\\]\\.exec_on_failure_extra\\[1\\]: "notify \\\\"oops": unterminated " quote$`,
      ),
    )
  })
})

describe('a missing or refused token', () => {
  it('the daemon names the file and manager.token', async () => {
    const config = writeToml({ dir: tmp.dir, mirrors: '' })
    writeFileSync(config, readFileSync(config, 'utf8').replace(`token = "${TOKEN}"\n`, ''))
    const r = await runCli(['daemon', '-c', config])
    oneLine(
      r,
      new RegExp(`^cidmirror: config ${literal(config)}: manager\\.token: missing: the worker needs a token`),
    )
  })

  it('a control command names the config file and the key, or where else the token may come from', async () => {
    const config = writeToml({ dir: tmp.dir, mirrors: '' })
    writeFileSync(config, readFileSync(config, 'utf8').replace(`token = "${TOKEN}"\n`, ''))
    oneLine(
      await runCli(['jobs', 'start', 'm', '-c', config]),
      new RegExp(
        `^cidmirror: config ${literal(config)}: manager\\.token: missing: jobs start needs a token .*--token.*CIDMIRROR_TOKEN`,
      ),
    )
    oneLine(
      await runCli(['jobs', 'stop', 'm', '-m', 'http://127.0.0.1:1']),
      /^cidmirror: jobs stop needs the manager's token: pass --token, set CIDMIRROR_TOKEN, or -c FILE/,
    )
  })

  it("a wrong token: the manager's refusal names where the token came from", async () => {
    const managerPort = await freePort()
    const config = writeToml({ dir: tmp.dir, managerPort, mirrors: '' })
    const child = spawn(process.execPath, [MAIN, 'manager', '-c', config], { stdio: 'ignore' })
    cleanups.push(() => killChild(child))
    const manager = `http://127.0.0.1:${managerPort}`
    await waitFor(async () => (await fetch(`${manager}/ping`)).ok, 'the manager')
    oneLine(
      await runCli(['jobs', 'start', 'm', '-m', manager, '--token', 'wrong']),
      new RegExp(
        `^cidmirror: ${literal(manager)} refused the token from --token: it must equal the manager's \\[manager\\] token$`,
      ),
    )
    oneLine(
      await runCli(['jobs', 'flush', '-m', manager], { CIDMIRROR_TOKEN: 'wrong' }),
      /refused the token from \$CIDMIRROR_TOKEN/,
    )
  })
})
