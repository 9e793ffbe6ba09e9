import { ConfigError } from '../errors.ts'
import type { Config } from './types.ts'

/**
 * For a process that runs the manager: where it listens at `api_base` (no `listen_addr` or
 * `listen_port`), the scheme must say what it serves. An `https` api_base over a plain listener left
 * the worker retrying its registration for ever; an `http` one over TLS fails the same way. With an
 * explicit listen address anything goes (a proxy may terminate TLS in front of a plain manager).
 */
export function checkManagerListener(config: Config): void {
  const m = config.manager
  if (!m.listensAtApiBase) return
  const https = new URL(m.apiBase).protocol === 'https:'
  const tls = Boolean(m.sslCert && m.sslKey)
  const apiBaseKey = config.keyFiles['manager.api_base_list']
    ? 'manager.api_base_list[0]'
    : 'manager.api_base'
  const fileOf = (key: string): string => config.keyFiles[key.replace(/\[0\]$/, '')] ?? config.file
  if (https && !tls) {
    throw new ConfigError(
      'CONFIG_BAD_VALUE',
      fileOf(apiBaseKey),
      apiBaseKey,
      `"${m.apiBase}" is https, but the manager listening there has no certificate: set manager.ssl_cert and manager.ssl_key, or use http://`,
    )
  }
  if (!https && tls) {
    throw new ConfigError(
      'CONFIG_BAD_VALUE',
      fileOf('manager.ssl_cert'),
      'manager.ssl_cert',
      `the manager serves TLS where ${apiBaseKey} "${m.apiBase}" says plain http: use https:// there`,
    )
  }
}
