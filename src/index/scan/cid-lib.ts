/**
 * The CID engine, loaded on first use: an unchanged rescan hashes nothing and re-encodes no directory,
 * so it never pays for loading it (multiformats, dag-pb, the CAR code: a sizeable share of startup).
 */
export type CidLib = typeof import('../../cid/index.ts')

let lib: CidLib | undefined

/** The engine if it is loaded (spares an `await` per entry once it is). */
export function loadedCid(): CidLib | undefined {
  return lib
}

export async function loadCid(): Promise<CidLib> {
  lib ??= await import('../../cid/index.ts')
  return lib
}
