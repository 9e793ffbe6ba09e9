/**
 * Opens the Filecoin Onchain Cloud adapter. The SDK and viem are loaded here, at the first Filecoin
 * target, not by every importer of the replicator's face (the audit CLI never needs them).
 */
import type { FocService } from './service.ts'
import type { SynapseServiceOptions } from './synapse.ts'

export async function openSynapseService(opts: SynapseServiceOptions): Promise<FocService> {
  const { SynapseService } = await import('./synapse.ts')
  return SynapseService.open(opts)
}
