import { spawn } from 'node:child_process'

/**
 * A lifeline for a run's process group: a tiny `sh` that reads its stdin, a pipe from this process,
 * and ends the group when that read returns, which happens when this process dies however it dies
 * (kill -9 included: the kernel closes the pipe). Without it, a daemon killed with -9 leaves rsync
 * running under PID 1, and the restarted daemon starts a second rsync on the same tree.
 *
 * Linux's parent-death signal (`setpriv --pdeathsig`) is not enough: it reaches only the one process
 * it is set on and is cleared by fork, so rsync's receiver and a command's children would live on.
 *
 * The watchdog sits in a session of its own (Ctrl-C on the daemon's terminal does not reach it) and
 * is disarmed (KILLed, then the pipe closed) once the run's group is gone, so it can never signal a
 * group whose number was reused.
 */
export interface Watchdog {
  disarm(): void
}

/** argv[0] of the watchdog's shell, so `ps` says what it is. */
export const WATCHDOG_NAME = 'cidmirror-watchdog'

// $1: the process group, $2: the grace period in tenths of a second. `live` is groupAlive() in sh:
// a member that is not a zombie (orphans may wait as zombies for a PID 1 that never reaps them;
// `kill -0` counts those). dash's kill takes no `--`.
const SCRIPT = `read -r _
G=$1
live() {
  for f in /proc/[0-9]*/stat; do
    { IFS= read -r l < "$f"; } 2>/dev/null || continue
    l=\${l##*) }
    s=\${l%% *}; l=\${l#* }; l=\${l#* }; g=\${l%% *}
    [ "$g" = "$G" ] && [ "$s" != Z ] && return 0
  done
  return 1
}
kill -TERM -"$G" 2>/dev/null || exit 0
i=0
while [ "$i" -lt "$2" ] && live; do sleep 0.1; i=$((i + 1)); done
live && kill -KILL -"$G" 2>/dev/null
exit 0
`

export function startWatchdog(pgid: number, graceMs: number): Watchdog {
  const child = spawn('sh', ['-c', SCRIPT, WATCHDOG_NAME, String(pgid), String(Math.ceil(graceMs / 100))], {
    detached: true,
    stdio: ['pipe', 'ignore', 'ignore'],
  })
  child.on('error', () => {}) // no sh: the run record is then the only way back to the group
  // Neither the watchdog nor its pipe keeps the daemon's event loop alive.
  child.unref()
  const stdin = child.stdin as (NodeJS.WritableStream & { unref?: () => void; destroy(): void }) | null
  stdin?.unref?.()
  stdin?.on('error', () => {})
  return {
    disarm: () => {
      // KILL first: were the pipe closed first, the watchdog would signal a group that is gone.
      if (child.pid !== undefined && child.exitCode === null && child.signalCode === null) {
        try {
          process.kill(child.pid, 'SIGKILL')
        } catch {}
      }
      stdin?.destroy()
    },
  }
}
