import { explainListenError } from '../sync/index.ts'

const ERRNOS = ['EADDRINUSE', 'EACCES', 'EADDRNOTAVAIL'] as const

/**
 * The embedded node's listen failure as the daemon's other listeners report theirs: one line naming
 * `[ipfs] listen` and the address (a ListenError, exit 2), not libp2p's stack. libp2p gives an
 * UnsupportedListenAddressesError whose message names each multiaddr and its Node error; the
 * first of `listen` it names with an errno we explain is the one reported. Anything else is returned
 * as it came.
 */
export function explainEmbeddedListenError(
  err: unknown,
  listen: string[],
  file: string | undefined,
): unknown {
  const text = err instanceof Error ? err.message : String(err)
  for (const addr of listen) {
    const at = text.indexOf(`${addr}:`)
    if (at < 0) continue
    const after = text.slice(at + addr.length, at + addr.length + 200)
    const errno = ERRNOS.find((e) => after.includes(e))
    const m = /^\/ip[46]\/([^/]+)\/tcp\/(\d+)/.exec(addr)
    if (!errno || !m) continue
    const key = { file: file ?? 'the config', key: 'ipfs.listen' }
    const cause = Object.assign(new Error(text), { code: errno })
    return explainListenError(cause, m[1]!, Number(m[2]), { addr: key, port: key })
  }
  return err
}
