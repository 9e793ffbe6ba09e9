import { RemoteError } from '../api-errors.ts'
import { joinUrl, requestJson } from '../http-client.ts'
import type { CommandVerb } from '../protocol.ts'
import type { WebMirrorStatus, WireMirrorStatus } from '../status.ts'
import { TokenRefusedError } from './errors.ts'

export interface WorkerJson {
  id: string
  url: string
  token: string
  last_online: string
  last_register: string
}

export interface ClientCommand {
  cmd: CommandVerb
  mirror_id?: string
  worker_id?: string
  args?: string[]
  options?: Record<string, boolean>
}

/** The manager's HTTP API, for the CLI and for workers. Errors: RemoteError, UnreachableError. */
export class ManagerClient {
  readonly base: string
  #token: string | undefined
  readonly #timeoutMs: number
  readonly #tokenFrom: string | undefined

  /**
   * `opts.tokenFrom`: where the token came from (`--token`, a config key), named when the manager
   * refuses it.
   */
  constructor(base: string, token?: string, opts: { timeoutMs?: number; tokenFrom?: string } = {}) {
    this.base = base
    this.#token = token
    this.#timeoutMs = opts.timeoutMs ?? 30_000
    this.#tokenFrom = opts.tokenFrom
  }

  async #req<T>(
    method: 'GET' | 'POST' | 'DELETE',
    path: string,
    body?: unknown,
    timeoutMs?: number,
  ): Promise<T> {
    try {
      return await requestJson<T>(method, joinUrl(this.base, path), {
        ...(this.#token ? { token: this.#token } : {}),
        ...(body === undefined ? {} : { body }),
        timeoutMs: timeoutMs ?? this.#timeoutMs,
      })
    } catch (err) {
      if (err instanceof RemoteError && err.statusCode === 401 && this.#token && this.#tokenFrom) {
        throw new TokenRefusedError(this.base, this.#tokenFrom)
      }
      throw err
    }
  }

  /** The token later calls carry. */
  setToken(token: string | undefined): void {
    this.#token = token
  }

  ping(): Promise<{ message: string }> {
    return this.#req('GET', '/ping')
  }

  listJobs(): Promise<WebMirrorStatus[]> {
    return this.#req('GET', '/jobs')
  }

  listWorkers(): Promise<WorkerJson[]> {
    return this.#req('GET', '/workers')
  }

  workerJobs(id: string): Promise<WireMirrorStatus[]> {
    return this.#req('GET', `/workers/${encodeURIComponent(id)}/jobs`)
  }

  register(w: { id: string; url: string; token: string }): Promise<WorkerJson> {
    return this.#req('POST', '/workers', w)
  }

  deleteWorker(id: string): Promise<{ message: string }> {
    return this.#req('DELETE', `/workers/${encodeURIComponent(id)}`)
  }

  updateJob(workerId: string, status: WireMirrorStatus): Promise<WireMirrorStatus> {
    return this.#req(
      'POST',
      `/workers/${encodeURIComponent(workerId)}/jobs/${encodeURIComponent(status.name)}`,
      status,
    )
  }

  setSize(workerId: string, mirror: string, size: string): Promise<WireMirrorStatus> {
    return this.#req(
      'POST',
      `/workers/${encodeURIComponent(workerId)}/jobs/${encodeURIComponent(mirror)}/size`,
      { name: mirror, size },
    )
  }

  flushDisabled(): Promise<{ message: string }> {
    return this.#req('DELETE', '/jobs/disabled')
  }

  /** Commands wait for the worker (stopping a run waits for its processes to end). */
  cmd(c: ClientCommand): Promise<{ message: string }> {
    return this.#req('POST', '/cmd', c, Math.max(this.#timeoutMs, 90_000))
  }
}
