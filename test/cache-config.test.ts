/** `[cache]`: units resolved, defaults, the example loads; a bad value is one line naming the key and the file. */
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { DEFAULT_KEEP } from '../src/cache/index.ts'
import { readCacheConfig, readReplicationConfig, readUpstreamCheck } from '../src/daemon/index.ts'
import { loadConfig } from '../src/sync/index.ts'
import { runCli, STACK_LINE } from './helpers/cli.ts'
import { tempDir, writeToml } from './jobs-helpers.ts'

const DAY = 86_400_000
let tmp: ReturnType<typeof tempDir> | undefined
afterEach(() => tmp?.cleanup())

function config(body: string): string {
  tmp = tempDir('cidmirror-cachecfg-')
  return writeToml({
    dir: tmp.dir,
    mirrors: `[[mirrors]]\nname = "deb"\nupstream = "rsync://127.0.0.1:1/m/"\nreplication_n = 3\n\n[[mirrors]]\nname = "pypi"\nupstream = "rsync://127.0.0.1:1/p/"\n\n${body}`,
  })
}

async function read(body: string) {
  const c = await loadConfig(config(body))
  return readCacheConfig(c, readReplicationConfig(c).replication)
}

describe('cache config', () => {
  it('units and defaults: 2y, 24h from [replication] fresh, 30d, the index files, every mirror', async () => {
    const c = (await read('[replication]\nn = 2\nfresh = "12h"\n\n[cache]\n'))!
    expect(c.policy).toEqual({
      evictAfterMs: 2 * 365 * DAY,
      ageBy: 'mtime',
      copiesFreshMs: 12 * 3_600_000,
      keep: [...DEFAULT_KEEP],
      refetchedTtlMs: 30 * DAY,
      notRequestedWithinMs: undefined,
      highWater: undefined,
      lowWater: undefined,
    })
    expect(c.mirrors).toEqual(['deb', 'pypi'])
    expect(c.intervalMs).toBe(3_600_000)
    // n is the replication's: per mirror, else the section's.
    expect(c.copies('deb')).toEqual({ n: 3 })
    expect(c.copies('pypi')).toEqual({ n: 2 })
  })

  it('every key, with units', async () => {
    const c = (await read(`[cache]
evict_after = "18mo"
`).catch((e) => e)) as Error
    expect(c.message).toMatch(/cache\.evict_after: "18mo" is not a duration/)
    const d = (await read(`[cache]
evict_after = 400
age_by = "first-synced"
copies_fresh = "6h"
keep = ["*.sig"]
keep_also = ["pool/main/**/index.html"]
refetched_ttl = "7d"
not_requested_within = "30d"
high_water = "500GiB"
low_water = "400GiB"
interval = "15m"
mirrors = ["pypi"]
upstream_check_concurrency = 2
upstream_check_timeout = "3s"
upstream_check_deadline = 90
`))!
    expect(d.policy).toMatchObject({
      evictAfterMs: 400 * DAY,
      ageBy: 'first-synced',
      copiesFreshMs: 6 * 3_600_000,
      keep: ['*.sig', 'pool/main/**/index.html'],
      refetchedTtlMs: 7 * DAY,
      notRequestedWithinMs: 30 * DAY,
      highWater: { bytes: 500 * 2 ** 30 },
      lowWater: { bytes: 400 * 2 ** 30 },
    })
    expect(d.intervalMs).toBe(15 * 60_000)
    expect(d.mirrors).toEqual(['pypi'])
    expect(readUpstreamCheck(await loadConfig(join(tmp!.dir, 'cidmirror.toml')))).toEqual({
      concurrency: 2,
      requestTimeoutMs: 3000,
      deadlineMs: 90_000,
    })
    expect(d.copies('pypi')).toEqual({ n: 1 })
    expect((await read('[cache]\nhigh_water = "90%"\nlow_water = "80.5%"\n'))!.policy).toMatchObject({
      highWater: { percent: 90 },
      lowWater: { percent: 80.5 },
    })
  })

  it('no [cache]: no janitor, and the upstream check within its defaults', async () => {
    expect(await read('')).toBeUndefined()
    expect(readUpstreamCheck(await loadConfig(config('')))).toEqual({
      concurrency: 8,
      requestTimeoutMs: 10_000,
      deadlineMs: 120_000,
    })
  })

  it('reads the replication example: the demonstration age, n = 2', async () => {
    const c = await loadConfig(join(import.meta.dirname, '..', 'examples', 'replication', 'cidmirror.toml'))
    const cache = readCacheConfig(c, readReplicationConfig(c).replication)!
    expect(cache.policy.evictAfterMs).toBe(1000)
    expect(cache.copies('sample')).toEqual({ n: 2 })
  })

  it('a bad value stops the command with one line naming the key and the file (exit 2)', async () => {
    for (const [body, text] of [
      ['[cache]\nevict = "2y"\n', /cache\.evict: unknown key \(known: evict_after/],
      [
        '[cache]\nhigh_water = "90%"\nlow_water = "400GiB"\n',
        /cache\.low_water: must be of the same kind as high_water/,
      ],
      [
        '[cache]\nhigh_water = "1GiB"\nlow_water = "2GiB"\n',
        /cache\.low_water: must be at most cache\.high_water/,
      ],
      ['[cache]\nlow_water = "2GiB"\n', /cache\.low_water: needs cache\.high_water/],
      ['[cache]\nhigh_water = "120%"\n', /cache\.high_water: "120%" must be above 0% and at most 100%/],
      ['[cache]\nmirrors = ["nope"]\n', /cache\.mirrors: no mirror named nope/],
      ['[cache]\nage_by = "atime"\n', /cache\.age_by/],
      ['[cache]\nupstream_check_concurrency = 0\n', /cache\.upstream_check_concurrency: 0/],
      [
        '[cache]\nupstream_check_timeout = "soon"\n',
        /cache\.upstream_check_timeout: "soon" is not a duration/,
      ],
      ['[cache]\nupstream_check_timeout = "0s"\n', /cache\.upstream_check_timeout: must be more than 0/],
      ['[cache]\nupstream_check_deadline = "30d"\n', /cache\.upstream_check_deadline: "30d" is out of range/],
    ] as const) {
      const file = config(body)
      const r = await runCli(['janitor', '-c', file, '--dry-run'])
      expect(r.code, body).toBe(2)
      expect(r.stderr).toMatch(text)
      expect(r.stderr).toContain(file)
      expect(r.stderr.trim().split('\n')).toHaveLength(1)
      expect(r.stderr).not.toMatch(STACK_LINE)
    }
  })
})
