/**
 * `[cache]`: the janitor's policy. The sync room hands the table over as is (it knows no CIDs); it is
 * read here with the loader's value checks, so a bad value is one line naming the key and file. The
 * copies asked of a mirror are the replication's (`[replication] n`, `min_filecoin`, a mirror's
 * `replication_n`): one n for storing and for evicting.
 */
import {
  type CopyPolicy,
  DEFAULT_KEEP,
  HTTP_CHECK_DEFAULTS,
  type HttpCheckLimits,
  type JanitorPolicy,
  type Quota,
} from '../cache/index.ts'
import { type Config, configValues as v } from '../sync/index.ts'
import { checkKnownKeys } from './config-keys.ts'
import { policyOf, REPLICATION_DEFAULTS, type ReplicationSettings } from './replication-config.ts'

export interface CacheSettings {
  policy: JanitorPolicy
  /** Mirrors the janitor looks after (default: every mirror of the config). */
  mirrors: string[]
  /** How often the daemon runs it (besides after each replication pass). */
  intervalMs: number
  copies: (mirror: string) => CopyPolicy
}

export const CACHE_DEFAULTS = {
  evictAfterMs: 2 * 365 * 86_400_000,
  refetchedTtlMs: 30 * 86_400_000,
  intervalMs: 3_600_000,
}

const KEYS = [
  'evict_after',
  'age_by',
  'copies_fresh',
  'keep',
  'keep_also',
  'refetched_ttl',
  'not_requested_within',
  'high_water',
  'low_water',
  'interval',
  'mirrors',
  'upstream_check_concurrency',
  'upstream_check_timeout',
  'upstream_check_deadline',
]

/** The longest time limit of the upstream check: a day (a timer takes at most 2^31 - 1 ms). */
const CHECK_MAX_MS = 86_400_000

/**
 * `[cache] upstream_check_*`: the HTTP upstream check's HEADs at once and its time limits (one HEAD,
 * the whole check). The check runs before every sync of a mirror with evicted files, whether or not
 * `[cache]` is still present: without it, the defaults.
 */
export function readUpstreamCheck(config: Config): HttpCheckLimits {
  const section = config.sections.cache
  const D = HTTP_CHECK_DEFAULTS
  if (!section) return { ...D }
  const w = { file: section.file, dir: section.dir }
  const t = section.table
  const time = (key: string, fallback: number): number => {
    if (t[key] === undefined) return fallback
    const ms = v.duration('s', CHECK_MAX_MS)(t[key], `cache.${key}`, w)
    if (ms <= 0) v.badValue(w, `cache.${key}`, 'must be more than 0')
    return ms
  }
  return {
    concurrency:
      t.upstream_check_concurrency === undefined
        ? D.concurrency
        : v.int(1, 1024)(t.upstream_check_concurrency, 'cache.upstream_check_concurrency', w),
    requestTimeoutMs: time('upstream_check_timeout', D.requestTimeoutMs),
    deadlineMs: time('upstream_check_deadline', D.deadlineMs),
  }
}

const PERCENT = /^(\d+(?:\.\d+)?)\s*%$/

function quota(value: unknown, key: string, w: v.Where): Quota {
  if (typeof value === 'string') {
    const m = PERCENT.exec(value.trim())
    if (m) {
      const percent = Number(m[1])
      if (percent <= 0 || percent > 100)
        v.badValue(w, key, `${v.show(value)} must be above 0% and at most 100%`)
      return { percent }
    }
  }
  return { bytes: v.size(value, key, w) }
}

/** The `[cache]` section, or undefined when the config has none (nothing is ever evicted then). */
export function readCacheConfig(
  config: Config,
  replication: ReplicationSettings | undefined,
): CacheSettings | undefined {
  const section = config.sections.cache
  if (!section) return undefined
  const w = { file: section.file, dir: section.dir }
  const t = section.table
  checkKnownKeys(t, KEYS, 'cache', w)
  const opt = <T>(key: string, check: v.Check<T>): T | undefined =>
    t[key] === undefined ? undefined : check(t[key], `cache.${key}`, w)
  const keep = opt('keep', v.strList) ?? [...DEFAULT_KEEP]
  keep.push(...(opt('keep_also', v.strList) ?? []))
  const highWater = t.high_water === undefined ? undefined : quota(t.high_water, 'cache.high_water', w)
  const lowWater = t.low_water === undefined ? undefined : quota(t.low_water, 'cache.low_water', w)
  if (lowWater && !highWater)
    v.badValue(w, 'cache.low_water', 'needs cache.high_water (the mark that starts evicting)')
  if (highWater && lowWater) {
    if ('bytes' in highWater !== 'bytes' in lowWater)
      v.badValue(
        w,
        'cache.low_water',
        'must be of the same kind as high_water (both sizes or both percentages)',
      )
    const h = 'bytes' in highWater ? highWater.bytes : highWater.percent
    const l = 'bytes' in lowWater ? lowWater.bytes : (lowWater as { percent: number }).percent
    if (l > h) v.badValue(w, 'cache.low_water', 'must be at most cache.high_water')
  }
  const names = config.mirrors.map((m) => m.name)
  const mirrors = opt('mirrors', v.strList) ?? names
  for (const m of mirrors)
    if (!names.includes(m)) v.badValue(w, 'cache.mirrors', `no mirror named ${m} in the config`)
  const policy: JanitorPolicy = {
    evictAfterMs: opt('evict_after', v.duration('d')) ?? CACHE_DEFAULTS.evictAfterMs,
    ageBy: opt('age_by', v.oneOf(['mtime', 'first-synced'] as const)) ?? 'mtime',
    copiesFreshMs:
      opt('copies_fresh', v.duration('s')) ?? replication?.freshMs ?? REPLICATION_DEFAULTS.freshMs,
    keep,
    refetchedTtlMs: opt('refetched_ttl', v.duration('d')) ?? CACHE_DEFAULTS.refetchedTtlMs,
    notRequestedWithinMs: opt('not_requested_within', v.duration('d')),
    highWater,
    lowWater,
  }
  // The exclude hook reads these; checked here too, so `cidmirror janitor` refuses a bad one as well.
  readUpstreamCheck(config)
  const intervalMs = opt('interval', v.duration('s')) ?? CACHE_DEFAULTS.intervalMs
  if (intervalMs <= 0) v.badValue(w, 'cache.interval', 'must be more than 0')
  // One rule with the replicator and the audit (policyOf): replication_n, else [replication] n, else 1.
  const rule = policyOf(replication, config)
  return {
    policy,
    mirrors,
    intervalMs,
    copies: (mirror) => {
      const p = rule(mirror).policy
      const out: CopyPolicy = { n: p.n }
      if (p.minByKind && Object.keys(p.minByKind).length > 0) out.minByKind = p.minByKind
      return out
    },
  }
}
