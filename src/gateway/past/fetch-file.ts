/**
 * The trustless CAR's `fetchFile` over the fetch-back: a file's bytes by CID, as a transient fetch
 * (to the client only, never into a tree), its temp files kept with mirror `mirror`'s.
 */
import type { FetchBack } from '../index.ts'
import type { FetchFile } from '../trustless/fill.ts'

export function fetchFileVia(fetchBack: FetchBack, mirror: string): FetchFile {
  return async (cid, size, range, signal) => {
    const text = cid.toV1().toString()
    const file = { mirror, path: `.ipfs/${text}`, cid: text, size, mtimeMs: 0, transient: true }
    return (await fetchBack.open(file, range, signal)).body
  }
}
