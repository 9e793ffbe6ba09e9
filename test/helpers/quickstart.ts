import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { freePort } from '../jobs-helpers.ts'

/** The quick start's example folder (its config and its upstream sample tree). */
export const QUICKSTART = join(import.meta.dirname, '..', '..', 'examples', 'quickstart')

/**
 * The quick start's config as it is (examples/quickstart/cidmirror.toml), its data paths moved to
 * `dataDir`, its upstream to `upstreamUrl` and each listener to a free port: the shape under test is
 * the file's.
 */
export async function quickstartConfig(
  dataDir: string,
  upstreamUrl: string,
): Promise<{ text: string; managerPort: number; nodePort: number; gatewayPort: number }> {
  const managerPort = await freePort()
  const workerPort = await freePort()
  const nodePort = await freePort()
  const gatewayPort = await freePort()
  let text = readFileSync(join(QUICKSTART, 'cidmirror.toml'), 'utf8')
    .replaceAll('../../data', dataDir)
    .replace('rsync://127.0.0.1:8873/sample/', upstreamUrl)
    .replace('127.0.0.1:14242', `127.0.0.1:${managerPort}`)
    .replace('listen_port = 6000', `listen_port = ${workerPort}`)
    .replace('listen_port = 8088', `listen_port = ${gatewayPort}`)
    .replaceAll('/tcp/4011', `/tcp/${nodePort}`)
  // Any other listener the example has: a free port of its own.
  for (const m of text.matchAll(/^listen_port = (\d+)$/gm))
    if (m[1] !== String(workerPort) && m[1] !== String(gatewayPort))
      text = text.replace(m[0], `listen_port = ${await freePort()}`)
  return { text, managerPort, nodePort, gatewayPort }
}
