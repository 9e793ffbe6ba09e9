import { readFileSync } from 'node:fs'
import tls from 'node:tls'
import type { Config } from './config/types.ts'
import { ConfigError } from './errors.ts'

const trusted = new Set<string>()

/**
 * `[manager] ca_cert` (tunasync's; also its manager's `[files] ca_cert`): the certificates in that
 * PEM file are trusted by every TLS client of this process from now on — the worker's calls to an
 * `https` manager, the manager's to `https` workers, the jobs CLI — beside the usual ones. Process-wide
 * because fetch takes no per-call CA; syncs run in processes of their own and are not affected.
 */
export function trustConfiguredCa(config: Config): void {
  const file = config.manager.caCert
  if (!file || trusted.has(file)) return
  const where = config.keyFiles['manager.ca_cert'] ?? config.file
  let pem: string
  try {
    pem = readFileSync(file, 'utf8')
  } catch (err) {
    throw new ConfigError(
      'CONFIG_READ',
      where,
      'manager.ca_cert',
      `cannot read ${file}: ${(err as Error).message}`,
      {
        cause: err,
      },
    )
  }
  if (!pem.includes('-----BEGIN CERTIFICATE-----')) {
    throw new ConfigError('CONFIG_BAD_VALUE', where, 'manager.ca_cert', `${file} holds no PEM certificate`)
  }
  if (typeof tls.setDefaultCACertificates !== 'function') {
    throw new ConfigError(
      'CONFIG_UNSUPPORTED',
      where,
      'manager.ca_cert',
      `needs Node.js 22.19 or 24.5 or later (tls.setDefaultCACertificates); this is ${process.version}`,
    )
  }
  tls.setDefaultCACertificates([...tls.getCACertificates('default'), pem])
  trusted.add(file)
}
