import { KuboNode, rpcAuthorization } from '../ipfs/index.ts'
import type { IpfsSettings } from './replication-config.ts'

/**
 * The Kubo of `[ipfs] api` (with its `token`), whose in-place references follow evictions: the one
 * client of the local node the daemon and the CLI commands make.
 */
export function localNodeOf(ipfs: IpfsSettings): KuboNode | undefined {
  if (!ipfs.api) return undefined
  return new KuboNode({
    api: ipfs.api,
    local: ipfs.local,
    what: 'ipfs.api',
    ...(ipfs.token ? { authorization: rpcAuthorization(ipfs.token) } : {}),
  })
}
