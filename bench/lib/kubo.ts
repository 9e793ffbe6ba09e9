import { execFileSync } from 'node:child_process'
import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

/** A throwaway offline Kubo repo with the profile cidmirror matches. */
export function initKuboRepo(): string {
  const repo = mkdtempSync(join(tmpdir(), 'cidmirror-bench-ipfs-'))
  execFileSync('ipfs', ['init', '--profile', 'test,unixfs-v1-2025'], {
    env: { ...process.env, IPFS_PATH: repo, IPFS_TELEMETRY: 'off' },
    stdio: 'ignore',
  })
  return repo
}
