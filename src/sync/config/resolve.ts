import { readFileSync } from 'node:fs'
import { homedir, hostname } from 'node:os'
import { isAbsolute, join, resolve } from 'node:path'
import { ConfigError } from '../errors.ts'
import { checkPaths, type KeptPath, type MirrorPlace } from './paths.ts'
import type { FileDoc, RawMirror } from './read.ts'
import type { DATABASE, GLOBAL, MANAGER, SERVER } from './schema.ts'
import type {
  Config,
  GlobalConfig,
  ManagerConfig,
  MirrorConfig,
  PassthroughSection,
  ProviderKind,
} from './types.ts'
import { badValue, expandTemplate, type LOG_DIR_FIELDS, type Parsed, type Where } from './values.ts'

export const DEFAULTS = {
  concurrent: 4,
  intervalMs: 120 * 60_000,
  retry: 2,
  timeoutMs: 0,
  logKeep: 10,
  killGraceMs: 10_000,
  retryBackoffMs: 30_000,
  retryBackoffMaxMs: 3_600_000,
  rsyncTimeoutMs: 120_000,
  apiBase: 'http://127.0.0.1:14242',
  serverAddr: '127.0.0.1',
  serverPort: 6000,
} as const

/** A section merged over all files, with the file each key came from. */
interface Merged<T> {
  values: T
  from: Record<string, Where>
}

function merge<T extends object>(
  docs: FileDoc[],
  section: 'global' | 'manager' | 'server' | 'database',
): Merged<T> {
  const values: Record<string, unknown> = {}
  const from: Record<string, Where> = {}
  for (const doc of docs) {
    for (const [k, v] of Object.entries(doc[section])) {
      const earlier = from[k]
      if (earlier) {
        throw new ConfigError(
          'CONFIG_DUPLICATE',
          doc.where.file,
          `${section}.${k}`,
          `already set in ${earlier.file}`,
        )
      }
      values[k] = v
      from[k] = doc.where
    }
  }
  return { values: values as T, from }
}

