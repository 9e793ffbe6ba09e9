/**
 * The `[filecoin]` spending cap. What an upload spends is what the service quotes for it before it is
 * made: the storage rate of its bytes, per month, for the copies asked (USDFC). The ledger adds each
 * upload's quote to the calendar month (UTC) it was made in and to the total; an upload that would
 * take the month or the total past its cap is refused before anything is sent, and the refusal is the
 * item's failure reason (status, audit). Amounts in flight are reserved, so parallel uploads cannot
 * pass the cap together.
 */
import { FilecoinSpendCapError } from '../errors.ts'
import type { FilecoinRecords } from './records.ts'

export interface SpendCap {
  /** USDFC base units (18 decimals) per calendar month; undefined: no cap. */
  perMonth?: bigint
  /** USDFC base units in all. */
  total?: bigint
}

const DECIMALS = 18n
const UNIT = 10n ** DECIMALS

/** `12.5` USDFC as base units; undefined when not a plain non-negative decimal. */
export function parseUsdfc(text: string): bigint | undefined {
  const m = /^(\d+)(?:\.(\d{1,18}))?$/.exec(text.trim())
  if (!m) return undefined
  return BigInt(m[1]!) * UNIT + BigInt((m[2] ?? '').padEnd(18, '0') || '0')
}

/** Base units as USDFC with up to 6 decimals (`0.000123`). */
export function formatUsdfc(v: bigint): string {
  const neg = v < 0n
  const a = neg ? -v : v
  const whole = a / UNIT
  const frac = ((a % UNIT) * 1_000_000n) / UNIT
  const f = frac.toString().padStart(6, '0').replace(/0+$/, '')
  return `${neg ? '-' : ''}${whole}${f ? `.${f}` : ''}`
}

export interface SpendState {
  month: string
  spentMonth: bigint
  spentTotal: bigint
  cap: SpendCap
}

export class SpendLedger {
  readonly #records: FilecoinRecords
  readonly cap: SpendCap
  readonly #now: () => number
  #reserved = 0n
  #chain: Promise<unknown> = Promise.resolve()

  constructor(records: FilecoinRecords, cap: SpendCap, now: () => number = Date.now) {
    this.#records = records
    this.cap = cap
    this.#now = now
  }

  #month(): string {
    return new Date(this.#now()).toISOString().slice(0, 7)
  }

  async state(): Promise<SpendState> {
    const month = this.#month()
    const [m, t] = await Promise.all([
      this.#records.meta(`spend:${month}`),
      this.#records.meta('spend:total'),
    ])
    return { month, spentMonth: BigInt(m ?? '0'), spentTotal: BigInt(t ?? '0'), cap: this.cap }
  }

  #serial<T>(fn: () => Promise<T>): Promise<T> {
    const next = this.#chain.then(fn, fn)
    this.#chain = next.catch(() => undefined)
    return next
  }

  /** Reserves `cost` or throws FilecoinSpendCapError naming the cap it would pass. */
  reserve(cost: bigint, what: string): Promise<void> {
    return this.#serial(async () => {
      const s = await this.state()
      const month = s.spentMonth + this.#reserved + cost
      const total = s.spentTotal + this.#reserved + cost
      if (this.cap.perMonth !== undefined && month > this.cap.perMonth)
        throw new FilecoinSpendCapError(
          `filecoin spending cap: ${what} would cost ${formatUsdfc(cost)} USDFC/month, and ${s.month} has ${formatUsdfc(s.spentMonth + this.#reserved)} of filecoin.cap_month = ${formatUsdfc(this.cap.perMonth)} USDFC spent or in flight; not stored`,
        )
      if (this.cap.total !== undefined && total > this.cap.total)
        throw new FilecoinSpendCapError(
          `filecoin spending cap: ${what} would cost ${formatUsdfc(cost)} USDFC/month, and ${formatUsdfc(s.spentTotal + this.#reserved)} of filecoin.cap_total = ${formatUsdfc(this.cap.total)} USDFC is spent or in flight; not stored`,
        )
      this.#reserved += cost
    })
  }

  /** Turns a reservation into spending (`spent` of the `reserved`, the rest released). */
  settle(reserved: bigint, spent: bigint): Promise<void> {
    return this.#serial(async () => {
      this.#reserved -= reserved
      if (spent <= 0n) return
      const s = await this.state()
      await this.#records.putMeta({
        [`spend:${s.month}`]: (s.spentMonth + spent).toString(),
        'spend:total': (s.spentTotal + spent).toString(),
      })
    })
  }
}
