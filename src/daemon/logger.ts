import { type Logger, pino } from 'pino'

/** The daemons' structured JSON log (pino) on stderr; `CIDMIRROR_LOG_LEVEL` sets the level. */
export function createLogger(opts: { level?: string; name?: string } = {}): Logger {
  return pino(
    { name: opts.name ?? 'cidmirror', level: opts.level ?? process.env.CIDMIRROR_LOG_LEVEL ?? 'info' },
    pino.destination({ dest: 2, sync: true }),
  )
}
