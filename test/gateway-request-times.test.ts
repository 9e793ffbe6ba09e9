/**
 * The gateway's request times (src/gateway/request-times.ts), what the janitor's `not_requested_within`
 * reads: bounded, least recently requested dropped first, and a path it does not know counts as
 * requested at `since` (its start, or the newest time of what it dropped), never as "never requested".
 */
import { describe, expect, it } from 'vitest'
import { RequestTimes } from '../src/gateway/index.ts'

const key = (p: string) => RequestTimes.key('deb', p)

describe('RequestTimes', () => {
  it('answers a noted path with its time and an unknown one with its start', () => {
    const t = new RequestTimes({ now: 1000, resolutionMs: 0 })
    t.note(key('a.deb'), 5000)
    expect(t.lastRequested('deb', 'a.deb')).toBe(5000)
    expect(t.lastRequested('deb', 'b.deb')).toBe(1000)
    expect(t.lastRequested('other', 'a.deb')).toBe(1000)
  })

  it('keeps at most max paths, drops the least recently requested, and moves since to the dropped time', () => {
    const t = new RequestTimes({ max: 4, now: 0, resolutionMs: 0 })
    t.note(key('a'), 10)
    t.note(key('b'), 20) // generation 1: a, b
    t.note(key('c'), 30) // generation 2: c
    t.note(key('a'), 40) // a again: generation 2 has c, a
    expect(t.lastRequested('deb', 'b')).toBe(20)
    t.note(key('d'), 50) // generation 1 (a at 10, b at 20) goes; generation 3: d
    expect(t.size).toBeLessThanOrEqual(4)
    expect(t.since).toBe(20)
    expect(t.lastRequested('deb', 'b')).toBe(20) // unknown now: since, its own last time at the latest
    expect(t.lastRequested('deb', 'a')).toBe(40)
    expect(t.lastRequested('deb', 'c')).toBe(30)
    expect(t.lastRequested('deb', 'd')).toBe(50)
    for (let i = 0; i < 100; i++) t.note(key(`x${i}`), 100 + i)
    expect(t.size).toBeLessThanOrEqual(4)
    expect(t.lastRequested('deb', 'a')).toBe(t.since)
    expect(t.since).toBeGreaterThanOrEqual(40)
  })

  it('does not write a path noted again within the resolution', () => {
    const t = new RequestTimes({ now: 0, resolutionMs: 100 })
    t.note(key('a'), 10)
    t.note(key('a'), 50)
    expect(t.lastRequested('deb', 'a')).toBe(10)
    t.note(key('a'), 200)
    expect(t.lastRequested('deb', 'a')).toBe(200)
  })
})
