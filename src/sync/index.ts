/**
 * The sync room's face: tunasync's manager, worker, jobs, providers and hooks, as the rooms above it
 * (the daemon's wiring, the CLI) use them, and the room's failures. Nothing outside src/sync imports a
 * file of it but this one (test/room-faces.test.ts); add here what a new caller needs. It knows
 * nothing of CIDs: the daemon adds the index step as a hook.
 *
 * Loading it loads the whole room (fastify, execa, the stores): a CLI command imports it with
 * `await import()` inside its action, and `import type` at the top.
 */

export { type Backoff, DEFAULT_RETRY_BACKOFF } from '../util/backoff.ts'
export { checkManagerListener, loadConfig } from './config/index.ts'
export type * from './config/types.ts'
export * as configValues from './config/values.ts'
export { ConfigError, ListenError } from './errors.ts'
export { createExecPostHook, createLogRotationHook, HookError, type JobHook } from './hooks/index.ts'
export { type ExtraRoutes, explainListenError, type ServerTls } from './http.ts'
export { joinUrl, requestJson } from './http-client.ts'
export type { JobSpec } from './job.ts'
export { ManagerClient } from './manager/client.ts'
export * from './manager/errors.ts'
export { type ManagerHandle, startManager } from './manager/index.ts'
export type { CommandVerb } from './protocol.ts'
export { ProviderError } from './provider.ts'
export { createProvider } from './providers/index.ts'
export { isSyncStatus, type SyncStatus, type WebMirrorStatus, type WireMirrorStatus } from './status.ts'
export { trustConfiguredCa } from './trust.ts'
export { InvalidCommandError, ReloadUnsupportedError, Worker } from './worker/index.ts'
