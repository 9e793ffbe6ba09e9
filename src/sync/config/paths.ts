import { realpathSync } from 'node:fs'
import { homedir } from 'node:os'
import { basename, dirname, isAbsolute, join, relative, sep } from 'node:path'
import { ConfigError } from '../errors.ts'
import type { Where } from './values.ts'

/**
 * Folders a config must not hand to a sync. A mirror's folder is where rsync runs with `--delete`:
 * whatever is there and not upstream goes. So a mirror's folder is never one of these, nor holds
 * one, nor holds another mirror's folder, the database, a log folder or a file the config names.
 * tunasync checks none of this (`mirror_dir = "/"` ran `rsync ... --delete ... /`).
 */

/** The system's own folders (FHS): no mirror folder, log folder or database is one, or holds one. */
export const SYSTEM_DIRS = [
  '/',
  '/bin',
  '/boot',
  '/dev',
  '/etc',
  '/home',
  '/lib',
  '/lib32',
  '/lib64',
  '/libx32',
  '/proc',
  '/root',
  '/run',
  '/sbin',
  '/snap',
  '/sys',
  '/usr',
  '/usr/bin',
  '/usr/include',
  '/usr/lib',
  '/usr/lib32',
  '/usr/lib64',
  '/usr/libexec',
  '/usr/local',
  '/usr/local/bin',
  '/usr/local/lib',
  '/usr/local/sbin',
  '/usr/local/share',
  '/usr/sbin',
  '/usr/share',
  '/usr/src',
  '/var',
  '/var/backups',
  '/var/cache',
  '/var/lib',
  '/var/local',
  '/var/lock',
  '/var/log',
  '/var/mail',
  '/var/opt',
  '/var/run',
  '/var/spool',
] as const

/**
 * Folders that hold many things of many owners: fine as `global.mirror_dir` (each mirror gets a
 * folder inside), never as one mirror's own folder.
 */
export const SHARED_DIRS = ['/media', '/mnt', '/opt', '/srv', '/tmp', '/var/tmp', '/var/www'] as const

/** `p` with the symlinks of the part that exists resolved (a link to `/` is `/`). */
export function realPath(p: string): string {
  const rest: string[] = []
  let head = p
  for (;;) {
    try {
      return join(realpathSync(head), ...rest)
    } catch {
      const parent = dirname(head)
      if (parent === head) return p
      rest.unshift(basename(head))
      head = parent
    }
  }
}

/** `inner` is `outer` or inside it (both absolute, normalized). */
export function within(inner: string, outer: string): boolean {
  const rel = relative(outer, inner)
  return rel === '' || (rel !== '..' && !rel.startsWith(`..${sep}`) && !isAbsolute(rel))
}

function home(): string {
  return realPath(homedir())
}

/** Why `dir` must not be a mirror's own folder, or undefined. */
function mirrorDirProblem(dir: string): string | undefined {
  return protectedProblem(dir, [...SYSTEM_DIRS, ...SHARED_DIRS], 'a folder of the system, not of one mirror')
}

/** Why `dir` must not be `global.mirror_dir`, or undefined (the shared folders are fine). */
function mirrorRootProblem(dir: string): string | undefined {
  return protectedProblem(dir, SYSTEM_DIRS, 'a folder of the system')
}

/** `dir` is one of `dirs` or the home folder, or holds one of them. */
function protectedProblem(dir: string, dirs: readonly string[], what: string): string | undefined {
  const h = home()
  if (dir === h) return `${dir} is the home folder`
  if (dirs.includes(dir)) return `${dir} is ${what}`
  for (const d of dirs) if (within(d, dir)) return `${dir} holds ${d}, a folder of the system`
  if (within(h, dir)) return `${dir} holds the home folder ${h}`
  return undefined
}

/** Why a log folder or the database may not be `dir`, or undefined (inside the system's are fine: /var/log/x). */
function storeDirProblem(dir: string): string | undefined {
  if (dir === home()) return `${dir} is the home folder`
  if ((SYSTEM_DIRS as readonly string[]).includes(dir) || (SHARED_DIRS as readonly string[]).includes(dir)) {
    return `${dir} is a folder of the system`
  }
  return undefined
}

/** A mirror's folder as the checks see it, with where the config sets it. */
export interface MirrorPlace {
  name: string
  dir: string
  /** The key that sets the folder, or the mirror's own key when it comes from global.mirror_dir. */
  key: string
  where: Where
  logDir: string
  logKey: string
  logWhere: Where
}

/** A path the config names that a sync must not delete. */
export interface KeptPath {
  what: string
  path: string
}

export interface PathsInput {
  mirrorRoot: { dir: string; where: Where } | undefined
  mirrors: MirrorPlace[]
  database: { dir: string; key: string; where: Where }
  kept: KeptPath[]
}

