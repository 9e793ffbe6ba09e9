import {
  type Config,
  createExecPostHook,
  createLogRotationHook,
  createProvider,
  type JobHook,
  type JobSpec,
  type MirrorConfig,
} from '../sync/index.ts'
import { createIndexHook, type IndexMirror } from './index-hook.ts'

/**
 * The jobs of a config, with their hooks in this registration order (pre hooks run in it, post hooks
 * in reverse, as tunasync):
 *
 *   1. log rotation       — pre-exec opens the attempt's log; post-fail renames it `.log.fail`
 *   2. (seam) exclude list — the janitor's pre-exec hook goes here: it writes the evicted files of
 *      the mirror to a file and pushes `--exclude-from=FILE` onto `ctx.extraArgs`, so a sync never
 *      fetches an evicted file again (DESIGN promise 4). Pass it as `preExec` below.
 *   3. exec_on_success / exec_on_failure, in config order
 *   4. index (when the index room is there) — registered last so it runs first after a success,
 *      before exec_on_success sees the mirror
 */
export function buildJobSpecs(
  config: Config,
  opts: {
    indexMirror?: IndexMirror | undefined
    /** Extra pre-exec hooks per mirror (the exclude list of evicted files). */
    preExec?: (mirror: MirrorConfig) => JobHook[]
  },
): JobSpec[] {
  return config.mirrors.map((mirror) => {
    const hooks: JobHook[] = [createLogRotationHook({ keep: mirror.logKeep })]
    if (opts.preExec) hooks.push(...opts.preExec(mirror))
    for (const cmd of mirror.execOnSuccess) hooks.push(createExecPostHook('success', cmd))
    for (const cmd of mirror.execOnFailure) hooks.push(createExecPostHook('failure', cmd))
    if (opts.indexMirror) hooks.push(createIndexHook(opts.indexMirror, mirror.name, mirror.mirrorDir))
    return {
      name: mirror.name,
      provider: createProvider(mirror, config),
      intervalMs: mirror.intervalMs,
      retry: mirror.retry,
      isMaster: mirror.isMaster,
      hooks,
      fingerprint: fingerprint(mirror),
    }
  })
}

function fingerprint(mirror: MirrorConfig): string {
  const { source: _source, ...rest } = mirror
  return JSON.stringify(rest, (_k, v) => (v instanceof RegExp ? v.toString() : v))
}
