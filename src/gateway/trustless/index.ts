/** The trustless `/ipfs/{cid}` endpoint, a fastify plugin (see plugin.ts). */
export * from './errors.ts'
export type { FetchFile } from './fill.ts'
export { type TrustlessGatewayOptions, trustlessGateway } from './plugin.ts'
