import { execFileSync } from 'node:child_process'

/**
 * Where the real tools the tests talk to come from. A missing tool fails the test with the step that
 * installs it, never a skip.
 */
const INSTALL: Record<string, string> = {
  ipfs: 'run `.ci/install-kubo` (builds Kubo v0.43.0 into ~/.cache/cidmirror/bin) or put Kubo >= 0.40 on PATH',
  rsync: 'run `apt-get install rsync`',
  openssl: 'run `apt-get install openssl`',
  sha256sum: 'run `apt-get install coreutils`',
  'ipfs-cluster-service':
    'run `.ci/install-cluster` (builds IPFS Cluster v1.1.6 into ~/.cache/cidmirror/bin)',
  'ipfs-cluster-ctl': 'run `.ci/install-cluster` (builds IPFS Cluster v1.1.6 into ~/.cache/cidmirror/bin)',
  chromium: 'run `apt-get install chromium` (Debian; the browser tests drive it with playwright-core)',
  curl: 'run `apt-get install curl`',
  nginx: 'run `apt-get install nginx-light` (or nginx)',
  wrk: 'run `apt-get install wrk`',
  'apt-get': 'run on Debian or Ubuntu (apt)',
  'apt-ftparchive': 'run `apt-get install apt-utils`',
  'dpkg-deb': 'run `apt-get install dpkg-dev`',
  gpg: 'run `apt-get install gnupg`',
}

const found = new Map<string, string>()

/** Absolute path of a tool, or throws naming the install step. */
export function tool(
  name:
    | 'ipfs'
    | 'rsync'
    | 'openssl'
    | 'sha256sum'
    | 'ipfs-cluster-service'
    | 'ipfs-cluster-ctl'
    | 'curl'
    | 'chromium'
    | 'nginx'
    | 'wrk'
    | 'apt-get'
    | 'apt-ftparchive'
    | 'dpkg-deb'
    | 'gpg',
): string {
  const cached = found.get(name)
  if (cached) return cached
  const override = name === 'ipfs' ? process.env.CIDMIRROR_IPFS_BIN : undefined
  const candidates = override ? [override] : [name, `/usr/sbin/${name}`]
  for (const c of candidates) {
    try {
      const path = execFileSync('sh', ['-c', `command -v "${c}"`], { encoding: 'utf8' }).trim()
      if (path) {
        found.set(name, path)
        return path
      }
    } catch {}
  }
  throw new Error(`${name} not found: ${INSTALL[name]}`)
}
