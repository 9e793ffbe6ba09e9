import { homedir } from 'node:os'
import { join } from 'node:path'

/** Kubo built by `.ci/install-kubo` lives in the user's cache; tests find it there too. */
export default function setup(): void {
  const bin = join(homedir(), '.cache', 'cidmirror', 'bin')
  const path = process.env.PATH ?? ''
  if (!path.split(':').includes(bin)) process.env.PATH = `${bin}:${path}`
}
