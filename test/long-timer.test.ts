import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { MAX_TIMER_MS, setLongTimeout, sleep } from '../src/util/long-timer.ts'

// A fake clock, for the chaining utility only: a real 30-day wait cannot be a test. Everything that
// uses it (job timeouts, the scheduler, retry backoff) is tested with real timers elsewhere.
beforeEach(() => {
  vi.useFakeTimers()
})
afterEach(() => {
  vi.useRealTimers()
})

const DAY = 86_400_000

describe('setLongTimeout', () => {
  it('waits the whole of a delay past 2^31 - 1 ms (Node fires such a timer after 1 ms)', () => {
    const fired = vi.fn()
    setLongTimeout(fired, 30 * DAY)
    vi.advanceTimersByTime(MAX_TIMER_MS)
    expect(fired).not.toHaveBeenCalled()
    vi.advanceTimersByTime(30 * DAY - MAX_TIMER_MS - 1)
    expect(fired).not.toHaveBeenCalled()
    vi.advanceTimersByTime(1)
    expect(fired).toHaveBeenCalledTimes(1)
    vi.advanceTimersByTime(100 * DAY)
    expect(fired).toHaveBeenCalledTimes(1)
  })

  it('holds a 100-year delay as a chain of timers no longer than Node allows', () => {
    const fired = vi.fn()
    const spy = vi.spyOn(globalThis, 'setTimeout')
    setLongTimeout(fired, 100 * 365 * DAY)
    vi.advanceTimersByTime(100 * 365 * DAY - 1)
    expect(fired).not.toHaveBeenCalled()
    vi.advanceTimersByTime(1)
    expect(fired).toHaveBeenCalledTimes(1)
    const delays = spy.mock.calls.map((c) => c[1] as number)
    expect(delays.length).toBe(Math.ceil((100 * 365 * DAY) / MAX_TIMER_MS))
    expect(Math.max(...delays)).toBeLessThanOrEqual(MAX_TIMER_MS)
    spy.mockRestore()
  })

  it('fires short delays as setTimeout does, and a negative one at once', () => {
    const a = vi.fn()
    const b = vi.fn()
    setLongTimeout(a, 50)
    setLongTimeout(b, -5)
    vi.advanceTimersByTime(0)
    expect(b).toHaveBeenCalledTimes(1)
    expect(a).not.toHaveBeenCalled()
    vi.advanceTimersByTime(50)
    expect(a).toHaveBeenCalledTimes(1)
  })

  it('clear() stops it in any link of the chain', () => {
    const fired = vi.fn()
    const t = setLongTimeout(fired, 60 * DAY)
    vi.advanceTimersByTime(MAX_TIMER_MS + 10)
    t.clear()
    vi.advanceTimersByTime(100 * DAY)
    expect(fired).not.toHaveBeenCalled()
    expect(vi.getTimerCount()).toBe(0)
  })

  it('sleep() waits long delays and rejects on abort', async () => {
    let done = false
    const p = sleep(40 * DAY).then(() => {
      done = true
    })
    await vi.advanceTimersByTimeAsync(MAX_TIMER_MS)
    expect(done).toBe(false)
    await vi.advanceTimersByTimeAsync(40 * DAY - MAX_TIMER_MS)
    await p
    expect(done).toBe(true)

    const ac = new AbortController()
    const q = sleep(40 * DAY, ac.signal)
    await vi.advanceTimersByTimeAsync(MAX_TIMER_MS + 1)
    ac.abort(new Error('stopped'))
    await expect(q).rejects.toThrow('stopped')
    expect(vi.getTimerCount()).toBe(0)
  })
})
