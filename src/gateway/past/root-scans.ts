/**
 * Which committed scan of a served mirror had a given root CID (the newest, when several trees were
 * identical), so a path under `/ipfs/<root>/` is looked up in that scan's tree. Each mirror's map is
 * read once per committed scan (every scan summary, paged) and shared by concurrent callers.
 */
import type { IndexReader, ScanSummary } from '../../index/index.ts'

interface Built {
  scan: number | null
  roots: Promise<Map<string, ScanSummary>>
}

export class RootScans {
  readonly #reader: IndexReader
  readonly #built = new Map<string, Built>()

  constructor(reader: IndexReader) {
    this.#reader = reader
  }

  /** The scan of `mirror` whose root is `root`, or undefined. */
  async of(mirror: string, root: string): Promise<ScanSummary | undefined> {
    const scan = (await this.#reader.summary(mirror)).lastScan?.id ?? null
    let have = this.#built.get(mirror)
    if (!have || have.scan !== scan) {
      const roots = this.#build(mirror)
      have = { scan, roots }
      this.#built.set(mirror, have)
      roots.catch(() => {
        if (this.#built.get(mirror)?.roots === roots) this.#built.delete(mirror)
      })
    }
    return (await have.roots).get(root)
  }

  async #build(mirror: string): Promise<Map<string, ScanSummary>> {
    const out = new Map<string, ScanSummary>()
    let before: number | undefined
    for (;;) {
      const page = await this.#reader.scans(mirror, {
        ...(before !== undefined ? { before } : {}),
        limit: 1000,
      })
      // Newest first: the first seen of a root is its newest scan.
      for (const s of page.scans) if (!out.has(s.rootCid)) out.set(s.rootCid, s)
      if (page.next === null) return out
      before = page.next
    }
  }
}
