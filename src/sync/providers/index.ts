import type { Config, MirrorConfig } from '../config/types.ts'
import type { Provider } from '../provider.ts'
import { CommandProvider } from './command.ts'
import { RsyncProvider } from './rsync.ts'
import { TwoStageRsyncProvider } from './two-stage-rsync.ts'

export { commandEnv } from './command.ts'
export { killGroup } from './process-group.ts'
export { RSYNC_DEFAULTS, rsyncArgs } from './rsync.ts'
export { RSYNC_EXIT_CODES, rsyncExitMeaning } from './rsync-exit.ts'
export { STAGE1_PROFILES, stageArgs } from './two-stage-rsync.ts'

/**
 * The provider for one mirror of a loaded config. The mirror's settings are resolved against the
 * global ones already (config/resolve.ts); `_global` is not needed.
 */
export function createProvider(mirror: MirrorConfig, _global?: Config): Provider {
  switch (mirror.provider) {
    case 'rsync':
      return new RsyncProvider(mirror)
    case 'two-stage-rsync':
      return new TwoStageRsyncProvider(mirror)
    case 'command':
      return new CommandProvider(mirror)
  }
}
