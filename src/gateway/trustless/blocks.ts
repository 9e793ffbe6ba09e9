/**
 * Where the trustless endpoint reads blocks: the mirror tree through the index's block map (no second
 * copy), then, for CIDs that are not the mirror's, the local IPFS node's own blockstore (never the
 * network: the spec's non-recursive gateway answers 404 for what it does not hold). Every block is
 * checked against its CID before it leaves this file (DESIGN promise 2), whatever the node says it did.
 */

import type { CID } from 'multiformats/cid'
import type { BlockReader } from '../../index/index.ts'
import { BlockNotFoundError, type IpfsNode, UnsupportedHashError, verifyBlock } from '../../ipfs/index.ts'
import { isIdentity } from './dag.ts'

/** Which store gave a block, for logs and the tests. */
export type BlockOrigin = 'identity' | 'mirror' | 'node'

export class BlockSource {
  readonly #mirror: BlockReader
  readonly #node: IpfsNode | undefined

  constructor(mirror: BlockReader, node?: IpfsNode) {
    this.#mirror = mirror
    this.#node = node
  }

  /** The block's bytes, verified, or undefined when neither store holds it. */
  async get(cid: CID, signal?: AbortSignal): Promise<Uint8Array | undefined> {
    return (await this.getWithOrigin(cid, signal))?.bytes
  }

  async getWithOrigin(
    cid: CID,
    signal?: AbortSignal,
  ): Promise<{ bytes: Uint8Array; origin: BlockOrigin } | undefined> {
    if (isIdentity(cid)) return { bytes: cid.multihash.digest, origin: 'identity' }
    // The index keys blocks by CIDv1; a CIDv0 names the same dag-pb block.
    const mine = await this.#mirror.get(cid.version === 0 ? cid.toV1() : cid)
    if (mine) return { bytes: mine, origin: 'mirror' }
    if (!this.#node) return undefined
    let bytes: Uint8Array
    try {
      bytes = await this.#node.getBlock(cid.toString(), { offline: true, signal })
    } catch (err) {
      // Not held, or hashed with a function we cannot check: either way not ours to pass on.
      if (err instanceof BlockNotFoundError || err instanceof UnsupportedHashError) return undefined
      throw err
    }
    verifyBlock(cid, bytes, this.#node.label)
    return { bytes, origin: 'node' }
  }
}