const unsafe = (where: Where, key: string, problem: string): never => {
  throw new ConfigError('CONFIG_UNSAFE_PATH', where.file, key, problem)
}

const DELETES = 'a sync deletes what its upstream lacks (rsync --delete)'

/** The entry of `map` at `path` or at the nearest folder above it. */
function holder<T>(map: Map<string, T>, path: string): T | undefined {
  for (let d = path; ; d = dirname(d)) {
    const hit = map.get(d)
    if (hit !== undefined) return hit
    if (dirname(d) === d) return undefined
  }
}

/** Every folder from `path` up to `/`. */
function* upwards(path: string): Generator<string> {
  for (let d = path; ; d = dirname(d)) {
    yield d
    if (dirname(d) === d) return
  }
}

/**
 * Throws ConfigError (`CONFIG_UNSAFE_PATH`) naming the key and the file of the first
 * harmful path. Each check walks folders upwards through maps, so a config of thousands of mirrors
 * costs thousands of look-ups, not millions of comparisons.
 */
export function checkPaths(input: PathsInput): void {
  if (input.mirrorRoot) {
    const problem = mirrorRootProblem(realPath(input.mirrorRoot.dir))
    if (problem)
      unsafe(
        input.mirrorRoot.where,
        'global.mirror_dir',
        `${problem}: give the mirrors a folder of their own`,
      )
  }
  const db = { ...input.database, dir: realPath(input.database.dir) }
  const dbProblem = storeDirProblem(db.dir)
  if (dbProblem) unsafe(db.where, db.key, `${dbProblem}: give the database a folder of its own`)
  const at = (x: { where: Where; key: string }): string => `${x.where.file}: ${x.key}`

  const mirrors = input.mirrors.map((m) => ({ ...m, dir: realPath(m.dir), logDir: realPath(m.logDir) }))
  type Place = (typeof mirrors)[number]
  const dirs = new Map<string, Place>()
  const above = new Map<string, Place>() // every folder holding an earlier mirror's folder
  const logs = new Map<string, Place>()
  for (const m of mirrors) {
    const problem = mirrorDirProblem(m.dir)
    if (problem) unsafe(m.where, m.key, `${problem}: ${DELETES}, so each mirror needs a folder of its own`)
    const logProblem = storeDirProblem(m.logDir)
    if (logProblem) unsafe(m.logWhere, m.logKey, `the log folder of mirror "${m.name}": ${logProblem}`)

    const outer = holder(dirs, m.dir)
    if (outer) {
      const how = outer.dir === m.dir ? 'is also the folder of' : 'is inside the folder of'
      unsafe(
        m.where,
        m.key,
        `${m.dir} ${how} mirror "${outer.name}" (${at(outer)}): each mirror needs a folder of its own`,
      )
    }
    const inner = above.get(m.dir)
    if (inner) {
      unsafe(
        m.where,
        m.key,
        `${m.dir} holds the folder ${inner.dir} of mirror "${inner.name}" (${at(inner)}): each mirror needs a folder of its own`,
      )
    }
    dirs.set(m.dir, m)
    for (const d of upwards(dirname(m.dir))) if (!above.has(d)) above.set(d, m)
    if (!logs.has(m.logDir)) logs.set(m.logDir, m)
  }

  for (const m of mirrors) {
    const owner = holder(dirs, m.logDir)
    if (owner) {
      const whose = owner === m ? 'its own log folder' : `the log folder of mirror "${m.name}"`
      unsafe(
        owner.where,
        owner.key,
        `${owner.dir} holds ${whose} ${m.logDir} (${at({ where: m.logWhere, key: m.logKey })}): ${DELETES}`,
      )
    }
    const log = holder(logs, m.dir)
    if (log) {
      unsafe(
        m.where,
        m.key,
        `${m.dir} is inside the log folder ${log.logDir} of mirror "${log.name}" (${at({ where: log.logWhere, key: log.logKey })})`,
      )
    }
    if (within(m.dir, db.dir)) unsafe(m.where, m.key, `${m.dir} is inside the database ${db.dir} (${at(db)})`)
    if (within(m.logDir, db.dir) || within(db.dir, m.logDir)) {
      unsafe(
        m.logWhere,
        m.logKey,
        `the log folder ${m.logDir} of mirror "${m.name}" overlaps the database ${db.dir} (${at(db)})`,
      )
    }
  }
  const dbOwner = holder(dirs, db.dir)
  if (dbOwner)
    unsafe(dbOwner.where, dbOwner.key, `${dbOwner.dir} holds the database ${db.dir} (${at(db)}): ${DELETES}`)
  for (const k of input.kept) {
    const path = realPath(k.path)
    const owner = holder(dirs, path)
    if (owner) unsafe(owner.where, owner.key, `${owner.dir} holds ${k.what} ${path}: ${DELETES}`)
  }
}
