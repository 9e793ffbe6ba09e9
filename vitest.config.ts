import { defineConfig } from 'vitest/config'

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 120_000,
    // Real daemons (Kubo, rsync) per file: keep the two cores from thrashing.
    maxWorkers: 2,
    globalSetup: ['test/global-setup.ts'],
  },
})
