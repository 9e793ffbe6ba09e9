/**
 * When each mirror file was last requested through the gateway: what the janitor's
 * `not_requested_within` rule reads (`lastRequested(mirror, path)`). The daemon makes one when `[cache]`
 * sets that window and hands it to both the gateway (which notes every GET and HEAD of a file) and
 * the janitor.
 *
 * Bounded: at most `max` paths (default 200,000; about 53 bytes an entry besides its key, measured),
 * in two generations of at most `max / 2` each (the hashlru scheme): a request notes its path in the
 * current one; when that is full it becomes the previous one and the previous one is dropped whole,
 * so the least recently requested paths go first and a request costs a Map lookup or two and a set,
 * never a scan. A path already noted in the current generation within `resolutionMs` (default 60 s)
 * is not written again.
 *
 * It claims nothing it cannot know. A path that is not in the map counts as requested at `since`:
 * when the map was made (the gateway's start), or later, the newest time of a generation dropped by
 * the bound. So after a restart, or when more than `max` paths were requested within the window, the
 * rule keeps files until the window has passed since then, rather than evicting files that may be in use.
 */

export interface RequestTimesOptions {
  /** Paths kept at most (default 200,000). */
  max?: number
  /** A path noted again within this is not written again (default 60 s). */
  resolutionMs?: number
  /** The map's start (default now). */
  now?: number
}

export class RequestTimes {
  #current = new Map<string, number>()
  #previous = new Map<string, number>()
  /** The newest time noted in the current generation. */
  #newest = 0
  /** The newest time noted in the previous generation: `since` once it is dropped. */
  #previousNewest = 0
  readonly #half: number
  readonly #resolutionMs: number
  #since: number

  constructor(o: RequestTimesOptions = {}) {
    this.#half = Math.max(1, Math.floor((o.max ?? 200_000) / 2))
    this.#resolutionMs = o.resolutionMs ?? 60_000
    this.#since = o.now ?? Date.now()
  }

  /** The key of a mirror's path (the gateway keeps it on the file's cached meta: no string per request). */
  static key(mirror: string, path: string): string {
    return `${mirror}\0${path}`
  }

  /** What an unknown path counts as: nothing is known of requests before this (epoch ms). */
  get since(): number {
    return this.#since
  }

  /** Paths known (a path in both generations counts once per generation). */
  get size(): number {
    return this.#current.size + this.#previous.size
  }

  /** A request of the file under `key` (see `key`) at `now`. */
  note(key: string, now = Date.now()): void {
    const last = this.#current.get(key)
    if (last !== undefined && now - last < this.#resolutionMs) return
    if (last === undefined && this.#current.size >= this.#half) {
      // The previous generation goes whole: nothing in it is newer than its newest time.
      if (this.#previous.size > 0 && this.#previousNewest > this.#since) this.#since = this.#previousNewest
      this.#previous = this.#current
      this.#previousNewest = this.#newest
      this.#current = new Map()
    }
    this.#current.set(key, now)
    if (now > this.#newest) this.#newest = now
  }

  /** When the path was last requested, or `since` when it is not known (epoch ms). */
  lastRequested(mirror: string, path: string): number {
    const key = RequestTimes.key(mirror, path)
    return this.#current.get(key) ?? this.#previous.get(key) ?? this.#since
  }
}
