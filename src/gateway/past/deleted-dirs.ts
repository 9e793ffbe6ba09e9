/**
 * Which directories of a mirror hold files deleted upstream somewhere below them, for the `/_deleted/`
 * listings (a directory is listed there only when it leads to some). Found in one pass over the
 * mirror's committed records, paged, once per committed scan (the set is kept with the scan id it was
 * built at and rebuilt when a newer scan committed); concurrent callers share one pass.
 */
import type { IndexReader } from '../../index/index.ts'

interface Built {
  scan: number | null
  dirs: Promise<Set<string>>
}

export class DeletedDirs {
  readonly #reader: IndexReader
  readonly #built = new Map<string, Built>()

  constructor(reader: IndexReader) {
    this.#reader = reader
  }

  /** Directory paths ('' for the root) with at least one deleted file or symlink below them. */
  async of(mirror: string): Promise<Set<string>> {
    const scan = (await this.#reader.summary(mirror)).lastScan?.id ?? null
    const have = this.#built.get(mirror)
    if (have && have.scan === scan) return have.dirs
    const dirs = this.#build(mirror)
    this.#built.set(mirror, { scan, dirs })
    dirs.catch(() => {
      if (this.#built.get(mirror)?.dirs === dirs) this.#built.delete(mirror)
    })
    return dirs
  }

  async #build(mirror: string): Promise<Set<string>> {
    const out = new Set<string>()
    let after: string | undefined
    for (;;) {
      const page = await this.#reader.records(mirror, { ...(after ? { after } : {}), limit: 10_000 })
      for (const r of page.records) {
        if (r.state !== 'deleted' || r.kind === 'dir') continue
        let p = r.path
        for (;;) {
          const slash = p.lastIndexOf('/')
          p = slash < 0 ? '' : p.slice(0, slash)
          if (out.has(p)) break
          out.add(p)
          if (p === '') break
        }
      }
      if (page.next === null) return out
      after = page.next
    }
  }
}
