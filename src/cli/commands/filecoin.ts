import { lstatSync, readdirSync } from 'node:fs'
import { join } from 'node:path'
import type { Command } from 'commander'
import { UsageError } from '../errors.ts'
import { configPath } from './daemon.ts'

/**
 * `cidmirror filecoin quote [--mirror NAME]`: what storing a mirror on Filecoin Onchain Cloud would cost
 * (the service's own quote for its bytes packed into pieces, with `[filecoin] copies`), against the
 * spending cap. `cidmirror filecoin status`: the wallet (address, never its key), its balances and
 * deposit, and its data sets. Both read `[filecoin]` and ask the chain; neither opens the database.
 */
export function register(program: Command): void {
  const fc = program
    .command('filecoin')
    .description('Filecoin Onchain Cloud: what storing costs, the wallet and its data sets')
  fc.command('quote')
    .description('print what storing a mirror (every mirror by default) on Filecoin would cost')
    .option('-c, --config <file>', 'config file (TOML); default $CIDMIRROR_CONFIG')
    .option('--mirror <name>', 'only this mirror')
    .action(async (o: { config?: string; mirror?: string }) => {
      await filecoinQuote({ config: configPath(o.config), ...(o.mirror ? { mirror: o.mirror } : {}) }, (s) =>
        process.stdout.write(s),
      )
    })
  fc.command('status')
    .description('print the wallet, its balances and deposit, and its data sets')
    .option('-c, --config <file>', 'config file (TOML); default $CIDMIRROR_CONFIG')
    .action(async (o: { config?: string }) => {
      await filecoinStatus({ config: configPath(o.config) }, (s) => process.stdout.write(s))
    })
}

async function open(file: string) {
  const { loadConfig } = await import('../../sync/index.ts')
  const { openFilecoinService, readReplicationConfig } = await import('../../daemon/index.ts')
  const config = await loadConfig(file)
  const fc = readReplicationConfig(config).filecoin
  if (!fc) throw new UsageError(`config ${config.file}: no [filecoin] section (network, key_file)`)
  return { config, fc, service: await openFilecoinService(fc) }
}

/** Sizes of the regular files under `root` (symlinks and hidden entries as the index skips them). */
function fileSizes(root: string): { path: string; size: number }[] {
  const out: { path: string; size: number }[] = []
  const walk = (dir: string, rel: string): void => {
    let entries: import('node:fs').Dirent[]
    try {
      entries = readdirSync(dir, { withFileTypes: true })
    } catch {
      return
    }
    for (const e of entries) {
      if (e.name.startsWith('.')) continue
      const abs = join(dir, e.name)
      const r = rel ? `${rel}/${e.name}` : e.name
      if (e.isDirectory()) walk(abs, r)
      else if (e.isFile()) out.push({ path: r, size: lstatSync(abs).size })
    }
  }
  walk(root, '')
  return out
}

export async function filecoinQuote(
  o: { config: string; mirror?: string },
  write: (s: string) => void,
): Promise<void> {
  const { formatUsdfc, planPieces, carBytesOfFile, DEFAULT_PACK } = await import('../../replicator/index.ts')
  const { config, fc, service } = await open(o.config)
  const mirrors = config.mirrors.filter((m) => !o.mirror || m.name === o.mirror)
  if (mirrors.length === 0)
    throw new UsageError(
      `config ${config.file}: no mirror named ${o.mirror} (known: ${config.mirrors.map((m) => m.name).join(', ')})`,
    )
  const pack = {
    smallFile: fc.smallFile ?? DEFAULT_PACK.smallFile,
    pieceTarget: fc.pieceTarget ?? DEFAULT_PACK.pieceTarget,
    maxPieceBytes: Math.min(fc.maxPiece ?? service.maxUploadSize, service.maxUploadSize),
  }
  write(`network ${service.network}, wallet ${service.address}, ${fc.copies} copies on distinct providers\n`)
  let total = 0n
  for (const m of mirrors) {
    const files = fileSizes(m.mirrorDir)
    // Paths stand in for CIDs: the quote needs sizes, not content (duplicates are counted twice).
    const pieces = planPieces(
      files.map((f) => ({ cid: f.path, size: f.size, mirror: m.name, path: f.path })),
      pack,
    )
    const bytes = files.reduce((a, f) => a + carBytesOfFile(f.size), 0)
    const q = files.length === 0 ? { perMonth: 0n, depositNeeded: 0n } : await service.quote(bytes, fc.copies)
    total += q.perMonth
    const size = files.reduce((a, f) => a + f.size, 0)
    write(
      `${m.name}: ${files.length} files, ${size} bytes in ${pieces.length} pieces: ${formatUsdfc(q.perMonth)} USDFC/month for ${fc.copies} copies; deposit still needed: ${formatUsdfc(q.depositNeeded)} USDFC\n`,
    )
  }
  if (mirrors.length > 1) write(`all: ${formatUsdfc(total)} USDFC/month\n`)
  if (fc.capMonth !== undefined)
    write(
      `cap_month ${formatUsdfc(fc.capMonth)} USDFC: ${total > fc.capMonth ? 'the quote passes it; storing would stop at the cap' : 'within it'}\n`,
    )
  if (fc.capTotal !== undefined)
    write(
      `cap_total ${formatUsdfc(fc.capTotal)} USDFC: ${total > fc.capTotal ? 'the quote passes it' : 'within it'}\n`,
    )
}

export async function filecoinStatus(o: { config: string }, write: (s: string) => void): Promise<void> {
  const { formatUsdfc } = await import('../../replicator/index.ts')
  const { service } = await open(o.config)
  const w = await service.wallet()
  const fil = formatUsdfc(w.fil)
  write(`network ${w.network}\nwallet ${w.address}\n`)
  write(`balance ${fil} FIL, ${formatUsdfc(w.usdfc)} USDFC\n`)
  write(
    `deposit ${formatUsdfc(w.deposited)} USDFC in Filecoin Pay, ${formatUsdfc(w.available)} USDFC available\n`,
  )
  const sets = await service.dataSets()
  write(`data sets: ${sets.length}\n`)
  for (const d of sets)
    write(
      `  ${d.dataSetId}: provider ${d.providerId}, ${d.live ? 'live' : 'not live'}, ${d.activePieces} pieces${d.metadata.source ? `, source ${d.metadata.source}` : ''}${'withIPFSIndexing' in d.metadata ? ', IPFS indexing' : ''}\n`,
    )
}
