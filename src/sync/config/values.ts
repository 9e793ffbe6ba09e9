import { homedir } from 'node:os'
import { isAbsolute, resolve } from 'node:path'
import { type DurationUnit, formatDuration, parseDuration, parseSize } from '../../util/units.ts'
import { splitCommand } from '../command-line.ts'
import { CommandLineError, ConfigError } from '../errors.ts'
import { invalidName } from '../names.ts'

/** Where a value was read: the file (for messages) and its folder (for relative paths). */
export interface Where {
  file: string
  dir: string
}

/** Checks and converts one TOML value; throws ConfigError naming `key` and the file. */
export type Check<T> = (value: unknown, key: string, where: Where) => T

export type Spec = Record<string, Check<unknown>>
export type Parsed<S extends Spec> = { [K in keyof S]?: S[K] extends Check<infer T> ? T : never }

export function show(value: unknown): string {
  if (value === null || value === undefined) return String(value)
  if (value instanceof Date) return value.toISOString()
  if (isTable(value)) return 'a table'
  return JSON.stringify(value) ?? String(value)
}

export function badValue(where: Where, key: string, problem: string): never {
  throw new ConfigError('CONFIG_BAD_VALUE', where.file, key, problem)
}

/** A TOML table (smol-toml makes them without a prototype). */
export function isTable(value: unknown): value is Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return false
  const proto = Object.getPrototypeOf(value)
  return proto === null || proto === Object.prototype
}

export const str: Check<string> = (v, key, w) =>
  typeof v === 'string' ? v : badValue(w, key, `${show(v)} is not a string`)

/** A mirror name or worker id (src/sync/names.ts: the API holds them to the same rules). */
export const name: Check<string> = (v, key, w) => {
  const s = str(v, key, w)
  const problem = invalidName(s)
  return problem === undefined ? s : badValue(w, key, problem)
}

export const nonEmpty: Check<string> = (v, key, w) => {
  const s = str(v, key, w)
  return s.trim() === '' ? badValue(w, key, 'must not be empty') : s
}

/** A string where `""` means "not set" (tunasync writes `ssl_cert = ""`). */
export const optStr: Check<string | undefined> = (v, key, w) => {
  const s = str(v, key, w)
  return s === '' ? undefined : s
}

export const bool: Check<boolean> = (v, key, w) =>
  typeof v === 'boolean' ? v : badValue(w, key, `${show(v)} is not true or false`)

export function int(min: number, max = Number.MAX_SAFE_INTEGER, hint = ''): Check<number> {
  return (v, key, w) => {
    if (typeof v !== 'number' || !Number.isInteger(v)) return badValue(w, key, `${show(v)} is not an integer`)
    if (v < min || v > max) {
      const range = max === Number.MAX_SAFE_INTEGER ? `at least ${min}` : `between ${min} and ${max}`
      return badValue(w, key, `${v} is out of range: must be ${range}${hint}`)
    }
    return v
  }
}

export function oneOf<const T extends string>(values: readonly T[]): Check<T> {
  return (v, key, w) =>
    typeof v === 'string' && (values as readonly string[]).includes(v)
      ? (v as T)
      : badValue(w, key, `${show(v)} is not one of ${values.map((x) => `"${x}"`).join(', ')}`)
}

export const strList: Check<string[]> = (v, key, w) => {
  if (!Array.isArray(v)) return badValue(w, key, `${show(v)} is not an array of strings`)
  return v.map((x, i) => str(x, `${key}[${i}]`, w))
}

/** Commands run without a shell (`exec_on_*`): each must split into words, checked at load. */
export const commandList: Check<string[]> = (v, key, w) =>
  strList(v, key, w).map((line, i) => {
    let words: string[]
    try {
      words = splitCommand(line)
    } catch (err) {
      if (err instanceof CommandLineError) return badValue(w, `${key}[${i}]`, `${show(line)}: ${err.message}`)
      throw err
    }
    if (words.length === 0) badValue(w, `${key}[${i}]`, 'is an empty command')
    return line
  })

export const exitCodes: Check<number[]> = (v, key, w) => {
  if (!Array.isArray(v)) return badValue(w, key, `${show(v)} is not an array of exit codes`)
  return v.map((x, i) => int(0, 255)(x, `${key}[${i}]`, w))
}

export const strMap: Check<Record<string, string>> = (v, key, w) => {
  if (!isTable(v)) return badValue(w, key, `${show(v)} is not a table of strings`)
  const out: Record<string, string> = {}
  for (const [k, x] of Object.entries(v)) out[k] = str(x, `${key}.${k}`, w)
  return out
}

/**
 * The longest duration a key takes: 100 years. Every time the daemon derives from one (the next run,
 * a deadline) must fit a JavaScript Date and the four-digit years of tunasync's time formats; past
 * that, a status could not be written (`Invalid time value`) and a job would show `syncing` for ever.
 * Up to it, every delay is honoured (timers past 24.8 days are chained, src/util/long-timer.ts).
 */
