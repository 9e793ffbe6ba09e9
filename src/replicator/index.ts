/**
 * The replicator room: keeps every mirror's files in n verified copies off this disk. Targets store
 * copies (Kubo nodes, IPFS Cluster, pinning services; Filecoin next), counters find them (provider
 * records); the copies live in the index room, the queue in this room's own sublevel.
 */
export { archivedItems } from './archive.ts'
export {
  AUDIT_SCHEMA,
  type AuditCopy,
  type AuditFile,
  type AuditFilter,
  type AuditMirror,
  auditMirror,
} from './audit.ts'
export {
  type AuditFileLine,
  type AuditHeader,
  type AuditLine,
  type AuditMirrorLine,
  type AuditProgressLine,
  type AuditQuery,
  type AuditTotals,
  auditStream,
  checkAuditQuery,
  type PolicySource,
} from './audit-stream.ts'
export { LOCAL_NODE_COUNTER, LocalNodeCounter, type ServingNode } from './counters/local-node.ts'
export { ProviderCounter, type ProviderCounterOptions, type ProvidingNode } from './counters/providers.ts'
export { indexSampler } from './counters/sample.ts'
export type { FileBytes } from './filecoin/file-leaves.ts'
export { IpniCounter, type IpniCounterOptions } from './filecoin/ipni.ts'
export { readKeyFile } from './filecoin/key-file.ts'
export { openSynapseService } from './filecoin/open.ts'
export { carBytesOfFile, planPieces } from './filecoin/packer.ts'
export type { FocService } from './filecoin/service.ts'
export { formatUsdfc, parseUsdfc, type SpendCap } from './filecoin/spend.ts'
export { DEFAULT_PACK, FilecoinTarget, type FilecoinTargetOptions } from './filecoin/target.ts'
export { judge, type ReplicationPolicy, type Verdict } from './policy.ts'
export { type PublishProgress, type PublishSummary, publishMirror } from './publish.ts'
export { type ItemState, type QueueEntry, ReplicationQueue, type TargetState } from './queue.ts'
export { Replicator, type ReplicatorOptions } from './replicator.ts'
export type { CopyCounter, ReplicationItem, StorageTarget, TargetCallOptions } from './target.ts'
export { ClusterTarget, type ClusterTargetOptions } from './targets/cluster.ts'
export { KuboTarget, type KuboTargetOptions, type PinningNode } from './targets/kubo.ts'
export { PinningServiceTarget, type PinningServiceTargetOptions } from './targets/pinning-service.ts'
export { type ProbeResult, probeBlock } from './targets/probe.ts'
