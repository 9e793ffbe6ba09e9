import { describe, expect, it } from 'vitest'
import { formatDuration, formatSize, parseDuration, parseSize } from '../src/util/units.ts'

describe('durations', () => {
  it('reads units, compound forms and bare numbers in the caller unit', () => {
    expect(parseDuration('30m')).toBe(30 * 60_000)
    expect(parseDuration('6h')).toBe(6 * 3_600_000)
    expect(parseDuration('2y')).toBe(2 * 365 * 86_400_000)
    expect(parseDuration('1h30m')).toBe(90 * 60_000)
    expect(parseDuration('1h 30m 5s')).toBe(90 * 60_000 + 5000)
    expect(parseDuration('1.5d')).toBe(36 * 3_600_000)
    expect(parseDuration('2w')).toBe(14 * 86_400_000)
    expect(parseDuration('250ms')).toBe(250)
    expect(parseDuration('10sec')).toBe(10_000)
    expect(parseDuration('5min')).toBe(300_000)
    expect(parseDuration(120, 'm')).toBe(120 * 60_000)
    expect(parseDuration('120', 'm')).toBe(120 * 60_000)
    expect(parseDuration(300, 's')).toBe(300_000)
    expect(parseDuration(0, 's')).toBe(0)
  })
  it('refuses what is not a duration', () => {
    for (const bad of ['5x', '', 'm', '-5m', '5 m x', '1h-', 'h1', 'NaN'])
      expect(parseDuration(bad), bad).toBeUndefined()
    expect(parseDuration(-1, 's')).toBeUndefined()
    expect(parseDuration(Number.POSITIVE_INFINITY, 's')).toBeUndefined()
  })
  it('formats the largest units first', () => {
    expect(formatDuration(30 * 60_000)).toBe('30m')
    expect(formatDuration(90 * 60_000)).toBe('1h30m')
    expect(formatDuration(2 * 365 * 86_400_000)).toBe('2y')
    expect(formatDuration(1500)).toBe('1s500ms')
    expect(formatDuration(0)).toBe('0s')
  })
})

describe('sizes', () => {
  it('reads binary units as tunasync (docker RAMInBytes) does', () => {
    expect(parseSize('500GiB')).toBe(500 * 1024 ** 3)
    expect(parseSize('256M')).toBe(256 * 1024 ** 2)
    expect(parseSize('256m')).toBe(256 * 1024 ** 2)
    expect(parseSize('256MB')).toBe(256 * 1024 ** 2)
    expect(parseSize('1.5T')).toBe(1.5 * 1024 ** 4)
    expect(parseSize('4096')).toBe(4096)
    expect(parseSize('10 KiB')).toBe(10 * 1024)
    expect(parseSize('7b')).toBe(7)
    expect(parseSize(1234)).toBe(1234)
  })
  it('refuses what is not a size', () => {
    for (const bad of ['', 'G', '5x', '-1G', '1.2.3M', '5iB', '5 G B'])
      expect(parseSize(bad), bad).toBeUndefined()
  })
  it('formats binary units', () => {
    expect(formatSize(0)).toBe('0B')
    expect(formatSize(1536)).toBe('1.5KiB')
    expect(formatSize(500 * 1024 ** 3)).toBe('500GiB')
  })
})
