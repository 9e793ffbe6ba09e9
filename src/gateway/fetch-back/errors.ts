import { CidmirrorError } from '../../errors.ts'

/**
 * A source answered, but not with the file: a status other than the one asked for, a stream that is
 * not CAR, a block out of place, a DAG that is not this file, or an answer that ends early. The source
 * counts as failed and the next is tried (a block whose bytes do not hash to its CID is the ipfs
 * room's BlockMismatchError).
 */
export class SourceAnswerError extends CidmirrorError {
  readonly source: string
  constructor(source: string, detail: string, options?: { cause?: unknown }) {
    super('FETCH_BAD_ANSWER', `${source}: ${detail}`, options)
    this.name = 'SourceAnswerError'
    this.source = source
  }
}

/**
 * A source that can say at once that it holds no copy and can get none: the embedded node with no
 * peer and no routing. A failed source, not a time-out: the next is tried, and when none gives the
 * file the answer is a 502 at once, not a 504 after the first-byte limit.
 */
export class SourceNotHeldError extends CidmirrorError {
  readonly source: string
  constructor(source: string, node: string) {
    super('FETCH_NOT_HELD', `${source}: not held by ${node}, which has no peer or routing to ask`)
    this.name = 'SourceNotHeldError'
    this.source = source
  }
}

/** A source gave no verified block within its time limit (to the first block, or between two). */
export class SourceTimeoutError extends CidmirrorError {
  readonly source: string
  constructor(source: string, ms: number, what: string) {
    super('FETCH_SOURCE_TIMEOUT', `${source}: no ${what} within ${ms} ms`)
    this.name = 'SourceTimeoutError'
    this.source = source
  }
}

/** Every source failed: the gateway answers 502 (or throws mid-body when bytes were already sent). */
export class FetchFailedError extends CidmirrorError {
  readonly cid: string
  constructor(path: string, cid: string, reasons: string[]) {
    super('FETCH_FAILED', `fetching ${path} (${cid}) back failed: ${summary(reasons)}`)
    this.name = 'FetchFailedError'
    this.cid = cid
  }
}

/** Every source failed by timing out: the gateway answers 504. */
export class FetchTimeoutError extends CidmirrorError {
  readonly cid: string
  constructor(path: string, cid: string, reasons: string[]) {
    super('FETCH_TIMEOUT', `fetching ${path} (${cid}) back timed out: ${summary(reasons)}`)
    this.name = 'FetchTimeoutError'
    this.cid = cid
  }
}

/** A cached file (or a fetch's temp file) ended before the bytes it should hold: changed or truncated on disk. */
export class FetchBackCacheShortError extends CidmirrorError {
  constructor(what: string, pos: number) {
    super('FETCH_CACHE_SHORT', `${what} ended at ${pos}`)
    this.name = 'FetchBackCacheShortError'
  }
}

/** A fetch-back body ended short of its length after the status line went out: the connection is aborted. */
export class FetchBackShortBodyError extends CidmirrorError {
  constructor(sent: number, length: number) {
    super('FETCH_SHORT_BODY', `the fetch-back gave ${sent} of ${length} bytes`)
    this.name = 'FetchBackShortBodyError'
  }
}

/** One line, whatever the sources said. */
function summary(reasons: string[]): string {
  if (reasons.length === 0) return 'no source is configured for it'
  return reasons.map((r) => r.replace(/\s*\n\s*/g, ' ')).join('; ')
}
