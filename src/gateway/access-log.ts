/**
 * The access log in nginx's `combined` format, so goaccess, awstats and tunasync-monitor read it as
 * they read nginx's:
 *
 *   $remote_addr - $remote_user [$time_local] "$request" $status $body_bytes_sent "$http_referer" "$http_user_agent"
 *
 * Lines are gathered and written in batches (every 100 ms or 64 KiB), not one write per request, and
 * the file is rotated by `rotating-file-stream` (by size and by interval, `keep` old files). Values are
 * escaped as nginx escapes them (`"`, `\` and bytes outside printable ASCII as `\xHH`).
 */
import { dirname } from 'node:path'
import { createStream, type RotatingFileStream } from 'rotating-file-stream'

export interface AccessLogOptions {
  file: string
  /** Rotate when the file reaches this size (`rotating-file-stream` form: `100M`). */
  size?: string
  /** Rotate at this interval (`1d`, `12h`). */
  interval?: string
  /** Rotated files kept. */
  keep?: number
}

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec']

function escapeValue(s: string | undefined): string {
  if (s === undefined || s === '') return '-'
  return s.replace(/[\x00-\x1f"\\\x7f-\uffff]/g, (c) => {
    const code = c.charCodeAt(0)
    if (code > 0xff)
      return Buffer.from(c).reduce(
        (out, b) => `${out}\\x${b.toString(16).toUpperCase().padStart(2, '0')}`,
        '',
      )
    return `\\x${code.toString(16).toUpperCase().padStart(2, '0')}`
  })
}

export class AccessLog {
  readonly #stream: RotatingFileStream
  #pending = ''
  #timer: NodeJS.Timeout | undefined
  #second = -1
  #stamp = ''

  constructor(o: AccessLogOptions) {
    const slash = o.file.lastIndexOf('/')
    this.#stream = createStream(o.file.slice(slash + 1), {
      path: dirname(o.file),
      ...(o.size ? { size: o.size as `${number}M` } : {}),
      ...(o.interval ? { interval: o.interval as `${number}d` } : {}),
      ...(o.keep !== undefined ? { maxFiles: o.keep } : {}),
    })
    this.#stream.on('error', () => {
      // A full or read-only disk must not stop serving; the daemon's own log says the rest.
    })
  }

  /** nginx's `$time_local` in UTC, computed once a second. */
  #time(now: number): string {
    const s = Math.floor(now / 1000)
    if (s !== this.#second) {
      const d = new Date(s * 1000)
      const p = (n: number): string => String(n).padStart(2, '0')
      this.#stamp = `${p(d.getUTCDate())}/${MONTHS[d.getUTCMonth()]}/${d.getUTCFullYear()}:${p(d.getUTCHours())}:${p(d.getUTCMinutes())}:${p(d.getUTCSeconds())} +0000`
      this.#second = s
    }
    return this.#stamp
  }

  write(
    remote: string | undefined,
    method: string,
    url: string,
    httpVersion: string,
    status: number,
    bytes: number,
    referer: string | undefined,
    agent: string | undefined,
  ): void {
    this.#pending += `${remote ?? '-'} - - [${this.#time(Date.now())}] "${escapeValue(`${method} ${url} HTTP/${httpVersion}`)}" ${status} ${bytes} "${escapeValue(referer)}" "${escapeValue(agent)}"\n`
    if (this.#pending.length >= 65536) this.flush()
    else this.#timer ??= setTimeout(() => this.flush(), 100)
  }

  flush(): void {
    if (this.#timer) clearTimeout(this.#timer)
    this.#timer = undefined
    if (this.#pending === '') return
    this.#stream.write(this.#pending)
    this.#pending = ''
  }

  async close(): Promise<void> {
    this.flush()
    await new Promise<void>((resolve) => {
      this.#stream.end(() => resolve())
    })
  }
}
