import type { FastifyInstance } from 'fastify'
import type { Logger } from 'pino'
import { createApiServer, type ExtraRoutes, type ServerTls, validName } from '../http.ts'
import { isObject, requestJson } from '../http-client.ts'
import { COMMANDS, isCommandVerb } from '../protocol.ts'
import {
  applyEvent,
  emptyStatus,
  formatRfc3339,
  isKnownSize,
  isSyncStatus,
  type JobStatus,
  parseRfc3339,
  toWeb,
  toWire,
} from '../status.ts'
import {
  AmbiguousMirrorError,
  BadRequestError,
  RemoteError,
  UnknownMirrorError,
  UnknownWorkerError,
  UnreachableError,
  WorkerRefusedError,
  WorkerUnreachableError,
} from './errors.ts'
import type { ManagerStore, WorkerRecord } from './store.ts'

/** Longest worker URL and token a registration may carry. */
const MAX_URL_LENGTH = 2048
const MAX_TOKEN_LENGTH = 4096

export interface ManagerServerOptions {
  store: ManagerStore
  /** The token, or a function giving the current one. */
  token: string | (() => string)
  log: Logger
  tls?: ServerTls
  /** How long a worker may take to answer a forwarded command. */
  commandTimeoutMs?: number
  /** Further routes on the same listener (the daemon's read API, when the index is in this process). */
  routes?: ExtraRoutes | undefined
}

/**
 * The manager's HTTP API (tunasync's manager/server.go routes and JSON shapes). Public: `GET /ping`,
 * `GET /jobs`, `GET /workers`, `GET /workers/:id/jobs`. Everything else needs the bearer token.
 */
