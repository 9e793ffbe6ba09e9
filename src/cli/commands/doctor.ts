import { existsSync, readFileSync } from 'node:fs'
import { homedir } from 'node:os'
import { join } from 'node:path'
import type { Command } from 'commander'
import { isCidmirrorError } from '../../errors.ts'
import { configPath } from './daemon.ts'

/**
 * Where the local Kubo's API is: `--ipfs-api`, else the config's `[ipfs] api` (the node the daemon
 * uses), else the `api` file of `$IPFS_PATH` (default ~/.ipfs).
 */
function kuboApi(flag: string | undefined, configured: string | undefined): { api?: string; why: string } {
  if (flag) return { api: flag, why: '--ipfs-api' }
  if (configured) return { api: configured, why: '[ipfs] api' }
  const repo = process.env.IPFS_PATH || join(homedir(), '.ipfs')
  const file = join(repo, 'api')
  if (existsSync(file)) return { api: readFileSync(file, 'utf8').trim(), why: file }
  return {
    why: existsSync(repo)
      ? `no daemon runs on the Kubo repo ${repo} (it has no api file)`
      : `no Kubo repo at ${repo} and no --ipfs-api`,
  }
}

/**
 * `cidmirror doctor -c FILE`: what in the setup stops cidmirror from working as configured, one line
 * each, with what to change. Exit 0 when nothing does, 1 when something does.
 */
export function register(program: Command): void {
  program
    .command('doctor')
    .description(
      'check the setup: the config, and whether the local Kubo can reference every mirror in place (filestore on, repo beside the mirrors)',
    )
    .option('-c, --config <file>', 'daemon config (default $CIDMIRROR_CONFIG)')
    .option(
      '--ipfs-api <addr>',
      "the local Kubo's RPC API (default: the config's [ipfs] api, else the api file of $IPFS_PATH or ~/.ipfs)",
    )
    .action(async (o: { config?: string; ipfsApi?: string }) => {
      const { loadConfig } = await import('../../sync/index.ts')
      const config = await loadConfig(configPath(o.config))
      const lines: string[] = []
      const problems: string[] = []
      const roots = config.mirrors.map((m) => m.mirrorDir)
      lines.push(`ok    config ${configPath(o.config)}: ${config.mirrors.length} mirror(s)`)

      const { readReplicationConfig } = await import('../../daemon/index.ts')
      const ipfs = readReplicationConfig(config).ipfs
      const { api, why } = kuboApi(o.ipfsApi, ipfs?.api)
      if (!api && ipfs) {
        // [ipfs] without api: the daemon runs its embedded node, which serves the tree itself.
        lines.push(
          'ok    local node: the embedded Helia node ([ipfs] without api), no Kubo filestore to check',
        )
      } else if (!api) {
        lines.push(`-     local Kubo: ${why}; in-place referencing not checked`)
      } else {
        const { IpfsAuthRefusedError, KuboNode, rpcAuthorization } = await import('../../ipfs/index.ts')
        // [ipfs] token goes with the address (the flag's too: it names the same node elsewhere).
        const node = new KuboNode({
          api,
          local: true,
          what: why === '[ipfs] api' ? 'ipfs.api' : why,
          ...(ipfs?.token ? { authorization: rpcAuthorization(ipfs.token) } : {}),
        })
        try {
          const { peerId } = await node.id({ signal: AbortSignal.timeout(10_000) })
          lines.push(`ok    local Kubo at ${node.label} (from ${why}), peer ${peerId}`)
          const found = await node.filestoreProblems(roots, { signal: AbortSignal.timeout(60_000) })
          if (found.length === 0 && roots.length > 0) {
            lines.push(`ok    filestore on; every mirror lies under ${await node.filestoreRoot()}`)
          }
          problems.push(...found)
        } catch (err) {
          // Refused credentials are a config error: one line, exit 2, as the daemon gives.
          if (!isCidmirrorError(err) || err instanceof IpfsAuthRefusedError) throw err
          problems.push(err.message)
        } finally {
          await node.close()
        }
      }
      for (const p of problems) lines.push(`FAIL  ${p}`)
      process.stdout.write(`${lines.join('\n')}\n`)
      if (problems.length > 0) process.exitCode = 1
    })
}
