import { CidmirrorError } from '../errors.ts'

/**
 * A request for bytes that are not on this disk (an evicted file, or one that left the mirror: deleted
 * upstream, a past version, a bare CID) on a gateway that has no fetch-back configured.
 */
export class NoFetchBackError extends CidmirrorError {
  constructor(file: { mirror: string; path: string; cid: string; transient?: boolean }) {
    super(
      'GATEWAY_NO_FETCHBACK',
      file.transient
        ? // A transient file's path only names it in logs (`.ipfs/<cid>` for a bare CID): name its CID.
          `${file.cid} left the mirror (deleted upstream or a past version), its bytes are not on this disk, and this gateway has no fetch-back configured`
        : `${file.mirror}/${file.path} was evicted from this disk and this gateway has no fetch-back configured`,
    )
    this.name = 'NoFetchBackError'
  }
}

/** A `[gateway]` mirror path that another mirror or a gateway route already takes. */
export class GatewayPathError extends CidmirrorError {
  constructor(problem: string) {
    super('GATEWAY_PATH', problem)
    this.name = 'GatewayPathError'
  }
}
