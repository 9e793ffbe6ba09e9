import { fileURLToPath } from 'node:url'
import { describe, expect, it } from 'vitest'
import { soakJobs } from '../bench/lib/soak.ts'

const MAIN = fileURLToPath(new URL('../src/cli/main.ts', import.meta.url))

describe('the daemon under public reads', () => {
  it('keeps its memory bounded over 60,000 GETs of /jobs (it grew ~8 KB a read when each read was a LevelDB range)', async () => {
    // A bound on memory, not on time, generous for a busy machine. From its RSS before the first read
    // the daemon grows 10-20 MiB (warm-up: JIT, buffers); the old one grew 100 to 600 MiB.
    const r = await soakJobs({ main: MAIN, warm: 10_000, reads: 60_000 })
    expect(r.failed).toBe(0)
    expect(r.peakMiB - r.startMiB).toBeLessThan(64)
  }, 600_000)
})
