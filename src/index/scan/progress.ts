/** A scan's progress reports, at most one per interval (and every forced one). */
import type { ScanProgress, ScanSummary } from '../records.ts'

export class ProgressReporter {
  readonly progress: ScanProgress = {
    phase: 'scan',
    walked: 0,
    filesHashed: 0,
    bytesHashed: 0,
    filesQueued: 0,
    bytesQueued: 0,
  }
  readonly #summary: ScanSummary
  readonly #onProgress: ((p: ScanProgress) => void) | undefined
  readonly #intervalMs: number
  #last = 0

  /** `previous`: the last committed scan, whose entries are the expected total. */
  constructor(
    summary: ScanSummary,
    previous: ScanSummary | undefined,
    onProgress: ((p: ScanProgress) => void) | undefined,
    intervalMs: number,
  ) {
    this.#summary = summary
    this.#onProgress = onProgress
    this.#intervalMs = intervalMs
    if (previous) this.progress.total = previous.files + previous.dirs + previous.evicted
  }

  /** Reports (a copy of) the progress if the interval has passed since the last report, or with `force`. */
  report(force: boolean): void {
    if (!this.#onProgress) return
    const now = Date.now()
    if (!force && now - this.#last < this.#intervalMs) return
    this.#last = now
    this.progress.filesHashed = this.#summary.filesHashed
    this.progress.bytesHashed = this.#summary.bytesHashed
    this.#onProgress({ ...this.progress })
  }
}