export function createManagerServer(opts: ManagerServerOptions): FastifyInstance {
  const { store } = opts
  const app = createApiServer({ log: opts.log, token: opts.token, ...(opts.tls ? { tls: opts.tls } : {}) })
  const auth = { preHandler: app.auth }

  const worker = async (id: string): Promise<WorkerRecord> => {
    const w = await store.getWorker(id)
    if (!w) throw new UnknownWorkerError(id)
    return w
  }
  const touch = async (w: WorkerRecord): Promise<void> => {
    await store.putWorker({ ...w, lastOnline: Date.now() })
  }

  app.get('/ping', async () => ({ message: 'pong' }))

  app.get('/jobs', async () => (await store.listJobs()).map(toWeb))

  app.delete('/jobs/disabled', auth, async () => {
    await store.exclusive(() => store.flushDisabled())
    return { message: 'flushed' }
  })

  app.get('/workers', async () => (await store.listWorkers()).map(workerJson))

  app.post('/workers', auth, async (req) => {
    const body = req.body
    if (!isObject(body)) throw new BadRequestError('expected a JSON object {id, url, token}')
    const id = validName(body.id, 'id')
    const url = body.url
    if (typeof url !== 'string' || url.length > MAX_URL_LENGTH || !isHttpUrl(url)) {
      throw new BadRequestError(`url: expected an http(s) URL of at most ${MAX_URL_LENGTH} characters`)
    }
    const token = typeof body.token === 'string' ? body.token : ''
    if (token.length > MAX_TOKEN_LENGTH) {
      throw new BadRequestError(`token: at most ${MAX_TOKEN_LENGTH} characters`)
    }
    const now = Date.now()
    const rec: WorkerRecord = { id, url, token, lastOnline: now, lastRegister: now }
    await store.exclusive(() => store.putWorker(rec))
    req.log.info({ worker: id, url }, 'worker registered')
    return workerJson(rec)
  })

  app.delete<{ Params: { id: string } }>('/workers/:id', auth, async (req) => {
    const id = validName(req.params.id, 'worker id')
    await store.exclusive(async () => {
      await worker(id)
      await store.deleteWorker(id)
    })
    req.log.info({ worker: id }, 'worker deleted')
    return { message: 'deleted' }
  })

  app.get<{ Params: { id: string } }>('/workers/:id/jobs', async (req) => {
    const id = validName(req.params.id, 'worker id')
    await worker(id)
    return (await store.listJobs(id)).map(toWire)
  })

  app.post<{ Params: { id: string; job: string } }>('/workers/:id/jobs/:job', auth, async (req) => {
    const id = validName(req.params.id, 'worker id')
    const job = validName(req.params.job, 'mirror name')
    return store.exclusive(async () => {
      const w = await worker(id)
      const cur = await store.getJob(id, job)
      const next = statusFromBody(req.body, id, job, cur, Date.now())
      // A disabled job the manager does not list (flushed, or never seen) stays out of the list.
      if (!cur && next.status === 'disabled') return toWire(next)
      await store.putJob(next)
      await touch(w)
      if (!cur || cur.status !== next.status) {
        req.log.info(
          { worker: id, job, status: next.status, error: next.errorMsg || undefined },
          'job status',
        )
      }
      return toWire(next)
    })
  })

  app.post<{ Params: { id: string; job: string } }>('/workers/:id/jobs/:job/size', auth, async (req) => {
    const id = validName(req.params.id, 'worker id')
    const job = validName(req.params.job, 'mirror name')
    const body = req.body
    if (!isObject(body) || typeof body.size !== 'string')
      throw new BadRequestError('expected {"name", "size"}')
    if (body.name !== undefined && body.name !== job) throw new BadRequestError('name does not match the URL')
    return store.exclusive(async () => {
      const w = await worker(id)
      const cur = await store.getJob(id, job)
      if (!cur) throw new UnknownMirrorError(job, `worker ${id}`)
      // tunasync tests `len(size) > 0 || size != "unknown"`, which lets "unknown" through.
      const next = isKnownSize(body.size as string) ? { ...cur, size: body.size as string } : cur
      await store.putJob(next)
      await touch(w)
      req.log.info({ worker: id, job, size: next.size }, 'mirror size set')
      return toWire(next)
    })
  })

  app.post<{ Params: { id: string } }>('/workers/:id/schedules', auth, async (req) => {
    const id = validName(req.params.id, 'worker id')
    const body = req.body
    if (!isObject(body) || !Array.isArray(body.schedules))
      throw new BadRequestError('expected {"schedules": [...]}')
    const updates: { name: string; at: number | null }[] = []
    for (const s of body.schedules) {
      if (!isObject(s)) throw new BadRequestError('schedules[]: expected {"name", "next_schedule"}')
      const name = validName(s.name, 'schedules[].name')
      const at = parseRfc3339(s.next_schedule)
      if (at === undefined) throw new BadRequestError(`schedules[${name}]: bad next_schedule`)
      updates.push({ name, at })
    }
    await store.exclusive(async () => {
      const w = await worker(id)
      for (const u of updates) {
        const cur = await store.getJob(id, u.name)
        if (cur && cur.nextSchedule !== u.at) await store.putJob({ ...cur, nextSchedule: u.at })
      }
      await touch(w)
    })
    return {}
  })

  app.post('/cmd', auth, async (req) => {
    const body = req.body
    if (!isObject(body))
      throw new BadRequestError('expected a JSON object {cmd, mirror_id, worker_id, options}')
    const cmd = body.cmd
    if (!isCommandVerb(cmd)) {
      throw new BadRequestError(`cmd: expected one of ${COMMANDS.join(', ')}`)
    }
    const mirror = body.mirror_id ?? ''
    const workerId = body.worker_id ?? ''
    if (typeof mirror !== 'string' || typeof workerId !== 'string') {
      throw new BadRequestError('mirror_id and worker_id must be strings')
    }
    if (mirror !== '') validName(mirror, 'mirror_id')
    if (workerId !== '') validName(workerId, 'worker_id')
    if (mirror === '' && cmd !== 'reload') throw new BadRequestError(`${cmd}: mirror_id is required`)
    const options = isObject(body.options) ? body.options : {}
    const args = Array.isArray(body.args) ? body.args.filter((a): a is string => typeof a === 'string') : []

    let targets: WorkerRecord[]
    if (workerId !== '') {
      targets = [await worker(workerId)]
    } else if (mirror !== '') {
      const owners = [
        ...new Set((await store.listJobs()).filter((j) => j.name === mirror).map((j) => j.worker)),
      ]
      if (owners.length === 0) throw new UnknownMirrorError(mirror)
      if (owners.length > 1) throw new AmbiguousMirrorError(mirror, owners)
      targets = [await worker(owners[0] as string)]
    } else {
      targets = await store.listWorkers()
      if (targets.length === 0) throw new BadRequestError('no worker is registered')
    }

    for (const w of targets) {
      req.log.info({ cmd, mirror, worker: w.id }, 'posting command to worker')
      try {
        await requestJson('POST', w.url, {
          token: w.token,
          body: { cmd, mirror_id: mirror, args, options },
          timeoutMs: opts.commandTimeoutMs ?? 60_000,
        })
      } catch (err) {
        if (err instanceof RemoteError) {
          if (err.statusCode === 404) throw new UnknownMirrorError(mirror, `worker ${w.id}`)
          throw new WorkerRefusedError(w.id, err)
        }
        if (err instanceof UnreachableError) throw new WorkerUnreachableError(w.id, w.url, err.message)
        throw err
      }
      if (cmd === 'stop' || cmd === 'disable') {
        await store.exclusive(async () => {
          const cur = await store.getJob(w.id, mirror)
          if (cur) {
            await store.putJob(
              applyEvent(
                cur,
                { status: cmd === 'stop' ? 'paused' : 'disabled', message: '', schedule: false },
                Date.now(),
              ),
            )
          }
        })
      }
    }
    return { message: `successfully send command to worker ${targets.map((w) => w.id).join(', ')}` }
  })

  opts.routes?.(app)
  return app
}

