/**
 * Content-Type by file name, as a mirror serves it: packages and images as binary, the indexes clients
 * read (Release, Packages, repomd.xml, simple-index pages) as text, anything unknown as
 * `application/octet-stream` (nginx's `default_type`). `mime-types` (mime-db) knows the common
 * extensions; the table below names what mirrors hold that it does not, or names otherwise; the
 * config's `[gateway.mime]` map wins over both.
 */
import { lookup } from 'mime-types'

const DEFAULT_TYPE = 'application/octet-stream'

/** Extensions (lower case, with the dot) a mirror serves. */
const MIRROR_TYPES: Record<string, string> = {
  '.deb': 'application/vnd.debian.binary-package',
  '.udeb': 'application/vnd.debian.binary-package',
  '.ddeb': 'application/vnd.debian.binary-package',
  '.dsc': 'text/plain; charset=utf-8',
  '.changes': 'text/plain; charset=utf-8',
  '.buildinfo': 'text/plain; charset=utf-8',
  '.whl': 'application/octet-stream',
  '.egg': 'application/octet-stream',
  '.rpm': 'application/x-rpm',
  '.srpm': 'application/x-rpm',
  '.iso': 'application/octet-stream',
  '.img': 'application/octet-stream',
  '.qcow2': 'application/octet-stream',
  '.apk': 'application/octet-stream',
  '.gz': 'application/gzip',
  '.xz': 'application/x-xz',
  '.zst': 'application/zstd',
  '.bz2': 'application/x-bzip2',
  '.lz4': 'application/x-lz4',
  '.gpg': 'application/pgp-keys',
  '.asc': 'text/plain; charset=utf-8',
  '.sig': 'application/pgp-signature',
  '.sha256': 'text/plain; charset=utf-8',
  '.sha512': 'text/plain; charset=utf-8',
  '.md5': 'text/plain; charset=utf-8',
  '.txt': 'text/plain; charset=utf-8',
  '.html': 'text/html; charset=utf-8',
  '.htm': 'text/html; charset=utf-8',
  '.json': 'application/json',
  '.xml': 'application/xml',
  '.meta4': 'application/metalink4+xml',
}

/** Index files without an extension (apt's, and checksum lists), served as text. */
const TEXT_NAMES = new Set([
  'Release',
  'InRelease',
  'Packages',
  'Sources',
  'Index',
  'Translation',
  'SHA256SUMS',
  'SHA512SUMS',
  'MD5SUMS',
  'README',
  'LICENSE',
])

const TEXT = 'text/plain; charset=utf-8'

export type MimeMap = Record<string, string>

/** A name -> Content-Type function; `overrides` maps extensions (`.deb` or `deb`) to types. */
export function contentTypes(overrides: MimeMap = {}): (name: string) => string {
  const own = new Map<string, string>()
  for (const [ext, type] of Object.entries(overrides)) {
    own.set((ext.startsWith('.') ? ext : `.${ext}`).toLowerCase(), type)
  }
  const memo = new Map<string, string>()
  return (name) => {
    const slash = name.lastIndexOf('/')
    const base = slash < 0 ? name : name.slice(slash + 1)
    const dot = base.lastIndexOf('.')
    const ext = dot <= 0 ? '' : base.slice(dot).toLowerCase()
    const hit = memo.get(ext === '' ? `/${base}` : ext)
    if (hit !== undefined) return hit
    let type = own.get(ext) ?? MIRROR_TYPES[ext]
    if (type === undefined && ext === '') {
      type =
        TEXT_NAMES.has(base) || base.startsWith('Contents-') || base.startsWith('Translation-')
          ? TEXT
          : DEFAULT_TYPE
    }
    if (type === undefined) {
      const guess = lookup(base)
      type = guess === false ? DEFAULT_TYPE : guess.startsWith('text/') ? `${guess}; charset=utf-8` : guess
    }
    // Bounded: extensions are few; names without one are only those of the sets above or the default.
    if (memo.size < 4096) memo.set(ext === '' ? `/${base}` : ext, type)
    return type
  }
}
