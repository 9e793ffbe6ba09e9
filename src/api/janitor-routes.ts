import { Readable } from 'node:stream'
import type { FastifyInstance, FastifyRequest } from 'fastify'
import type { FileDecision, JanitorReport } from '../cache/index.ts'
import { errorCode } from '../error-codes.ts'
import { checkMirrorName } from '../index/index.ts'
import { BadRequestError } from '../sync/index.ts'
import { NoJanitorError } from './errors.ts'

/** What the route needs of the daemon's janitor (src/daemon's JanitorService). */
export interface RunningJanitor {
  readonly mirrors: readonly string[]
  run(opts: { mirror?: string; dryRun?: boolean; onFile?: (d: FileDecision) => void }): Promise<JanitorReport>
}

/** One NDJSON line of `POST /cache/janitor` (and of `cidmirror janitor --json`). */
export type JanitorLine =
  | ({ type: 'file' } & FileDecision)
  | ({ type: 'report' } & JanitorReport)
  | { type: 'error'; error: string; code: string }

export interface JanitorRoutesOptions {
  janitor: () => RunningJanitor | undefined
  auth: (req: FastifyRequest) => Promise<void>
}

/**
 * `POST /cache/janitor` (token): one janitor pass of the daemon, `{"mirror"?, "dryRun"?}`, streamed as
 * NDJSON: a line per file as it is judged (and evicted), then the report. Passes never overlap: one
 * asked while another runs starts when it ends.
 */
export function registerJanitorRoutes(app: FastifyInstance, opts: JanitorRoutesOptions): void {
  app.post<{ Body: unknown }>('/cache/janitor', { preHandler: opts.auth }, async (req, reply) => {
    const body = (req.body ?? {}) as Record<string, unknown>
    if (typeof body !== 'object' || Array.isArray(body)) throw new BadRequestError('expected a JSON object')
    for (const k of Object.keys(body))
      if (k !== 'mirror' && k !== 'dryRun')
        throw new BadRequestError(`unknown field ${JSON.stringify(k)} (this route takes mirror, dryRun)`)
    if (body.mirror !== undefined && typeof body.mirror !== 'string')
      throw new BadRequestError('mirror: expected a string')
    if (body.dryRun !== undefined && typeof body.dryRun !== 'boolean')
      throw new BadRequestError('dryRun: expected true or false')
    const janitor = opts.janitor()
    if (!janitor) throw new NoJanitorError()
    const mirror = body.mirror === undefined ? undefined : checkMirrorName(body.mirror)
    if (mirror !== undefined && !janitor.mirrors.includes(mirror))
      throw new BadRequestError(
        `mirror ${mirror}: not a mirror the janitor looks after (${janitor.mirrors.join(', ') || 'none'})`,
      )
    // Decisions are pushed as the pass makes them and pulled by the response stream.
    const queue: JanitorLine[] = []
    let wake: (() => void) | undefined
    let finished = false
    const push = (l: JanitorLine): void => {
      queue.push(l)
      wake?.()
    }
    void janitor
      .run({
        ...(mirror !== undefined ? { mirror } : {}),
        dryRun: body.dryRun === true,
        onFile: (d) => push({ type: 'file', ...d }),
      })
      .then(
        (report) => push({ type: 'report', ...report }),
        (err) => {
          req.log.error({ err }, 'janitor pass failed')
          const e = err as { message?: string; code?: string }
          push({ type: 'error', error: e.message ?? String(err), code: e.code ?? errorCode('INTERNAL') })
        },
      )
      .finally(() => {
        finished = true
        wake?.()
      })
    async function* ndjson(): AsyncGenerator<string> {
      for (;;) {
        while (queue.length > 0) yield `${JSON.stringify(queue.shift())}\n`
        if (finished) return
        await new Promise<void>((r) => {
          wake = r
        })
        wake = undefined
      }
    }
    return reply.type('application/x-ndjson').send(Readable.from(ndjson()))
  })
}
