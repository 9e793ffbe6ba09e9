import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { loadConfig } from '../src/sync/config/index.ts'
import { ProviderError, type RunContext } from '../src/sync/provider.ts'
import { createProvider } from '../src/sync/providers/index.ts'
import { waitFor } from './jobs-helpers.ts'

let tmp: string
beforeEach(() => {
  tmp = mkdtempSync(join(tmpdir(), 'cidmirror-cmd-'))
})
afterEach(() => {
  rmSync(tmp, { recursive: true, force: true })
})

async function load(mirrorToml: string, globalToml = '') {
  const file = join(tmp, 'cidmirror.toml')
  writeFileSync(
    file,
    `[global]\nmirror_dir = "mirrors"\nlog_dir = "logs/{{.Name}}"\n${globalToml}\n[[mirrors]]\nname = "job"\nprovider = "command"\nupstream = "https://example.org/src/"\n${mirrorToml}\n`,
  )
  const config = await loadConfig(file)
  return { mirror: config.mirrors[0]!, provider: createProvider(config.mirrors[0]!, config) }
}

let n = 0
function ctx(extra: Partial<RunContext> = {}): RunContext {
  n++
  return {
    logFile: join(tmp, 'logs', 'job', `run${n}.log`),
    signal: new AbortController().signal,
    env: {},
    extraArgs: [],
    ...extra,
  }
}
const read = (p: string) => readFileSync(p, 'utf8')
const toml = (s: string) => JSON.stringify(s)

/** Alive and not a zombie (PID 1 here may not reap orphans). */
function alive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z'
  } catch {
    return false
  }
}

