import { multiaddr } from '@multiformats/multiaddr'
import { multiaddrToUri } from '@multiformats/multiaddr-to-uri'

/** The http(s) addresses of a provider record as gateway base URLs (`/ip4/1.2.3.4/tcp/443/tls/http` -> https). */
export function httpGateways(addrs: Iterable<string>): string[] {
  const out: string[] = []
  for (const a of addrs) {
    try {
      const ma = multiaddr(a)
      const names = ma.getComponents().map((c) => c.name)
      if (!names.includes('http') && !names.includes('https')) continue
      const uri = multiaddrToUri(ma)
      if (/^https?:\/\//.test(uri)) out.push(uri.replace(/\/+$/, ''))
    } catch {
      // Not an address we can reach over HTTP.
    }
  }
  return out
}