export const MAX_DURATION_MS = 100 * 365 * 86_400_000

/** rsync's `--timeout` is a 32-bit count of seconds (and rsync adds 1 to it): at most 68 years. */
export const MAX_RSYNC_TIMEOUT_MS = 68 * 365 * 86_400_000

export function duration(bareUnit: DurationUnit, maxMs = MAX_DURATION_MS): Check<number> {
  const unitName = {
    ms: 'milliseconds',
    s: 'seconds',
    m: 'minutes',
    h: 'hours',
    d: 'days',
    w: 'weeks',
    y: 'years',
  }
  return (v, key, w) => {
    if (typeof v !== 'number' && typeof v !== 'string')
      return badValue(w, key, `${show(v)} is not a duration`)
    const ms = parseDuration(v, bareUnit)
    if (ms === undefined) {
      return badValue(
        w,
        key,
        `${show(v)} is not a duration (use e.g. "30m", "6h", "1d", or a number of ${unitName[bareUnit]})`,
      )
    }
    if (ms > maxMs) {
      return badValue(w, key, `${show(v)} is out of range: must be at most "${formatDuration(maxMs)}"`)
    }
    return ms
  }
}

export const size: Check<number> = (v, key, w) => {
  if (typeof v !== 'number' && typeof v !== 'string') return badValue(w, key, `${show(v)} is not a size`)
  const bytes = parseSize(v)
  if (bytes === undefined) return badValue(w, key, `${show(v)} is not a size (use e.g. "512M", "4GiB")`)
  return bytes
}

/** `~/x` -> home; relative paths against the file's folder. */
export function resolvePath(p: string, dir: string): string {
  if (p === '~') return homedir()
  if (p.startsWith('~/')) return resolve(homedir(), p.slice(2))
  return isAbsolute(p) ? resolve(p) : resolve(dir, p)
}

/** A path; `""` means unset. */
export const path: Check<string | undefined> = (v, key, w) => {
  const s = str(v, key, w)
  return s === '' ? undefined : resolvePath(s, w.dir)
}

/**
 * Template fields of `log_dir`: tunasync runs a Go template over its mirror config, so any of its
 * fields works there. These are its fields that make sense in a path (not `Password`, `Env`, lists).
 */
export const LOG_DIR_FIELDS = [
  'Name',
  'Provider',
  'Upstream',
  'MirrorDir',
  'MirrorSubDir',
  'Role',
  'Interval',
  'Retry',
  'Timeout',
  'Command',
  'ExcludeFile',
  'Username',
  'Stage1Profile',
  'RsyncTimeout',
] as const
const TEMPLATE = /\{\{-?\s*\.(\w+)\s*-?\}\}/g

/** A path that may hold `{{.Name}}`; resolved against the file's folder unless it starts with a field. */
export const pathTemplate: Check<string | undefined> = (v, key, w) => {
  const s = str(v, key, w)
  if (s === '') return undefined
  const rest = s.replace(TEMPLATE, (_, field: string) => {
    if (!(LOG_DIR_FIELDS as readonly string[]).includes(field)) {
      badValue(w, key, `unknown template field {{.${field}}} (known: ${LOG_DIR_FIELDS.join(', ')})`)
    }
    return ''
  })
  if (rest.includes('{{')) badValue(w, key, `${show(s)}: only {{.Field}} templates are supported`)
  // `{{.Name}}/../../x` would put every mirror's logs in one folder outside the template's own.
  const first = s.indexOf('{{')
  if (first >= 0 && s.slice(first).split(/[/\\]/).includes('..')) {
    badValue(w, key, `${show(s)}: ".." after a template field moves the logs out of the folder it names`)
  }
  return s.startsWith('{{') ? s : resolvePath(s, w.dir)
}

export function expandTemplate(template: string, fields: Record<string, string>): string {
  return template.replace(TEMPLATE, (_, field: string) => fields[field] ?? '')
}

/**
 * A regular expression in Go's syntax as tunasync reads it: leading `(?ims)` flags become JavaScript
 * flags and `(?P<name>` becomes `(?<name>`.
 */
export const regex: Check<RegExp | undefined> = (v, key, w) => {
  const s = str(v, key, w)
  if (s === '') return undefined
  try {
    return goRegExp(s)
  } catch (err) {
    return badValue(w, key, `${show(s)} is not a valid regular expression: ${(err as Error).message}`)
  }
}

export function goRegExp(source: string): RegExp {
  let flags = ''
  let body = source
  const m = /^\(\?([imsU]+)\)/.exec(body)
  if (m) {
    const goFlags = m[1] as string
    if (goFlags.includes('U')) throw new Error('the U (ungreedy) flag has no JavaScript equivalent')
    flags = [...new Set(goFlags)].join('')
    body = body.slice(m[0].length)
  }
  body = body.replace(/\(\?P</g, '(?<')
  return new RegExp(body, flags)
}
