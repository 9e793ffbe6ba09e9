import type { Command } from 'commander'
import type {
  CommandVerb,
  ManagerClient,
  SyncStatus,
  WebMirrorStatus,
  WireMirrorStatus,
} from '../../sync/index.ts'
import { UsageError } from '../errors.ts'

interface GlobalOpts {
  config?: string
  manager?: string
  token?: string
  json?: boolean
  worker?: string
}

const DEFAULT_MANAGER = 'http://127.0.0.1:14242'

/**
 * The manager's address and token: `-m URL` / `--token`, else the config's `[manager]` (`-c FILE`),
 * else `$CIDMIRROR_MANAGER` / `$CIDMIRROR_TOKEN` (and `$CIDMIRROR_CONFIG`), else 127.0.0.1:14242.
 * `needs`: the command that must carry the token (a control call); without one it stops here, naming
 * where the token is looked for.
 */
export async function managerClient(o: GlobalOpts, needs?: string): Promise<ManagerClient> {
  let base = o.manager
  let token = o.token || undefined
  let tokenFrom = token ? '--token' : undefined
  // Loaded here, not at the top: every command's start-up pays for what the registry imports.
  const sync = await import('../../sync/index.ts')
  const file = o.config ?? (base && token ? undefined : process.env.CIDMIRROR_CONFIG)
  if (file && (!base || !token)) {
    const config = await sync.loadConfig(file)
    sync.trustConfiguredCa(config)
    base ??= config.manager.apiBase
    if (!token && config.manager.token) {
      token = config.manager.token
      tokenFrom = `config ${config.file}: manager.token`
    }
    if (needs && !token) {
      throw new sync.TokenMissingError(needs, config.file, '; or pass --token, or set CIDMIRROR_TOKEN')
    }
  }
  base ??= process.env.CIDMIRROR_MANAGER ?? DEFAULT_MANAGER
  if (!token && process.env.CIDMIRROR_TOKEN) {
    token = process.env.CIDMIRROR_TOKEN
    tokenFrom = '$CIDMIRROR_TOKEN'
  }
  if (needs && !token) {
    throw new UsageError(
      `${needs} needs the manager's token: pass --token, set CIDMIRROR_TOKEN, or -c FILE whose [manager] sets token`,
    )
  }
  return new sync.ManagerClient(base, token, tokenFrom ? { tokenFrom } : {})
}

function out(text: string): void {
  process.stdout.write(text.endsWith('\n') ? text : `${text}\n`)
}

async function parseStatuses(value: string | undefined): Promise<SyncStatus[] | undefined> {
  if (!value) return undefined
  const { isSyncStatus } = await import('../../sync/index.ts')
  const list = value.split(',').map((s) => s.trim())
  for (const s of list) {
    if (!isSyncStatus(s)) {
      throw new UsageError(
        `unknown status ${JSON.stringify(s)}: expected none, failed, success, syncing, pre-syncing, paused, disabled`,
      )
    }
  }
  return list as SyncStatus[]
}

/** Plain-text table, columns padded to their widest cell. */
export function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)))
  const line = (cells: string[]): string =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i] as number)))
      .join('  ')
      .trimEnd()
  return [line(header), ...rows.map(line)].join('\n')
}

/** `2026-11-23 18:32:49 +0800` -> `2026-11-23 18:32`; the zero time -> `-`. */
function shortTime(goTime: string): string {
  return goTime.startsWith('0001-') ? '-' : goTime.slice(0, 16)
}

