import { readFileSync } from 'node:fs'
import { Agent, request } from 'node:http'

export interface LoadResult {
  requests: number
  /** Answers that were not 200. */
  failed: number
  seconds: number
}

/**
 * `requests` GETs of `url` over `connections` keep-alive connections, each connection sending its
 * next request when the previous answer has been read (as autocannon does without pipelining).
 */
export async function loadGet(url: string, requests: number, connections = 16): Promise<LoadResult> {
  const agent = new Agent({ keepAlive: true, maxSockets: connections })
  const target = new URL(url)
  let sent = 0
  let failed = 0
  const one = () =>
    new Promise<void>((resolve, reject) => {
      const req = request(
        { host: target.hostname, port: target.port, path: `${target.pathname}${target.search}`, agent },
        (res) => {
          if (res.statusCode !== 200) failed++
          res.on('data', () => {})
          res.on('end', resolve)
          res.on('error', reject)
        },
      )
      req.on('error', reject)
      req.end()
    })
  const start = process.hrtime.bigint()
  const lane = async () => {
    while (sent < requests) {
      sent++
      await one()
    }
  }
  try {
    await Promise.all(Array.from({ length: connections }, lane))
  } finally {
    agent.destroy()
  }
  return { requests, failed, seconds: Number(process.hrtime.bigint() - start) / 1e9 }
}

/** The resident set of process `pid` (Linux), in MiB. */
export function rssMiBOf(pid: number): number {
  const m = /^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))
  if (!m) throw new Error(`no VmRSS for process ${pid}`)
  return Number(m[1]) / 1024
}
