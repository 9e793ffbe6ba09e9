/**
 * What the manager and the worker agree on (tunasync's internal/msg.go): the command verbs the CLI
 * sends the manager and the manager relays to a worker. Both sides import it from here, so neither
 * imports the other's server.
 */
export const COMMANDS = ['start', 'stop', 'disable', 'restart', 'reload', 'ping'] as const
export type CommandVerb = (typeof COMMANDS)[number]

export function isCommandVerb(value: unknown): value is CommandVerb {
  return typeof value === 'string' && (COMMANDS as readonly string[]).includes(value)
}
