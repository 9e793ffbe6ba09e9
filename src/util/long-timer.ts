/**
 * `setTimeout` for delays of any length. A Node timer holds at most 2^31 - 1 ms (24.8 days): given
 * more, it warns (TimeoutOverflowWarning) and fires after 1 ms, so a 30-day job timeout would end
 * every run at once. A long timeout here is a chain of timers of at most that length, each armed
 * when the previous one fires, until the whole delay has passed.
 */

/** The longest delay one Node timer holds. */
export const MAX_TIMER_MS = 2 ** 31 - 1

export interface LongTimeout {
  /** Cancels the timeout; calling it again, or after it fired, does nothing. */
  clear(): void
}

/** Calls `fn` once, `ms` milliseconds from now (0 for a negative or non-number delay). */
export function setLongTimeout(fn: () => void, ms: number): LongTimeout {
  let left = Number.isFinite(ms) ? Math.max(0, ms) : ms > 0 ? Number.POSITIVE_INFINITY : 0
  let timer: NodeJS.Timeout | undefined
  let cleared = false
  const arm = (): void => {
    const step = Math.min(left, MAX_TIMER_MS)
    left -= step
    timer = setTimeout(() => {
      timer = undefined
      if (cleared) return
      if (left > 0) arm()
      else fn()
    }, step)
  }
  arm()
  return {
    clear() {
      cleared = true
      clearTimeout(timer)
      timer = undefined
    },
  }
}

/** Clears a long timeout; `undefined` is fine. */
export function clearLongTimeout(t: LongTimeout | undefined): void {
  t?.clear()
}

/** Resolves after `ms` (any length), or rejects with the signal's reason when it aborts first. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason)
    const onAbort = (): void => {
      timer.clear()
      reject(signal?.reason)
    }
    const timer = setLongTimeout(() => {
      signal?.removeEventListener('abort', onAbort)
      resolve()
    }, ms)
    signal?.addEventListener('abort', onAbort, { once: true })
  })
}