describe('command provider', () => {
  it('runs through a shell in the mirror folder with the CIDMIRROR_ and TUNASYNC_ variables, env and hook env', async () => {
    const { provider, mirror } = await load(
      `command = ${toml('echo "pwd=$(pwd)"; env | grep -E "^(CIDMIRROR|TUNASYNC)_|^(FOO|HOOK)=" | sort; echo to-stderr >&2')}\nenv = { FOO = "bar baz" }`,
    )
    const c = ctx({ env: { HOOK: 'h' } })
    expect(await provider.run(c)).toEqual({})
    const log = read(c.logFile)
    const dir = join(tmp, 'mirrors', 'job')
    const logDir = join(tmp, 'logs', 'job')
    expect(provider.workingDir).toBe(dir)
    expect(provider.logDir).toBe(logDir)
    expect(log).toContain(`pwd=${dir}\n`)
    for (const prefix of ['CIDMIRROR', 'TUNASYNC']) {
      expect(log).toContain(`${prefix}_MIRROR_NAME=job\n`)
      expect(log).toContain(`${prefix}_WORKING_DIR=${dir}\n`)
      expect(log).toContain(`${prefix}_UPSTREAM_URL=https://example.org/src/\n`)
      expect(log).toContain(`${prefix}_LOG_DIR=${logDir}\n`)
      expect(log).toContain(`${prefix}_LOG_FILE=${c.logFile}\n`)
    }
    expect(log).toContain('FOO=bar baz\n')
    expect(log).toContain('HOOK=h\n')
    expect(log).toContain('to-stderr\n')
    expect(mirror.mirrorDir).toBe(dir)
  })

  it('appends to an existing log and scans only its own output', async () => {
    const { provider } = await load(
      `command = "echo Total size is 2G"\nsize_pattern = "Total size is ([0-9.]+[KMGTP]?)"\nfail_on_match = "^FATAL"`,
    )
    const c = ctx()
    mkdirSync(join(c.logFile, '..'), { recursive: true })
    writeFileSync(c.logFile, 'FATAL from an earlier attempt\nTotal size is 9T\n')
    expect(await provider.run(c)).toEqual({ size: '2G' })
    expect(read(c.logFile)).toMatch(/^FATAL from an earlier attempt\n/)
  })

  it('takes the size from group 1 of the last size_pattern match', async () => {
    const { provider } = await load(
      `command = ${toml('echo "Total size is 1.5G"; echo noise; echo "Total size is 1.75G"')}\nsize_pattern = "Total size is ([0-9\\\\.]+[KMGTP]?)"`,
    )
    expect(await provider.run(ctx())).toEqual({ size: '1.75G' })
    const none = await load(`command = "true"\nsize_pattern = "Total size is ([0-9.]+)"`)
    expect(await none.provider.run(ctx())).toEqual({})
  })

  it('fails a run whose log matches fail_on_match (Go flags as tunasync writes them)', async () => {
    const { provider } = await load(
      `command = ${toml('echo fine; echo "error: upstream 404"; echo "ERROR: again"; exit 0')}\nfail_on_match = "(?mi)^error: .*$"`,
    )
    const c = ctx()
    const err = (await provider.run(c).catch((e: unknown) => e)) as ProviderError
    expect(err).toBeInstanceOf(ProviderError)
    expect(err.code).toBe('CIDMIRROR_ERR_SYNC_FAIL_ON_MATCH')
    expect(err.message).toBe(
      'fail_on_match /^error: .*$/im matched 2 times in the log (first: "error: upstream 404")',
    )
    expect(read(c.logFile)).toContain(`cidmirror: ${err.message}`)
  })

  it('fails on a non-zero exit unless success_exit_codes has it', async () => {
    const { provider } = await load(`command = ${toml('echo "half done"; exit 3')}`)
    const err = (await provider.run(ctx()).catch((e: unknown) => e)) as ProviderError
    expect(err.code).toBe('CIDMIRROR_ERR_SYNC_EXIT')
    expect(err.exitCode).toBe(3)
    expect(err.message).toBe('command exited 3 (last output: "half done")')

    const ok = await load(`command = "exit 3"\nsuccess_exit_codes = [3]`)
    await expect(ok.provider.run(ctx())).resolves.toEqual({})
    const global = await load(`command = "exit 4"`, 'dangerous_global_success_exit_codes = [4]')
    await expect(global.provider.run(ctx())).resolves.toEqual({})
    // rsync-only codes do not apply to commands
    const rsyncOnly = await load(`command = "exit 24"\nrsync_success_exit_codes = [24]`)
    await expect(rsyncOnly.provider.run(ctx())).rejects.toThrow('command exited 24')
  })

  it('reports a death by signal', async () => {
    const { provider } = await load(`command = "kill -9 $$"`)
    const err = (await provider.run(ctx()).catch((e: unknown) => e)) as ProviderError
    expect(err.code).toBe('CIDMIRROR_ERR_SYNC_SIGNAL')
    expect(err.message).toBe('command killed by SIGKILL')
  })

  it('kills the whole process group on timeout: child and grandchild are gone when the run ends', async () => {
    const pids = join(tmp, 'pids')
    // A long grace: were TERM not enough, the log would say KILL (the run would take 60 s).
    const { provider } = await load(
      `command = ${toml(`sh -c 'sleep 300 & echo $! >> ${pids}; echo $$ >> ${pids}; wait' & echo $! >> ${pids}; wait`)}\ntimeout = "1s"\nkill_grace = "60s"`,
    )
    const c = ctx()
    const err = (await provider.run(c).catch((e: unknown) => e)) as ProviderError
    expect(err.code).toBe('CIDMIRROR_ERR_SYNC_TIMEOUT')
    expect(err.message).toBe('timed out after 1s')
    const list = read(pids).trim().split('\n').map(Number)
    expect(list.length).toBe(3)
    // Checked at once, no polling: the run ended only when the group was gone.
    for (const pid of list) expect(alive(pid)).toBe(false)
    expect(read(c.logFile)).not.toContain('KILL')
  })

  it('KILLs what ignores TERM after the grace period, and ends only once the whole group is gone', async () => {
    const pids = join(tmp, 'pids')
    // The child ignores TERM (and so do the grandchildren it forks: an ignored signal is inherited);
    // many grandchildren make the kernel's teardown after KILL take long enough to be seen.
    const { provider } = await load(
      `command = ${toml(`sh -c 'trap "" TERM; for i in $(seq 20); do sleep 300 & echo $! >> ${pids}; done; echo $$ >> ${pids}; while :; do sleep 0.1; done' & wait`)}\ntimeout = "500ms"\nkill_grace = "1s"`,
    )
    const c = ctx()
    const started = Date.now()
    await expect(provider.run(c)).rejects.toThrow('timed out after 500ms')
    const list = read(pids).trim().split('\n').map(Number)
    expect(list.length).toBe(21)
    for (const pid of list) expect(alive(pid)).toBe(false)
    expect(Date.now() - started).toBeGreaterThanOrEqual(1400) // the timeout, then the grace
    expect(read(c.logFile)).toContain(
      'cidmirror: command: processes outlived TERM by kill_grace (1s): KILLed\n',
    )
  })

  it('stops on abort and cleans up the group', async () => {
    const pids = join(tmp, 'pids')
    const { provider } = await load(`command = ${toml(`sleep 300 & echo $! > ${pids}; wait`)}`)
    const ac = new AbortController()
    const running = provider.run(ctx({ signal: ac.signal })).catch((e: unknown) => e)
    await waitFor(() => existsSync(pids) && read(pids) !== '', 'the command to start')
    ac.abort('stopped by tunasynctl')
    const err = (await running) as ProviderError
    expect(err.code).toBe('CIDMIRROR_ERR_SYNC_ABORTED')
    expect(err.message).toBe('stopped: stopped by tunasynctl')
    expect(alive(Number(read(pids)))).toBe(false)
  })

  it('ends leftovers of a command that exited (background children), KILLing what ignores TERM', async () => {
    const pids = join(tmp, 'pids')
    const { provider } = await load(
      `command = ${toml(`sleep 300 & echo $! > ${pids}; sh -c 'trap "" TERM; echo $$ >> ${pids}; exec sleep 300' & until [ $(wc -l < ${pids}) -ge 2 ]; do sleep 0.02; done; exit 0`)}\nkill_grace = "500ms"`,
    )
    const c = ctx()
    await expect(provider.run(c)).resolves.toEqual({})
    for (const pid of read(pids).trim().split('\n').map(Number)) expect(alive(pid)).toBe(false)
    expect(read(c.logFile)).toContain('KILLed')
  })

  it('applies memory_limit as an address-space limit', async () => {
    const { provider } = await load(`command = ${toml('echo "limit=$(ulimit -v)"')}\nmemory_limit = "256M"`)
    const c = ctx()
    await provider.run(c)
    expect(read(c.logFile)).toContain(`limit=${256 * 1024}\n`)
    // a program that wants more than that fails
    const hungry = await load(
      `command = ${toml(`${process.execPath} -e "Buffer.alloc(512 * 1024 * 1024, 1)"`)}\nmemory_limit = "64M"`,
    )
    await expect(hungry.provider.run(ctx())).rejects.toThrow(/^command (exited \d+|killed by SIG\w+)/)
  })
})
