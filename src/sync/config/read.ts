import { glob, readFile, realpath } from 'node:fs/promises'
import { dirname, resolve } from 'node:path'
import { parse, TomlError } from 'smol-toml'
import { ConfigError } from '../errors.ts'
import {
  BTRFS,
  CGROUP,
  DATABASE,
  DOCKER,
  GLOBAL,
  MANAGER,
  MIRROR,
  MIRROR_UNSUPPORTED,
  PASSTHROUGH_SECTIONS,
  SERVER,
  TUNASYNC_FILES,
  TUNASYNC_MANAGER_SERVER,
  ZFS,
} from './schema.ts'
import {
  badValue,
  bool,
  isTable,
  type Parsed,
  resolvePath,
  type Spec,
  show,
  str,
  type Where,
} from './values.ts'

/** One `[[mirrors]]` entry as written, with its children. */
export interface RawMirror {
  values: Parsed<typeof MIRROR>
  where: Where
  key: string
  children: RawMirror[] | undefined
}

/** What one file says. */
export interface FileDoc {
  where: Where
  global: Parsed<typeof GLOBAL>
  manager: Parsed<typeof MANAGER>
  server: Parsed<typeof SERVER>
  database: Parsed<typeof DATABASE>
  mirrors: RawMirror[]
  /** tunasync's top-level `debug` (its manager config): debug logging. */
  debug: boolean | undefined
  /** Accepted forms that do nothing here, one line each (`config FILE: key: why`). */
  warnings: string[]
  /** `[ipfs]`, `[replication]`: tables as written, parsed by the room that owns them. */
  sections: Record<string, Record<string, unknown>>
}

const SECTIONS = ['global', 'manager', 'server', 'database'] as const

/** Reads `file` and, depth first, every file it includes. Main file first. */
export async function readConfigFiles(file: string): Promise<FileDoc[]> {
  const docs: FileDoc[] = []
  const seen = new Map<string, string>()
  await readOne(resolve(file), [], undefined, docs, seen)
  return docs
}

