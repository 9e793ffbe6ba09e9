import { CidmirrorError } from '../errors.ts'

/** A request for an evicted file on a gateway that has no fetch-back configured. */
export class NoFetchBackError extends CidmirrorError {
  constructor(mirror: string, path: string) {
    super(
      'GATEWAY_NO_FETCHBACK',
      `${mirror}/${path} was evicted from this disk and this gateway has no fetch-back configured`,
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
