import { createServer } from 'node:net'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import type { WebMirrorStatus } from '../src/sync/status.ts'
import { killChild, runCli, spawnDaemon } from './helpers/cli.ts'
import { commandMirror, freePort, tempDir, waitFor, writeToml } from './jobs-helpers.ts'

/**
 * 6000 is tunasync's default worker port and on the fetch standard's list of "bad ports", which
 * Node's fetch refuses. Job control goes CLI -> manager -> worker: each hop must reach it.
 */
const WORKER_PORT = 6000

async function ensurePortFree(port: number): Promise<void> {
  const srv = createServer()
  await new Promise<void>((done, fail) => {
    srv.once('error', fail)
    srv.listen(port, '127.0.0.1', () => done())
  }).catch((err: NodeJS.ErrnoException) => {
    throw new Error(
      `127.0.0.1:${port} is ${err.code === 'EADDRINUSE' ? 'taken by another process' : `not usable (${err.code})`}: ` +
        `this test needs tunasync's default worker port; find the holder with: ss -ltnp 'sport = :${port}'`,
    )
  })
  await new Promise((done) => srv.close(done))
}

let tmp: ReturnType<typeof tempDir>
let stop: (() => Promise<void>) | undefined

beforeEach(() => {
  tmp = tempDir('cidmirror-port6000-')
})
afterEach(async () => {
  await stop?.()
  stop = undefined
  tmp.cleanup()
})

describe('job control with the worker on port 6000', () => {
  it('jobs start, stop, disable and reload reach a worker listening on 127.0.0.1:6000', async () => {
    await ensurePortFree(WORKER_PORT)
    const managerPort = await freePort()
    const manager = `http://127.0.0.1:${managerPort}`
    const config = writeToml({
      dir: tmp.dir,
      managerPort,
      workerPort: WORKER_PORT,
      interval: '6h',
      mirrors: commandMirror('slow', 'sleep 60'),
    })

    const d = spawnDaemon(config)
    stop = () => killChild(d.child)
    const status = async (): Promise<string | undefined> => {
      const res = await fetch(`${manager}/jobs`)
      return ((await res.json()) as WebMirrorStatus[]).find((j) => j.name === 'slow')?.status
    }
    const until = (want: string) =>
      waitFor(async () => (await status()) === want, `status ${want}`, 30_000, 100).catch((err) => {
        throw new Error(`${(err as Error).message}\ndaemon log:\n${d.log()}`)
      })

    // The job's first run starts by itself.
    await until('syncing')
    const workers = await runCli(['jobs', 'workers', '--json', '-c', config])
    expect(workers.stderr).toBe('')
    expect(JSON.parse(workers.stdout)).toMatchObject([{ id: 'w1', url: `http://127.0.0.1:${WORKER_PORT}/` }])

    const stopped = await runCli(['jobs', 'stop', 'slow', '-c', config])
    expect(stopped).toMatchObject({ code: 0, stderr: '' })
    await until('paused')

    const started = await runCli(['jobs', 'start', 'slow', '-c', config])
    expect(started).toMatchObject({ code: 0, stderr: '' })
    await until('syncing')

    const disabled = await runCli(['jobs', 'disable', 'slow', '-c', config])
    expect(disabled).toMatchObject({ code: 0, stderr: '' })
    await until('disabled')

    const reloaded = await runCli(['jobs', 'reload', '-c', config])
    expect(reloaded).toMatchObject({ code: 0, stderr: '' })
    expect(JSON.parse(reloaded.stdout)).toEqual({ message: 'successfully send command to worker w1' })

    d.child.kill('SIGTERM')
    expect(await new Promise((r) => d.child.once('exit', (c) => r(c)))).toBe(0)
  })
})
