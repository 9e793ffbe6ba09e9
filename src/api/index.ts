/**
 * The daemon's read API: what the index knows, over HTTP, for the CLI (`stat`, `audit`) and status
 * pages while the daemon holds the database. One contract, both sides: the routes serve an
 * IndexReader (src/index) and the client is one, so answers are the same with or without a daemon.
 */

export { AuditClient } from './audit-client.ts'
export {
  type AuditErrorLine,
  type AuditRoutesOptions,
  type AuditWireLine,
  type CheckingReplicator,
  registerAuditRoutes,
} from './audit-routes.ts'
export { IndexClient } from './client.ts'
export { DaemonUnreachableError, NoJanitorError, NoReplicatorError } from './errors.ts'
export { JanitorClient } from './janitor-client.ts'
export {
  type JanitorLine,
  type JanitorRoutesOptions,
  type RunningJanitor,
  registerJanitorRoutes,
} from './janitor-routes.ts'
export { type IndexRoutesOptions, type ReadAccess, registerIndexRoutes } from './routes.ts'