export function resolveConfig(docs: FileDoc[]): Config {
  const main = docs[0] as FileDoc
  const g = merge<Parsed<typeof GLOBAL>>(docs, 'global')
  const m = merge<Parsed<typeof MANAGER>>(docs, 'manager')
  const s = merge<Parsed<typeof SERVER>>(docs, 'server')
  const d = merge<Parsed<typeof DATABASE>>(docs, 'database')

  const name = g.values.name ?? hostname()
  const stateDir = join(process.env.XDG_STATE_HOME || join(homedir(), '.local', 'state'), 'cidmirror', name)
  const gv = g.values
  const global: GlobalConfig = {
    name,
    mirrorDir: gv.mirror_dir ?? '',
    logDir: gv.log_dir ?? join(stateDir, 'log', '{{.Name}}'),
    concurrent: gv.concurrent ?? DEFAULTS.concurrent,
    intervalMs: gv.interval || DEFAULTS.intervalMs,
    retry: gv.retry || DEFAULTS.retry,
    timeoutMs: gv.timeout ?? DEFAULTS.timeoutMs,
    rsyncOptions: gv.rsync_options ?? [],
    execOnSuccess: gv.exec_on_success ?? [],
    execOnFailure: gv.exec_on_failure ?? [],
    successExitCodes: uniq([
      ...(gv.success_exit_codes ?? []),
      ...(gv.dangerous_global_success_exit_codes ?? []),
    ]),
    rsyncSuccessExitCodes: uniq([
      ...(gv.rsync_success_exit_codes ?? []),
      ...(gv.dangerous_global_rsync_success_exit_codes ?? []),
    ]),
    logKeep: gv.log_keep ?? DEFAULTS.logKeep,
    killGraceMs: gv.kill_grace ?? DEFAULTS.killGraceMs,
    retryBackoffMs: gv.retry_backoff || DEFAULTS.retryBackoffMs,
    retryBackoffMaxMs: gv.retry_backoff_max || DEFAULTS.retryBackoffMaxMs,
  }
  if (global.retryBackoffMaxMs < global.retryBackoffMs) {
    badValue(
      g.from.retry_backoff_max ?? main.where,
      'global.retry_backoff_max',
      'must not be shorter than retry_backoff',
    )
  }

  const manager = resolveManager(m, main.where)
  const sv = s.values
  const server = {
    hostname: sv.hostname ?? hostname(),
    listenAddr: sv.listen_addr ?? DEFAULTS.serverAddr,
    listenPort: sv.listen_port ?? DEFAULTS.serverPort,
    listenSource: {
      addr: { file: (s.from.listen_addr ?? main.where).file, key: 'server.listen_addr' },
      port: { file: (s.from.listen_port ?? main.where).file, key: 'server.listen_port' },
    },
    sslCert: sv.ssl_cert,
    sslKey: sv.ssl_key,
  }
  if (Boolean(server.sslCert) !== Boolean(server.sslKey)) {
    const w = s.from.ssl_cert ?? s.from.ssl_key ?? main.where
    badValue(w, server.sslCert ? 'server.ssl_key' : 'server.ssl_cert', 'ssl_cert and ssl_key go together')
  }
  const database = { path: d.values.path ?? join(stateDir, 'db') }

  const mirrors: MirrorConfig[] = []
  const places: MirrorPlace[] = []
  const kept: KeptPath[] = docs.map((doc) => ({ what: 'the config file', path: doc.where.file }))
  const names = new Map<string, MirrorConfig>()
  const warnings = docs.flatMap((doc) => doc.warnings)
  for (const doc of docs) {
    for (const raw of doc.mirrors) {
      for (const leaf of flatten(raw, undefined)) {
        const { mirror, place } = resolveMirror(
          leaf,
          global,
          g.from.mirror_dir ?? main.where,
          g.from.log_dir ?? main.where,
        )
        if (mirror.role !== undefined && mirror.role !== 'master' && mirror.role !== 'slave') {
          warnings.push(
            `config ${mirror.source.file}: ${mirror.source.key}.role: "${mirror.role}" is neither "master" nor "slave": read as "master", as tunasync does`,
          )
        }
        const dup = names.get(mirror.name)
        if (dup) {
          throw new ConfigError(
            'CONFIG_DUPLICATE',
            mirror.source.file,
            `${mirror.source.key}.name`,
            `mirror "${mirror.name}" is already defined at ${dup.source.file}: ${dup.source.key}`,
          )
        }
        names.set(mirror.name, mirror)
        mirrors.push(mirror)
        places.push(place)
        if (mirror.excludeFile)
          kept.push({ what: `the exclude_file of mirror "${mirror.name}"`, path: mirror.excludeFile })
      }
    }
  }
  if (m.values.token_file) kept.push({ what: 'manager.token_file', path: m.values.token_file })
  for (const [what, path] of [
    ['manager.ca_cert', manager.caCert],
    ['manager.ssl_cert', manager.sslCert],
    ['manager.ssl_key', manager.sslKey],
    ['server.ssl_cert', server.sslCert],
    ['server.ssl_key', server.sslKey],
  ] as const) {
    if (path) kept.push({ what, path })
  }
  checkPaths({
    mirrorRoot:
      global.mirrorDir === '' ? undefined : { dir: global.mirrorDir, where: g.from.mirror_dir ?? main.where },
    mirrors: places,
    database: { dir: database.path, key: 'database.path', where: d.from.path ?? main.where },
    kept,
  })

  const debugFrom = docs.filter((doc) => doc.debug !== undefined)
  if (debugFrom.length > 1) {
    const [first, second] = debugFrom as [FileDoc, FileDoc]
    throw new ConfigError(
      'CONFIG_DUPLICATE',
      second.where.file,
      'debug',
      `already set in ${first.where.file}`,
    )
  }
  const sections: Record<string, PassthroughSection> = {}
  for (const doc of docs) {
    for (const [key, table] of Object.entries(doc.sections)) {
      const first = sections[key]
      if (first)
        throw new ConfigError(
          'CONFIG_DUPLICATE',
          doc.where.file,
          key,
          `[${key}] is already set in ${first.file}`,
        )
      sections[key] = { table, file: doc.where.file, dir: doc.where.dir }
    }
  }
  const keyFiles: Record<string, string> = {}
  for (const [section, merged] of [
    ['global', g],
    ['manager', m],
    ['server', s],
    ['database', d],
  ] as const) {
    for (const [k, w] of Object.entries(merged.from)) keyFiles[`${section}.${k}`] = w.file
  }

  return {
    file: main.where.file,
    files: docs.map((x) => x.where.file),
    keyFiles,
    debug: debugFrom[0]?.debug ?? false,
    warnings,
    global,
    manager,
    server,
    database,
    mirrors,
    sections,
  }
}

