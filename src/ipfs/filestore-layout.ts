import { homedir } from 'node:os'
import { dirname, isAbsolute, join, normalize, resolve, sep } from 'node:path'

/**
 * The folder under which Kubo's filestore may reference files: the parent of its repo (Kubo builds its
 * file manager on `filepath.Dir(IPFS_PATH)`, with `~` expanded and the path cleaned but not made
 * absolute).
 */
export function filestoreRoot(ipfsPath: string): string {
  const expanded =
    ipfsPath === '~' || ipfsPath.startsWith('~/') ? join(homedir(), ipfsPath.slice(1)) : ipfsPath
  return dirname(normalize(expanded).replace(/(.)\/+$/, '$1'))
}

/**
 * Whether a Kubo repo at `ipfsPath` can reference the files of the mirrors at `mirrorRoots` in place;
 * undefined when it can, else one line saying what to change. Kubo's test is a plain string prefix
 * (`filepath.HasPrefix`), so this one is too: it predicts exactly what Kubo will refuse.
 */
export function checkFilestoreLayout(ipfsPath: string, mirrorRoots: string | string[]): string | undefined {
  const roots = (Array.isArray(mirrorRoots) ? mirrorRoots : [mirrorRoots]).map((r) => resolve(r))
  if (roots.length === 0) return undefined
  const expanded = ipfsPath.startsWith('~') ? join(homedir(), ipfsPath.slice(1)) : ipfsPath
  if (!isAbsolute(expanded)) {
    return `IPFS_PATH ${ipfsPath} is relative, so Kubo's filestore references nothing in place: give the repo an absolute path such as ${suggestedRepo(roots)}`
  }
  const fsRoot = filestoreRoot(ipfsPath)
  const outside = roots.filter((r) => !r.startsWith(fsRoot))
  if (outside.length === 0) return undefined
  const which =
    outside.length === 1 ? `mirror root ${outside[0]} lies` : `mirror roots ${outside.join(', ')} lie`
  return `Kubo's filestore references only files under ${fsRoot} (the parent of IPFS_PATH ${ipfsPath}) and ${which} outside it: move the repo to ${suggestedRepo(roots)} (IPFS_PATH), or the mirrors under ${fsRoot}`
}

/** A repo path whose parent holds every mirror root and that lies inside none of them. */
function suggestedRepo(roots: string[]): string {
  let common = roots[0]!
  for (const r of roots.slice(1)) {
    while (!(r === common || r.startsWith(common.endsWith(sep) ? common : common + sep)))
      common = dirname(common)
  }
  // A repo inside a mirror tree would be synced over (rsync --delete): go one up from a mirror root.
  if (roots.includes(common)) common = dirname(common)
  return join(common, '.ipfs')
}