async function readOne(
  file: string,
  stack: string[],
  from: Where | undefined,
  docs: FileDoc[],
  seen: Map<string, string>,
): Promise<void> {
  let real: string
  let text: string
  try {
    real = await realpath(file)
    text = await readFile(real, 'utf8')
  } catch (err) {
    const reason = (err as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (err as Error).message
    if (from) {
      throw new ConfigError('CONFIG_READ', from.file, 'include', `cannot read ${file}: ${reason}`, {
        cause: err,
      })
    }
    throw new ConfigError('CONFIG_READ', file, undefined, `cannot read: ${reason}`, {
      cause: err,
    })
  }
  if (stack.includes(real)) {
    throw new ConfigError(
      'CONFIG_INCLUDE',
      (from as Where).file,
      'include',
      `include cycle: ${[...stack.slice(stack.indexOf(real)), real].join(' -> ')}`,
    )
  }
  const earlier = seen.get(real)
  if (earlier !== undefined) {
    throw new ConfigError(
      'CONFIG_INCLUDE',
      (from as Where).file,
      'include',
      `${real} is already included by ${earlier}`,
    )
  }
  seen.set(real, from?.file ?? real)

  const where: Where = { file: real, dir: dirname(real) }
  let doc: Record<string, unknown>
  try {
    doc = parse(text) as Record<string, unknown>
  } catch (err) {
    const msg =
      err instanceof TomlError
        ? `line ${err.line}, column ${err.column}: ${firstLine(err.message)}`
        : String(err)
    throw new ConfigError('CONFIG_SYNTAX', real, undefined, `not valid TOML: ${msg}`, {
      cause: err,
    })
  }

  const out: FileDoc = {
    where,
    global: {},
    manager: {},
    server: {},
    database: {},
    mirrors: [],
    debug: undefined,
    warnings: [],
    sections: {},
  }
  const includes: string[] = []
  // tunasync's manager config, read into [manager] once the file's own [manager] is known.
  const forManager: { from: string; key: keyof Parsed<typeof MANAGER>; value: unknown }[] = []
  for (const [key, value] of Object.entries(doc)) {
    switch (key) {
      case 'global':
        out.global = readTable(value, GLOBAL, key, where)
        break
      case 'manager':
        out.manager = readTable(value, MANAGER, key, where)
        break
      case 'server':
        if (isTable(value) && ('addr' in value || 'port' in value)) {
          forManager.push(...tunasyncManagerServer(value, where))
        } else {
          out.server = readTable(value, SERVER, key, where)
        }
        break
      case 'files': {
        const files = readTable(value, TUNASYNC_FILES, key, where)
        if (files.ca_cert !== undefined)
          forManager.push({ from: 'files.ca_cert', key: 'ca_cert', value: files.ca_cert })
        for (const k of ['db_type', 'db_file', 'status_file'] as const) {
          if (files[k] !== undefined) {
            out.warnings.push(
              `config ${where.file}: files.${k}: ignored: cidmirror keeps job statuses in [database] path (workers send theirs again when they register), not in tunasync's database`,
            )
          }
        }
        break
      }
      case 'debug':
        out.debug = bool(value, key, where)
        break
      case 'database':
        out.database = readTable(value, DATABASE, key, where)
        break
      case 'cgroup':
        disabledFeature(
          readTable(value, CGROUP, key, where),
          key,
          where,
          'cidmirror does not use cgroups (memory_limit is applied as an address-space limit instead)',
        )
        break
      case 'zfs':
        disabledFeature(
          readTable(value, ZFS, key, where),
          key,
          where,
          'cidmirror does not make ZFS datasets per mirror',
        )
        break
      case 'btrfs_snapshot':
        disabledFeature(
          readTable(value, BTRFS, key, where),
          key,
          where,
          'cidmirror does not take btrfs snapshots',
        )
        break
      case 'docker':
        disabledFeature(
          readTable(value, DOCKER, key, where),
          key,
          where,
          'cidmirror does not run jobs in docker containers; commands run on the host',
        )
        break
      case 'include':
        includes.push(...includePatterns(value, where))
        break
      case 'mirrors':
        out.mirrors = readMirrors(value, 'mirrors', where)
        break
      default:
        if ((PASSTHROUGH_SECTIONS as readonly string[]).includes(key)) {
          if (!isTable(value)) badValue(where, key, `must be a table ([${key}]), not ${show(value)}`)
          out.sections[key] = value
          break
        }
        unknownKey(
          key,
          [
            ...SECTIONS,
            ...PASSTHROUGH_SECTIONS,
            'cgroup',
            'zfs',
            'btrfs_snapshot',
            'docker',
            'include',
            'mirrors',
            'files',
            'debug',
          ],
          where,
        )
    }
  }
  const manager = out.manager as Record<string, unknown>
  for (const m of forManager) {
    if (manager[m.key] !== undefined) {
      throw new ConfigError(
        'CONFIG_DUPLICATE',
        where.file,
        m.from,
        `also set as manager.${m.key} in this file`,
      )
    }
    manager[m.key] = m.value
  }
  docs.push(out)

  for (const pattern of includes) {
    const files = await expandInclude(pattern, where)
    for (const f of files) await readOne(f, [...stack, real], where, docs, seen)
  }
}

const MANAGER_KEY_OF = {
  addr: 'listen_addr',
  port: 'listen_port',
  ssl_cert: 'ssl_cert',
  ssl_key: 'ssl_key',
} as const

/** tunasync's manager `[server]` (addr, port, ssl_cert, ssl_key): the manager's listener, as [manager] keys. */
function tunasyncManagerServer(
  value: Record<string, unknown>,
  where: Where,
): { from: string; key: keyof Parsed<typeof MANAGER>; value: unknown }[] {
  for (const k of Object.keys(value)) {
    if (k in SERVER && !(k in TUNASYNC_MANAGER_SERVER)) {
      return badValue(
        where,
        `server.${k}`,
        "a [server] with addr or port is tunasync's manager section (the manager's address); the worker's own server takes listen_addr, listen_port and hostname: use one form",
      )
    }
  }
  const v = readTable(value, TUNASYNC_MANAGER_SERVER, 'server', where)
  return (Object.keys(v) as (keyof typeof v)[])
    .filter((k) => v[k] !== undefined)
    .map((k) => ({ from: `server.${k}`, key: MANAGER_KEY_OF[k], value: v[k] }))
}

function firstLine(s: string): string {
  return s.split('\n')[0] as string
}

function disabledFeature(values: { enable?: boolean }, key: string, where: Where, what: string): void {
  if (values.enable) {
    throw new ConfigError(
      'CONFIG_UNSUPPORTED',
      where.file,
      `${key}.enable`,
      `${what}: set enable = false or remove [${key}]`,
    )
  }
}

/** `include = "x.toml"`, `include = ["a.toml", "conf.d/*.toml"]`, or tunasync's `[include] include_mirrors`. */
function includePatterns(value: unknown, where: Where): string[] {
  if (typeof value === 'string') return [resolvePath(value, where.dir)]
  if (Array.isArray(value)) return value.map((v, i) => resolvePath(str(v, `include[${i}]`, where), where.dir))
  if (isTable(value)) {
    const out: string[] = []
    for (const [k, v] of Object.entries(value)) {
      if (k !== 'include_mirrors') unknownKey(`include.${k}`, ['include.include_mirrors'], where)
      const s = str(v, 'include.include_mirrors', where)
      if (s !== '') out.push(resolvePath(s, where.dir))
    }
    return out
  }
  return badValue(
    where,
    'include',
    `${show(value)} is not a file name, a list of them, or [include] include_mirrors`,
  )
}

const GLOB_CHARS = /[*?[{]/

async function expandInclude(pattern: string, where: Where): Promise<string[]> {
  if (!GLOB_CHARS.test(pattern)) return [pattern]
  const found: string[] = []
  try {
    for await (const f of glob(pattern)) found.push(resolve(f))
  } catch (err) {
    return badValue(where, 'include', `bad pattern ${show(pattern)}: ${(err as Error).message}`)
  }
  // A pattern matching nothing is fine (an empty conf.d), as in tunasync.
  return found.sort()
}

export function readTable<S extends Spec>(value: unknown, spec: S, prefix: string, where: Where): Parsed<S> {
  if (!isTable(value)) return badValue(where, prefix, `${show(value)} is not a table`)
  const out: Record<string, unknown> = {}
  for (const [k, v] of Object.entries(value)) {
    const check = spec[k]
    if (!check)
      unknownKey(
        `${prefix}.${k}`,
        Object.keys(spec).map((x) => `${prefix}.${x}`),
        where,
      )
    out[k] = check(v, `${prefix}.${k}`, where)
  }
  return out as Parsed<S>
}

function readMirrors(value: unknown, prefix: string, where: Where): RawMirror[] {
  if (!Array.isArray(value)) {
    return badValue(where, prefix, `must be an array of tables ([[${prefix}]]), not ${show(value)}`)
  }
  return value.map((entry, i) => {
    const key = `${prefix}[${i}]`
    if (!isTable(entry)) return badValue(where, key, `${show(entry)} is not a table`)
    const { mirrors: children, ...rest } = entry
    for (const k of Object.keys(rest)) {
      const why = MIRROR_UNSUPPORTED[k]
      if (why) throw new ConfigError('CONFIG_UNSUPPORTED', where.file, `${key}.${k}`, why)
    }
    return {
      values: readTable(rest, MIRROR, key, where),
      where,
      key,
      children: children === undefined ? undefined : readMirrors(children, `${key}.mirrors`, where),
    }
  })
}

export function unknownKey(key: string, known: readonly string[], where: Where): never {
  const close = nearest(key, known)
  throw new ConfigError(
    'CONFIG_UNKNOWN_KEY',
    where.file,
    key,
    `unknown key${close ? ` (did you mean ${close.slice(close.lastIndexOf('.') + 1)}?)` : ''}`,
  )
}

function nearest(key: string, known: readonly string[]): string | undefined {
  const leaf = key.slice(key.lastIndexOf('.') + 1)
  let best: string | undefined
  let bestDist = Math.max(2, Math.floor(leaf.length / 3)) + 1
  for (const k of known) {
    const d = distance(leaf, k.slice(k.lastIndexOf('.') + 1))
    if (d < bestDist) {
      best = k
      bestDist = d
    }
  }
  return best
}

function distance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, i) => i)
  for (let i = 1; i <= a.length; i++) {
    let prev = row[0] as number
    row[0] = i
    for (let j = 1; j <= b.length; j++) {
      const cur = row[j] as number
      row[j] = Math.min(cur + 1, (row[j - 1] as number) + 1, prev + (a[i - 1] === b[j - 1] ? 0 : 1))
      prev = cur
    }
  }
  return row[b.length] as number
}
