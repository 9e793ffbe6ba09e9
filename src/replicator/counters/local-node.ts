/**
 * The local IPFS node as a copy counter: the node that serves the mirror from this disk (the embedded
 * Helia node, or a Kubo referencing the files in place). Its copy is listed, so the audit shows where
 * the blocks are served from, and never counted toward n (DESIGN promise 1: it shares the disk).
 */
import type { CopyRecord } from '../../index/index.ts'
import type { CopyCounter, ReplicationItem, TargetCallOptions } from '../target.ts'

/** What this counter needs of a node: src/ipfs's node interface, its read half. */
export interface ServingNode {
  readonly kind: string
  id(opts?: { signal?: AbortSignal }): Promise<{ peerId: string }>
  has(cid: string, opts?: { signal?: AbortSignal }): Promise<boolean>
}

/** The counter's name, by scope; not a valid target name, so it never clashes with a configured one. */
export const LOCAL_NODE_COUNTER = { tree: '(local node)', entity: '(local node, per file)' } as const

export class LocalNodeCounter implements CopyCounter {
  readonly name: string
  readonly scope: 'tree' | 'entity'
  readonly #node: ServingNode
  #peer: string | undefined

  constructor(node: ServingNode, scope: 'tree' | 'entity' = 'tree') {
    this.#node = node
    this.scope = scope
    this.name = LOCAL_NODE_COUNTER[scope]
  }

  async check(item: ReplicationItem, { signal }: TargetCallOptions): Promise<CopyRecord[]> {
    this.#peer ??= (await this.#node.id({ signal })).peerId
    // The root block as the node reads it now (the embedded node checks it against the mirror file).
    if (!(await this.#node.has(item.cid, { signal }))) return []
    const now = Date.now()
    const rec: CopyRecord = {
      cid: item.cid,
      holder: `ipfs:${this.#peer}`,
      kind: 'ipfs-node',
      how: this.#node.kind === 'helia' ? 'serves-mirror-tree' : 'local-node',
      status: 'verified',
      scope: item.scope,
      local: true,
      checkedAt: now,
      since: now,
    }
    if (item.scope === 'tree') {
      rec.mirror = item.mirror!
      if (item.scan !== undefined) rec.scan = item.scan
    }
    return [rec]
  }
}