function workerJson(w: WorkerRecord): Record<string, unknown> {
  return {
    id: w.id,
    url: w.url,
    token: 'REDACTED',
    last_online: formatRfc3339(w.lastOnline),
    last_register: formatRfc3339(w.lastRegister),
  }
}

function isHttpUrl(s: string): boolean {
  try {
    const u = new URL(s)
    return u.protocol === 'http:' || u.protocol === 'https:'
  } catch {
    return false
  }
}

/**
 * A status posted by a worker. cidmirror's workers send their own times (so a status queued while the
 * manager was down keeps them); a tunasync-style body with zero times gets tunasync's rules applied
 * with the manager's clock.
 */
export function statusFromBody(
  body: unknown,
  worker: string,
  job: string,
  cur: JobStatus | undefined,
  now: number,
): JobStatus {
  if (!isObject(body)) throw new BadRequestError('expected a JSON object (a MirrorStatus)')
  if (body.name !== undefined && body.name !== job) throw new BadRequestError('name does not match the URL')
  if (!isSyncStatus(body.status)) {
    throw new BadRequestError(`status: invalid status value ${JSON.stringify(body.status)}`)
  }
  const str = (key: string, dflt: string): string => {
    const v = body[key]
    if (v === undefined || v === null) return dflt
    if (typeof v !== 'string') throw new BadRequestError(`${key}: expected a string`)
    return v
  }
  const time = (key: string): number | null => {
    const v = parseRfc3339(body[key])
    if (v === undefined) throw new BadRequestError(`${key}: expected an RFC 3339 time`)
    return v
  }
  const base = cur ?? emptyStatus(job, worker, '', true)
  const size = str('size', 'unknown')
  const incoming: JobStatus = {
    ...base,
    name: job,
    worker,
    isMaster: typeof body.is_master === 'boolean' ? body.is_master : base.isMaster,
    upstream: str('upstream', base.upstream),
    status: body.status,
  }
  const times = {
    lastUpdate: time('last_update'),
    lastStarted: time('last_started'),
    lastEnded: time('last_ended'),
    nextSchedule: time('next_schedule'),
  }
  let next: JobStatus
  if (times.lastUpdate !== null || times.lastStarted !== null || times.lastEnded !== null) {
    next = {
      ...incoming,
      ...times,
      errorMsg: str('error_msg', ''),
      size: isKnownSize(size) ? size : base.size,
    }
  } else {
    next = applyEvent(
      { ...incoming, status: base.status },
      { status: body.status, message: str('error_msg', ''), schedule: true, size },
      now,
    )
    next.nextSchedule = times.nextSchedule ?? base.nextSchedule
    if (next.status !== 'success' && next.status !== 'failed' && next.status !== 'none')
      next.nextSchedule = null
  }
  if (isObject(body.details)) next.details = body.details
  return next
}
