/** The status page, a fastify plugin (see plugin.ts), and the shapes of what it shows. */
export type {
  JanitorFigures,
  JobView,
  MirrorStatus,
  RecentRequest,
  ReplicationView,
  StatusData,
  StatusSources,
} from './data.ts'
export { type StatusPageOptions, statusPage } from './plugin.ts'
