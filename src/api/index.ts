/**
 * The daemon's read API: what the index knows, over HTTP, for the CLI (`stat`, `audit`) and status
 * pages while the daemon holds the database. One contract, both sides: the routes serve an
 * IndexReader (src/index) and the client is one, so answers are the same with or without a daemon.
 */
export { IndexClient } from './client.ts'
export { DaemonUnreachableError } from './errors.ts'
export { type IndexRoutesOptions, type ReadAccess, registerIndexRoutes } from './routes.ts'
