/**
 * Durations and sizes with units, as written in config files and on the command line.
 *
 * Durations: one or more `<number><unit>` parts, `30m`, `6h`, `1h30m`, `1.5d`, `2y`, with units
 * `ms`, `s`, `m` (`min`), `h`, `d`, `w`, `y` (365 days). A bare number (TOML number or digit-only
 * string) takes the caller's unit: tunasync writes intervals in minutes and timeouts in seconds.
 *
 * Sizes: `500GiB`, `256M`, `1.5T`, `4096`. Every unit is binary (K = 1024), with or without `B` or
 * `iB`, upper or lower case, as tunasync's `memory_limit` (docker's RAMInBytes) reads them.
 */

export type DurationUnit = 'ms' | 's' | 'm' | 'h' | 'd' | 'w' | 'y'

const DURATION_MS: Record<string, number> = {
  ms: 1,
  s: 1000,
  sec: 1000,
  m: 60_000,
  min: 60_000,
  h: 3_600_000,
  d: 86_400_000,
  w: 7 * 86_400_000,
  y: 365 * 86_400_000,
}

const NUMBER = /^\d+(?:\.\d+)?$/
const DURATION_PART = /(\d+(?:\.\d+)?)\s*(ms|sec|min|s|m|h|d|w|y)/gy

/** Milliseconds, or undefined when `value` is not a duration. Negative and non-finite values are not. */
export function parseDuration(value: string | number, bareUnit: DurationUnit = 'ms'): number | undefined {
  if (typeof value === 'number') {
    if (!Number.isFinite(value) || value < 0) return undefined
    return Math.round(value * (DURATION_MS[bareUnit] as number))
  }
  const text = value.trim()
  if (text === '') return undefined
  if (NUMBER.test(text)) return parseDuration(Number(text), bareUnit)
  let total = 0
  DURATION_PART.lastIndex = 0
  let at = 0
  while (at < text.length) {
    DURATION_PART.lastIndex = at
    const m = DURATION_PART.exec(text)
    if (!m) return undefined
    total += Number(m[1]) * (DURATION_MS[m[2] as string] as number)
    at = DURATION_PART.lastIndex
    while (text[at] === ' ') at++
  }
  return Math.round(total)
}

/** `5400000` -> `"1h30m"`; `0` -> `"0s"`. Largest units first, down to milliseconds. */
export function formatDuration(ms: number): string {
  if (!Number.isFinite(ms)) return String(ms)
  let rest = Math.max(0, Math.round(ms))
  if (rest === 0) return '0s'
  let out = ''
  for (const [unit, size] of [
    ['y', DURATION_MS.y],
    ['d', DURATION_MS.d],
    ['h', DURATION_MS.h],
    ['m', DURATION_MS.m],
    ['s', DURATION_MS.s],
    ['ms', 1],
  ] as [string, number][]) {
    if (rest >= size) {
      out += `${Math.floor(rest / size)}${unit}`
      rest %= size
    }
  }
  return out
}

const SIZE_POWER: Record<string, number> = { '': 0, k: 1, m: 2, g: 3, t: 4, p: 5, e: 6 }
const SIZE = /^(\d+(?:\.\d+)?)\s*([kmgtpe]?)(i?b)?$/i

/** Bytes, or undefined when `value` is not a size. */
export function parseSize(value: string | number): number | undefined {
  if (typeof value === 'number') {
    if (!Number.isFinite(value) || value < 0) return undefined
    return Math.round(value)
  }
  const m = SIZE.exec(value.trim())
  if (!m) return undefined
  const unit = (m[2] as string).toLowerCase()
  // A lone "iB" without a prefix is not a unit.
  if (unit === '' && m[3] && m[3].toLowerCase() === 'ib') return undefined
  return Math.round(Number(m[1]) * 1024 ** (SIZE_POWER[unit] as number))
}

/** `1536` -> `"1.5KiB"`, `0` -> `"0B"`: binary units, up to 3 significant digits. */
export function formatSize(bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB', 'EiB']
  let value = bytes
  let i = 0
  while (Math.abs(value) >= 1024 && i < units.length - 1) {
    value /= 1024
    i++
  }
  const shown = i === 0 ? String(Math.round(value)) : String(Number(value.toPrecision(3)))
  return `${shown}${units[i]}`
}
