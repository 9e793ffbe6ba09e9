/**
 * The cache room's face: the janitor (which files leave this disk, and when), its policy, and the
 * exclude list that keeps syncs from fetching evicted files again (DESIGN promises 1 and 4).
 */

export {
  checkUpstream,
  type ExcludeResult,
  excludeRule,
  isRsyncUrl,
  parseListing,
  type UpstreamCheck,
  type UpstreamChecker,
  type UpstreamSource,
  writeExcludeList,
} from './exclude.ts'
export {
  type FileDecision,
  type JanitorMirror,
  type JanitorOptions,
  type JanitorReport,
  type MirrorReport,
  runJanitor,
} from './janitor.ts'
export { DEFAULT_KEEP, keptBy } from './keep.ts'
export type { CopyPolicy, JanitorPolicy, Quota } from './policy.ts'
export {
  checkHttpUpstream,
  HTTP_CHECK_DEFAULTS,
  type HttpCheckLimits,
  type HttpUpstream,
  isHttpUpstream,
} from './upstream-http.ts'
