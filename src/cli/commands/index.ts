import type { Command } from 'commander'
import { register as registerAudit } from './audit.ts'
import { register as registerCar } from './car.ts'
import { register as registerCid } from './cid.ts'
import { register as registerDaemon } from './daemon.ts'
import { register as registerDoctor } from './doctor.ts'
import { register as registerFilecoin } from './filecoin.ts'
import { register as registerGateway } from './gateway.ts'
import { register as registerIndex } from './index-cmd.ts'
import { register as registerJanitor } from './janitor.ts'
import { register as registerJobs } from './jobs.ts'
import { register as registerManager } from './manager.ts'
import { register as registerReplicate } from './replicate.ts'
import { register as registerStat } from './stat.ts'
import { register as registerWorker } from './worker.ts'

/** Each command lives in its own file and adds itself to the program. */
export function registerCommands(program: Command): void {
  registerCid(program)
  registerCar(program)
  registerDaemon(program)
  registerManager(program)
  registerWorker(program)
  registerJobs(program)
  registerIndex(program)
  registerStat(program)
  registerAudit(program)
  registerDoctor(program)
  registerReplicate(program)
  registerGateway(program)
  registerFilecoin(program)
  registerJanitor(program)
}