function resolveManager(m: Merged<Parsed<typeof MANAGER>>, mainWhere: Where): ManagerConfig {
  const v = m.values
  const list =
    v.api_base_list && v.api_base_list.length > 0 ? v.api_base_list : [v.api_base ?? DEFAULTS.apiBase]
  for (const [i, u] of list.entries()) {
    const key =
      v.api_base_list && v.api_base_list.length > 0 ? `manager.api_base_list[${i}]` : 'manager.api_base'
    const where = m.from.api_base_list ?? m.from.api_base ?? mainWhere
    let url: URL
    try {
      url = new URL(u)
    } catch {
      badValue(where, key, `"${u}" is not a URL (e.g. "http://127.0.0.1:14242")`)
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:')
      badValue(where, key, `"${u}" is not an http(s) URL`)
  }
  const apiBase = (list[0] as string).replace(/\/+$/, '')
  const url = new URL(apiBase)
  if (v.token !== undefined && v.token_file !== undefined) {
    badValue(m.from.token_file as Where, 'manager.token_file', 'set token or token_file, not both')
  }
  let token = v.token
  if (v.token_file !== undefined) {
    try {
      token = readFileSync(v.token_file, 'utf8').trim()
    } catch (err) {
      throw new ConfigError(
        'CONFIG_READ',
        (m.from.token_file as Where).file,
        'manager.token_file',
        `cannot read ${v.token_file}: ${(err as Error).message}`,
        { cause: err },
      )
    }
    if (token === '') badValue(m.from.token_file as Where, 'manager.token_file', `${v.token_file} is empty`)
  }
  if (Boolean(v.ssl_cert) !== Boolean(v.ssl_key)) {
    const w = (m.from.ssl_cert ?? m.from.ssl_key) as Where
    badValue(w, v.ssl_cert ? 'manager.ssl_key' : 'manager.ssl_cert', 'ssl_cert and ssl_key go together')
  }
  const defaultPort = url.port ? Number(url.port) : url.protocol === 'https:' ? 443 : 80
  // Without listen_addr / listen_port the manager listens where api_base points.
  const api = {
    file: (m.from.api_base_list ?? m.from.api_base ?? mainWhere).file,
    key: v.api_base_list && v.api_base_list.length > 0 ? 'manager.api_base_list[0]' : 'manager.api_base',
  }
  return {
    apiBase,
    apiBaseList: list.map((u) => u.replace(/\/+$/, '')),
    token,
    caCert: v.ca_cert,
    listenAddr: v.listen_addr ?? url.hostname.replace(/^\[(.*)\]$/, '$1'),
    listenPort: v.listen_port ?? defaultPort,
    listensAtApiBase: v.listen_addr === undefined && v.listen_port === undefined,
    listenSource: {
      addr: m.from.listen_addr ? { file: m.from.listen_addr.file, key: 'manager.listen_addr' } : api,
      port: m.from.listen_port ? { file: m.from.listen_port.file, key: 'manager.listen_port' } : api,
    },
    sslCert: v.ssl_cert,
    sslKey: v.ssl_key,
    readAccess: v.read_access ?? 'token',
  }
}

interface Leaf {
  values: RawMirror['values']
  where: Where
  key: string
}

/** tunasync's recursiveMirrors: a child inherits every key of its parent; only leaves are mirrors. */
function* flatten(raw: RawMirror, parent: Leaf | undefined): Generator<Leaf> {
  const values = { ...parent?.values, ...raw.values }
  if (parent?.values.env && raw.values.env) values.env = { ...parent.values.env, ...raw.values.env }
  const here: Leaf = { values, where: raw.where, key: raw.key }
  if (raw.children === undefined) {
    yield here
    return
  }
  if (raw.children.length === 0) badValue(raw.where, `${raw.key}.mirrors`, 'is empty')
  for (const child of raw.children) yield* flatten(child, here)
}

function resolveMirror(
  leaf: Leaf,
  global: GlobalConfig,
  globalDirWhere: Where,
  globalLogWhere: Where,
): { mirror: MirrorConfig; place: MirrorPlace } {
  const v = leaf.values
  const w = leaf.where
  const key = (k: string) => `${leaf.key}.${k}`
  if (v.name === undefined) {
    throw new ConfigError('CONFIG_MISSING_KEY', w.file, key('name'), 'missing')
  }
  const name = v.name
  const provider: ProviderKind = v.provider ?? 'rsync'
  const upstream = v.upstream ?? ''
  if (provider !== 'command') {
    if (upstream === '') throw new ConfigError('CONFIG_MISSING_KEY', w.file, key('upstream'), 'missing')
    if (!upstream.endsWith('/'))
      badValue(w, key('upstream'), `"${upstream}": an rsync upstream ends with "/"`)
  } else if (!v.command) {
    throw new ConfigError('CONFIG_MISSING_KEY', w.file, key('command'), 'missing (command provider)')
  }
  if (v.rsync_override_only && !v.rsync_override) {
    badValue(w, key('rsync_override_only'), 'is set but rsync_override is not')
  }

  let mirrorDir = v.mirror_dir
  const subdir = v.mirror_subdir ?? ''
  if (subdir !== '' && (isAbsolute(subdir) || subdir.split(/[/\\]/).includes('..'))) {
    badValue(
      w,
      key('mirror_subdir'),
      `"${subdir}" must be a relative folder inside global.mirror_dir, without ".."`,
    )
  }
  if (mirrorDir === undefined) {
    if (global.mirrorDir === '') {
      throw new ConfigError(
        'CONFIG_MISSING_KEY',
        globalDirWhere.file,
        'global.mirror_dir',
        `missing (needed by ${leaf.key} "${name}", which sets no mirror_dir)`,
      )
    }
    mirrorDir = resolve(global.mirrorDir, subdir, name)
  }
  const logTemplate = v.log_dir ?? global.logDir
  const logKey = v.log_dir === undefined ? 'global.log_dir' : key('log_dir')
  const logWhere = v.log_dir === undefined ? globalLogWhere : w
  const intervalMs = v.interval || global.intervalMs
  const retry = v.retry || global.retry
  const timeoutMs = v.timeout || global.timeoutMs
  // tunasync's values, in its units (minutes, seconds); the provider by name (tunasync prints 0, 1, 2).
  const fields: Record<(typeof LOG_DIR_FIELDS)[number], string> = {
    Name: name,
    Provider: provider,
    Upstream: upstream,
    MirrorDir: v.mirror_dir ?? '',
    MirrorSubDir: subdir,
    Role: v.role ?? '',
    Interval: String(intervalMs / 60_000),
    Retry: String(retry),
    Timeout: String(timeoutMs / 1000),
    Command: v.command ?? '',
    ExcludeFile: v.exclude_file ?? '',
    Username: v.username ?? '',
    Stage1Profile: v.stage1_profile ?? '',
    RsyncTimeout: String((v.rsync_timeout ?? 0) / 1000),
  }
  for (const [field, value] of Object.entries(fields)) {
    if (logTemplate.includes(`.${field}`) && value.split(/[/\\]/).includes('..')) {
      badValue(
        logWhere,
        logKey,
        `{{.${field}}} of mirror "${name}" is ${JSON.stringify(value)}: a ".." there would move its logs out of their folder`,
      )
    }
  }
  const logDir = resolve(w.dir, expandTemplate(logTemplate, fields))

  const isRsync = provider !== 'command'
  const place: MirrorPlace = {
    name,
    dir: mirrorDir,
    key: v.mirror_dir !== undefined ? key('mirror_dir') : leaf.key,
    where: w,
    logDir,
    logKey,
    logWhere,
  }
  const mirror: MirrorConfig = {
    name,
    provider,
    upstream,
    isMaster: v.role !== 'slave',
    role: v.role,
    intervalMs,
    retry,
    timeoutMs,
    mirrorDir,
    logDir,
    env: v.env ?? {},
    command: v.command,
    failOnMatch: v.fail_on_match,
    sizePattern: v.size_pattern,
    excludeFile: v.exclude_file,
    rsyncOptions: [...global.rsyncOptions, ...(v.rsync_options ?? [])],
    rsyncOverride: v.rsync_override,
    rsyncOverrideOnly: v.rsync_override_only ?? false,
    rsyncTimeoutMs: v.rsync_no_timeout ? 0 : v.rsync_timeout || DEFAULTS.rsyncTimeoutMs,
    stage1Profile: v.stage1_profile ?? 'debian',
    useIPv4: v.use_ipv4 ?? false,
    useIPv6: v.use_ipv6 ?? false,
    username: v.username,
    password: v.password,
    execOnSuccess: [
      ...(v.exec_on_success && v.exec_on_success.length > 0 ? v.exec_on_success : global.execOnSuccess),
      ...(v.exec_on_success_extra ?? []),
    ],
    execOnFailure: [
      ...(v.exec_on_failure && v.exec_on_failure.length > 0 ? v.exec_on_failure : global.execOnFailure),
      ...(v.exec_on_failure_extra ?? []),
    ],
    successExitCodes: uniq([
      ...global.successExitCodes,
      ...(v.success_exit_codes ?? []),
      ...(isRsync ? [...global.rsyncSuccessExitCodes, ...(v.rsync_success_exit_codes ?? [])] : []),
    ]),
    memoryLimit: v.memory_limit || undefined,
    logKeep: v.log_keep ?? global.logKeep,
    killGraceMs: v.kill_grace ?? global.killGraceMs,
    replicationN: v.replication_n,
    wholeFileDigest: v.whole_file_digest === true,
    source: { file: w.file, key: leaf.key },
  }
  return { mirror, place }
}

function uniq(xs: number[]): number[] {
  return [...new Set(xs)]
}
