/**
 * A retrieval probe: one block fetched from a holder's trustless gateway (`/ipfs/{cid}?format=raw`)
 * whose bytes hash to the CID. It turns an announced copy (a provider record, a service's word) into
 * a verified one.
 */
import { CID } from 'multiformats/cid'
import { sha256 } from 'multiformats/hashes/sha2'
import { request } from 'undici'

export interface ProbeResult {
  ok: boolean
  reason?: string
  ms: number
}

/** At most this many bytes are read: a block is 1 MiB at most under the profile (2 MiB in Kubo's limit). */
const MAX_BLOCK = 2 * 1024 * 1024

export async function probeBlock(gateway: string, cid: string, signal: AbortSignal): Promise<ProbeResult> {
  const started = Date.now()
  const fail = (reason: string): ProbeResult => ({ ok: false, reason, ms: Date.now() - started })
  let parsed: CID
  try {
    parsed = CID.parse(cid)
  } catch {
    return fail('not a CID')
  }
  if (parsed.multihash.code !== sha256.code) return fail('only sha2-256 blocks are probed')
  const url = `${gateway.replace(/\/+$/, '')}/ipfs/${cid}?format=raw`
  try {
    const res = await request(url, {
      signal: AbortSignal.any([signal, AbortSignal.timeout(30_000)]),
      headers: { accept: 'application/vnd.ipld.raw' },
    })
    if (res.statusCode !== 200) {
      await res.body.dump()
      return fail(`HTTP ${res.statusCode}`)
    }
    const chunks: Buffer[] = []
    let n = 0
    for await (const c of res.body) {
      n += (c as Buffer).length
      if (n > MAX_BLOCK) {
        res.body.destroy()
        return fail('more bytes than a block')
      }
      chunks.push(c as Buffer)
    }
    const digest = await sha256.digest(Buffer.concat(chunks))
    if (Buffer.compare(Buffer.from(digest.digest), Buffer.from(parsed.multihash.digest)) !== 0)
      return fail('the bytes do not hash to the CID')
    return { ok: true, ms: Date.now() - started }
  } catch (err) {
    return fail((err as Error).message)
  }
}
