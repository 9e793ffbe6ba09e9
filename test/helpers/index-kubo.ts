import { execFileSync } from 'node:child_process'
import { mkdtempSync } from 'node:fs'
import { join } from 'node:path'
import { tool } from './tools.ts'

/**
 * A throwaway Kubo repo (`unixfs-v1-2025` profile, offline) that answers `ipfs add -r -H --only-hash`:
 * the reference for the index's tree CIDs. It lives inside `parent` (the test's own temporary folder),
 * so it goes when the test cleans up.
 */
export function kuboRepo(parent: string): { rootCid: (dir: string) => string } {
  const ipfs = tool('ipfs')
  const repo = mkdtempSync(join(parent, 'kubo-'))
  const env = { ...process.env, IPFS_PATH: repo, IPFS_TELEMETRY: 'off' }
  execFileSync(ipfs, ['init', '--profile', 'test,unixfs-v1-2025'], { env, stdio: 'ignore' })
  return {
    rootCid(dir: string): string {
      return execFileSync(ipfs, ['add', '-r', '-H', '-Q', '--only-hash', '--cid-version=1', dir], {
        env,
        encoding: 'utf8',
      }).trim()
    },
  }
}
