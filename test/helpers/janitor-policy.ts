import { DEFAULT_KEEP, type JanitorPolicy } from '../../src/cache/index.ts'

const DAY = 86_400_000

/** The kill -9 tests' policy: files a year old go, copies count when checked within a day. */
export const YEAR_OLD_POLICY: JanitorPolicy = {
  evictAfterMs: 365 * DAY,
  ageBy: 'mtime',
  copiesFreshMs: DAY,
  keep: DEFAULT_KEEP,
  refetchedTtlMs: 30 * DAY,
  notRequestedWithinMs: undefined,
  highWater: undefined,
  lowWater: undefined,
}
