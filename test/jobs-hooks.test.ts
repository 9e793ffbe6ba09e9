import { existsSync, readdirSync, readFileSync, readlinkSync } from 'node:fs'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import type { Database } from '../src/db.ts'
import { splitCommand } from '../src/sync/command-line.ts'
import type { HookContext, JobHook } from '../src/sync/hooks/hook.ts'
import { createLogRotationHook, listLogs } from '../src/sync/hooks/log-rotation.ts'
import { Job, type JobReport } from '../src/sync/job.ts'
import { Semaphore } from '../src/sync/semaphore.ts'
import { commandMirror, configAndSpecs, FAST_BACKOFF, openDb, quietLog, tempDir } from './jobs-helpers.ts'

let tmp: ReturnType<typeof tempDir>
let db: Database
beforeEach(async () => {
  tmp = tempDir()
  db = await openDb(tmp.dir)
})
afterEach(async () => {
  await db.close()
  tmp.cleanup()
})

function recorder(name: string, calls: string[]): JobHook {
  const rec = (stage: string) => (ctx: HookContext) => {
    calls.push(`${name}.${stage}${stage === 'preJob' ? '' : `#${ctx.attempt}`}`)
  }
  return {
    name,
    preJob: rec('preJob'),
    preExec: rec('preExec'),
    postExec: rec('postExec'),
    postSuccess: rec('postSuccess'),
    postFail: rec('postFail'),
  }
}

async function runOnce(job: Job): Promise<void> {
  job.start()
  await job.idle()
}

describe('hooks', () => {
  it("run in tunasync's order: pre hooks as registered, post hooks reversed, per attempt", async () => {
    const flag = join(tmp.dir, 'second-try')
    // Fails the first time, succeeds the second.
    const cmd = `if [ -e ${flag} ]; then echo ok; else touch ${flag}; exit 3; fi`
    const { specs } = await configAndSpecs({ dir: tmp.dir, retry: 2, mirrors: commandMirror('m', cmd) }, db)
    const spec = specs[0]!
    const calls: string[] = []
    spec.hooks = [recorder('A', calls), recorder('B', calls)]
    const events: JobReport[] = []
    const job = new Job(spec, {
      semaphore: new Semaphore(1),
      backoff: FAST_BACKOFF,
      log: quietLog(),
      onEvent: (_j, ev) => events.push(ev),
    })
    await runOnce(job)
    expect(calls).toEqual([
      'A.preJob',
      'B.preJob',
      'A.preExec#0',
      'B.preExec#0',
      'B.postExec#0',
      'A.postExec#0',
      'B.postFail#0',
      'A.postFail#0',
      'A.preExec#1',
      'B.preExec#1',
      'B.postExec#1',
      'A.postExec#1',
      'B.postSuccess#1',
      'A.postSuccess#1',
    ])
    expect(events.map((e) => e.status)).toEqual(['pre-syncing', 'syncing', 'failed', 'syncing', 'success'])
    expect(events[2]).toMatchObject({ schedule: false })
    expect(events[4]).toMatchObject({ schedule: true })
  })

  it('a failing hook ends the run as failed with the stage in the message, no further attempt', async () => {
    const { specs } = await configAndSpecs(
      { dir: tmp.dir, retry: 3, mirrors: commandMirror('m', 'true') },
      db,
    )
    const spec = specs[0]!
    const calls: string[] = []
    spec.hooks = [
      recorder('A', calls),
      {
        name: 'bad',
        preExec: () => {
          throw new Error('no disk')
        },
      },
    ]
    const events: JobReport[] = []
    const job = new Job(spec, {
      semaphore: new Semaphore(1),
      backoff: FAST_BACKOFF,
      log: quietLog(),
      onEvent: (_j, ev) => events.push(ev),
    })
    await runOnce(job)
    expect(events.map((e) => e.status)).toEqual(['pre-syncing', 'failed'])
    expect(events[1]).toMatchObject({ message: 'error exec hook pre-exec: no disk', schedule: true })
    expect(calls).toEqual(['A.preJob', 'A.preExec#0'])
  })

  it('exec_on_success and exec_on_failure see the exit status in their environment', async () => {
    const out = join(tmp.dir, 'env-')
    const dump = (tag: string) => `sh -c "env | grep -E '^(TUNASYNC|CIDMIRROR)_' | sort > ${out}${tag}"`
    const mirrors =
      commandMirror('good', 'echo fine', `exec_on_success = [${JSON.stringify(dump('ok'))}]`) +
      commandMirror('bad', 'echo broken; exit 7', `exec_on_failure = [${JSON.stringify(dump('fail'))}]`)
    const { specs } = await configAndSpecs({ dir: tmp.dir, retry: 1, mirrors }, db)
    for (const spec of specs) {
      const job = new Job(spec, {
        semaphore: new Semaphore(2),
        backoff: FAST_BACKOFF,
        log: quietLog(),
        onEvent: () => {},
      })
      await runOnce(job)
    }
    const ok = readFileSync(`${out}ok`, 'utf8')
    expect(ok).toContain('TUNASYNC_JOB_EXIT_STATUS=success')
    expect(ok).toContain('CIDMIRROR_JOB_EXIT_STATUS=success')
    expect(ok).toContain('TUNASYNC_MIRROR_NAME=good')
    expect(ok).toContain(`CIDMIRROR_WORKING_DIR=${tmp.dir}/mirrors/good`)
    expect(ok).toMatch(/TUNASYNC_LOG_FILE=.*\/log\/good\/good_\d{4}-\d\d-\d\d_\d\d_\d\d\.log/)
    const fail = readFileSync(`${out}fail`, 'utf8')
    expect(fail).toContain('TUNASYNC_JOB_EXIT_STATUS=failure')
    expect(fail).toContain('CIDMIRROR_JOB_EXIT_CODE=7')
    expect(fail).toContain('TUNASYNC_UPSTREAM_URL=https://upstream.example/bad/')
  })

  it('splits commands as a shell would, without a shell', () => {
    expect(splitCommand(`sh -c "echo 'a b' \\"c\\"" x\\ y ''`)).toEqual([
      'sh',
      '-c',
      `echo 'a b' "c"`,
      'x y',
      '',
    ])
  })
})

describe('log rotation', () => {
  const ctxFor = (logDir: string): HookContext => ({
    job: { name: 'deb', kind: 'command', upstream: 'u', workingDir: '/nowhere', logDir },
    attempt: 0,
    logFile: '/dev/null',
    env: {},
    extraArgs: [],
    details: {},
    signal: new AbortController().signal,
    log: quietLog(),
  })

  it('one file per attempt, even within one minute; failures renamed .fail; a relative latest link', async () => {
    const logDir = join(tmp.dir, 'log', 'deb')
    const now = () => new Date(2026, 10, 23, 18, 32, 5)
    const hook = createLogRotationHook({ keep: 10, now })
    const ctx = ctxFor(logDir)
    await hook.preExec!(ctx)
    expect(ctx.logFile).toBe(join(logDir, 'deb_2026-11-23_18_32.log'))
    expect(readlinkSync(join(logDir, 'latest'))).toBe('deb_2026-11-23_18_32.log')
    await hook.postFail!(ctx)
    expect(existsSync(join(logDir, 'deb_2026-11-23_18_32.log.fail'))).toBe(true)
    expect(readlinkSync(join(logDir, 'latest'))).toBe('deb_2026-11-23_18_32.log.fail')
    // A retry in the same minute: its own file.
    await hook.preExec!(ctx)
    expect(ctx.logFile).toBe(join(logDir, 'deb_2026-11-23_18_32-2.log'))
    await hook.preExec!(ctx)
    expect(ctx.logFile).toBe(join(logDir, 'deb_2026-11-23_18_32-3.log'))
    expect(readlinkSync(join(logDir, 'latest'))).toBe('deb_2026-11-23_18_32-3.log')
  })

  it('keeps the last N logs of the job, and nothing of other jobs is touched', async () => {
    const logDir = join(tmp.dir, 'log', 'deb')
    let minute = 0
    const hook = createLogRotationHook({ keep: 3, now: () => new Date(2026, 0, 1, 10, minute) })
    const other = createLogRotationHook({ keep: 3, now: () => new Date(2026, 0, 1, 9, 0) })
    const otherCtx = { ...ctxFor(logDir), job: { ...ctxFor(logDir).job, name: 'deb-security' } }
    await other.preExec!(otherCtx)
    for (minute = 0; minute < 6; minute++) {
      const ctx = ctxFor(logDir)
      await hook.preExec!(ctx)
      if (minute % 2) await hook.postFail!(ctx)
    }
    expect(await listLogs(logDir, 'deb')).toEqual([
      'deb_2026-01-01_10_03.log.fail',
      'deb_2026-01-01_10_04.log',
      'deb_2026-01-01_10_05.log.fail',
    ])
    expect(readdirSync(logDir)).toContain('deb-security_2026-01-01_09_00.log')
    expect(readlinkSync(join(logDir, 'latest'))).toBe('deb_2026-01-01_10_05.log.fail')
  })

  it('a run writes its output to the rotated log', async () => {
    const { specs } = await configAndSpecs(
      { dir: tmp.dir, mirrors: commandMirror('m', 'echo hello-log') },
      db,
    )
    const job = new Job(specs[0]!, {
      semaphore: new Semaphore(1),
      backoff: FAST_BACKOFF,
      log: quietLog(),
      onEvent: () => {},
    })
    await runOnce(job)
    const logDir = join(tmp.dir, 'log', 'm')
    expect(readFileSync(join(logDir, 'latest'), 'utf8')).toContain('hello-log')
    expect(readlinkSync(join(logDir, 'latest'))).toMatch(/^m_\d{4}-\d\d-\d\d_\d\d_\d\d\.log$/)
  })
})