function shortRfc(rfc: string): string {
  if (!rfc || rfc.startsWith('0001-')) return '-'
  const d = new Date(rfc)
  const p = (n: number): string => String(n).padStart(2, '0')
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}`
}

/** The root CID of a job's last indexed sync (its status's `details.index`), '-' before the first. */
function rootCidOf(j: WireMirrorStatus): string {
  const index = j.details?.index
  const cid =
    typeof index === 'object' && index !== null ? (index as { rootCid?: unknown }).rootCid : undefined
  return typeof cid === 'string' && cid !== '' ? cid : '-'
}

/** `jobs list` on a terminal: each worker's jobs, with the root CID of each mirror's last sync. */
export function workerJobsTable(list: WireMirrorStatus[]): string {
  return table(
    ['NAME', 'WORKER', 'STATUS', 'LAST UPDATE', 'NEXT', 'SIZE', 'ROOT CID', 'ERROR'],
    list.map((j) => [
      j.name,
      j.worker,
      j.status,
      shortRfc(j.last_update),
      shortRfc(j.next_schedule),
      j.size,
      rootCidOf(j),
      j.error_msg,
    ]),
  )
}

function wantJson(o: GlobalOpts): boolean {
  return o.json === true || !process.stdout.isTTY
}

async function findWorker(client: ManagerClient, mirror: string, worker?: string): Promise<string> {
  if (worker) return worker
  const owners: string[] = []
  for (const w of await client.listWorkers()) {
    if ((await client.workerJobs(w.id)).some((j) => j.name === mirror)) owners.push(w.id)
  }
  if (owners.length === 0) throw new UsageError(`no worker has a mirror named ${mirror}`)
  if (owners.length > 1)
    throw new UsageError(`several workers have ${mirror} (${owners.join(', ')}): pass -w`)
  return owners[0] as string
}

export function register(program: Command): void {
  const jobs = program
    .command('jobs')
    .description('control mirror jobs through the manager (the tunasynctl commands)')
    .option('-c, --config <file>', 'read the manager address and token from this config')
    .option('-m, --manager <url>', 'manager URL (default $CIDMIRROR_MANAGER or http://127.0.0.1:14242)')
    .option('--token <token>', 'bearer token (default $CIDMIRROR_TOKEN)')
    .option('-w, --worker <id>', 'the worker (needed only when several have the mirror)')
    .option('--json', 'print JSON (the default when stdout is not a terminal)')

  const opts = (cmd: Command): GlobalOpts => cmd.optsWithGlobals() as GlobalOpts

  jobs
    .command('list')
    .description('list jobs: -a prints GET /jobs (the status page JSON); otherwise per worker, with errors')
    .option('-a, --all', "all jobs in tunasync's web shape (as `tunasynctl list -a`)")
    .option('-s, --status <list>', 'only these statuses, comma-separated (e.g. failed,paused)')
    .action(async (_o, cmd: Command) => {
      const o = opts(cmd) as GlobalOpts & { all?: boolean; status?: string }
      const statuses = await parseStatuses(o.status)
      const client = await managerClient(o)
      if (o.all) {
        let list: WebMirrorStatus[] = await client.listJobs()
        if (statuses) list = list.filter((j) => statuses.includes(j.status))
        if (wantJson(o)) return out(JSON.stringify(list, null, 2))
        return out(
          table(
            ['NAME', 'STATUS', 'LAST UPDATE', 'LAST ENDED', 'NEXT', 'SIZE', 'UPSTREAM'],
            list.map((j) => [
              j.name,
              j.status,
              shortTime(j.last_update),
              shortTime(j.last_ended),
              shortTime(j.next_schedule),
              j.size,
              j.upstream,
            ]),
          ),
        )
      }
      const workers = o.worker ? [o.worker] : (await client.listWorkers()).map((w) => w.id)
      let list: WireMirrorStatus[] = []
      for (const w of workers) list.push(...(await client.workerJobs(w)))
      list.sort((a, b) => (a.name === b.name ? (a.worker < b.worker ? -1 : 1) : a.name < b.name ? -1 : 1))
      if (statuses) list = list.filter((j) => statuses.includes(j.status))
      if (wantJson(o)) return out(JSON.stringify(list, null, 2))
      out(workerJobsTable(list))
    })

  const verb = (name: CommandVerb, description: string, force = false): void => {
    const c = jobs.command(`${name} <mirror>`).description(description)
    if (force) c.option('-f, --force', 'ignore the concurrency limit')
    c.action(async (mirror: string, _o, cmd: Command) => {
      const o = opts(cmd) as GlobalOpts & { force?: boolean }
      const client = await managerClient(o, `jobs ${name}`)
      const res = await client.cmd({
        cmd: name,
        mirror_id: mirror,
        ...(o.worker ? { worker_id: o.worker } : {}),
        ...(o.force ? { options: { force: true } } : {}),
      })
      if (wantJson(o)) out(JSON.stringify(res))
      else out(`${name} ${mirror}: ${res.message}`)
    })
  }
  verb('start', 'start a sync now (-f: even when the concurrency limit is reached)', true)
  verb('stop', 'stop the sync and pause the job (it no longer runs by itself)')
  verb('disable', 'stop and disable the job (`jobs flush` then removes it from the list)')
  verb('restart', 'kill the running sync and start it again', true)

  jobs
    .command('reload')
    .description('make the worker(s) re-read their config (all workers unless -w)')
    .action(async (_o, cmd: Command) => {
      const o = opts(cmd)
      const client = await managerClient(o, 'jobs reload')
      const res = await client.cmd({ cmd: 'reload', ...(o.worker ? { worker_id: o.worker } : {}) })
      out(wantJson(o) ? JSON.stringify(res) : `reload: ${res.message}`)
    })

  jobs
    .command('flush')
    .description('remove disabled jobs from the manager')
    .action(async (_o, cmd: Command) => {
      const o = opts(cmd)
      const res = await (await managerClient(o, 'jobs flush')).flushDisabled()
      out(wantJson(o) ? JSON.stringify(res) : 'flushed disabled jobs')
    })

  jobs
    .command('workers')
    .description('list the workers registered with the manager')
    .action(async (_o, cmd: Command) => {
      const o = opts(cmd)
      const list = await (await managerClient(o)).listWorkers()
      if (wantJson(o)) return out(JSON.stringify(list, null, 2))
      out(
        table(
          ['ID', 'URL', 'LAST ONLINE', 'LAST REGISTER'],
          list.map((w) => [w.id, w.url, shortRfc(w.last_online), shortRfc(w.last_register)]),
        ),
      )
    })

  jobs
    .command('rm-worker <id>')
    .description('remove a worker and its jobs from the manager')
    .action(async (id: string, _o, cmd: Command) => {
      const o = opts(cmd)
      const res = await (await managerClient(o, 'jobs rm-worker')).deleteWorker(id)
      out(wantJson(o) ? JSON.stringify(res) : `removed worker ${id}`)
    })

  jobs
    .command('set-size <mirror> <size>')
    .description('set the size shown for a mirror (for command jobs without size_pattern)')
    .action(async (mirror: string, size: string, _o, cmd: Command) => {
      const o = opts(cmd)
      const client = await managerClient(o, 'jobs set-size')
      const worker = await findWorker(client, mirror, o.worker)
      const res = await client.setSize(worker, mirror, size)
      if (res.size !== size) throw new UsageError(`size not set: the manager kept ${res.size}`)
      out(wantJson(o) ? JSON.stringify(res, null, 2) : `${mirror}: size set to ${size}`)
    })
}
