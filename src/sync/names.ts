/**
 * What a mirror name or a worker id may be, wherever one comes in: the config, and every route of
 * the manager's and the worker's APIs. A mirror name is a folder name (its mirror and log folders),
 * part of the manager's record keys and of URL paths; a worker id is a record key and a URL path
 * segment too. Control characters would forge log lines; a name longer than a URL can carry could
 * be stored but never deleted (the DELETE's request line is refused with 431).
 */

/** The longest name, in UTF-8 bytes: the CID index holds names of up to 100 characters, and a log file adds 26 bytes to a name that must fit in 255. */
export const MAX_NAME_BYTES = 100

const CONTROL = /[\u0000-\u001f\u007f-\u009f]/

/** Why `name` is not a valid name, or undefined when it is. */
export function nameProblem(name: string): string | undefined {
  if (name === '') return 'it is empty'
  const bytes = Buffer.byteLength(name)
  if (bytes > MAX_NAME_BYTES) return `it has ${bytes} bytes, at most ${MAX_NAME_BYTES} are allowed`
  if (name === '.' || name === '..') return 'it cannot be a folder name'
  if (name.includes('/')) return 'it contains "/"'
  if (CONTROL.test(name)) return 'it contains a control character'
  return undefined
}

/** `"name" is not a valid name: why`, with a long name cut short; undefined when it is valid. */
export function invalidName(name: string): string | undefined {
  const problem = nameProblem(name)
  if (problem === undefined) return undefined
  const shown =
    name.length > 40 ? `${JSON.stringify(name.slice(0, 40)).slice(0, -1)}..."` : JSON.stringify(name)
  return `${shown} is not a valid name: ${problem}`
}
