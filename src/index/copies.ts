/**
 * What the index knows of each CID's copies elsewhere (DESIGN: "copies live in the index room"). The
 * replicator writes them; the audit, the janitor and the gateway read them through this API only.
 *
 *   index/copies/<cid>\x00<holder>        -> CopyRecord   a holder of one CID (a file, or any block root)
 *   index/treecopies/<mirror>\x00<holder> -> CopyRecord   a holder of a mirror's whole tree (a recursive
 *                                                         pin of the root of scan `scan`)
 *
 * A tree copy of scan k covers every path record written at or before scan k that is still current:
 * such a record's CID was in the tree of scan k, so a recursive pin of that root holds it. Records a
 * later scan rewrote are covered once the pin moves to a later root (`pin update`). That keeps one
 * record per holder and mirror, not one per file, for the default tree pins.
 */
import { type Database, type Room, readValues } from '../db.ts'
import { SEP } from './keys.ts'
import { indexLevel } from './store.ts'

/** Who holds a copy, by the kind of system. */
export type CopyKind = 'ipfs-node' | 'ipfs-cluster' | 'pinning-service' | 'ipfs-provider' | 'filecoin'

/**
 * verified: the holder showed it (a node or cluster peer we reach reports it pinned, a Filecoin data set
 * holding it is live with no proof overdue, or a retrieval probe of a block from it hashed right).
 * announced: a record says so (a provider record, a pinning service's status) and nothing checked it.
 * pending: a store was asked for and has not finished. lost: it was there and is gone; kept for the
 * audit until the next successful check.
 */
export type CopyStatus = 'verified' | 'announced' | 'pending' | 'lost'

export interface CopyRecord {
  /** The CID held: a file's CID (scope entity) or a mirror root (scope tree). */
  cid: string
  /** One id per distinct peer or service account: `ipfs:<IPFS peer id>` (a Kubo node, a cluster peer, a provider), `psa:<url>`, `filecoin:<provider>/<dataSet>`. */
  holder: string
  kind: CopyKind
  /** How it is known: `pinned`, `cluster-status`, `pinning-service`, `provider-record`, `retrieval-probe`, `pdp`. */
  how: string
  status: CopyStatus
  scope: 'entity' | 'tree'
  /** On this machine's disk (the local node, a node the config marks local): listed, never counted. */
  local: boolean
  /** Epoch ms of the last check that produced this record. */
  checkedAt: number
  /** Epoch ms when this holder was first seen holding it. */
  since: number
  /** Tree copies: the mirror and the scan whose root is pinned. */
  mirror?: string
  scan?: number
  /** The replicator target (config name) that stored it, when we did. */
  target?: string
  /** Where the bytes can be fetched (trustless gateway `/ipfs/` URLs, Filecoin `/piece/` URLs). */
  retrieval?: string[]
  /** Kind-specific facts shown by the audit (Filecoin: dataSetId, pieceId, pieceCid, lastProven, nextProofDue). */
  detail?: Record<string, string | number | boolean>
  /** Why the last check failed, for a lost or pending copy. */
  error?: string
}

export interface CopyCount {
  /** Distinct holders off this disk with a verified copy checked within the freshness window. */
  verified: number
  /** Distinct holders off this disk known only by announcement (or verified too long ago). */
  announced: number
  /** Holders on this disk (never counted). */
  local: number
  /** Verified copies by kind. */
  byKind: Partial<Record<CopyKind, number>>
  /** Oldest check among the verified holders (epoch ms), undefined when none. */
  oldestCheck?: number
}

/**
 * Counts copies the way promise 1 asks: one per holder, off this disk, verified, and checked within
 * `freshMs` of `now` when a window is given. A holder reported by several records (a tree pin and a
 * file pin on one node) counts once, by its best record.
 */
export function countCopies(copies: CopyRecord[], opts: { now?: number; freshMs?: number } = {}): CopyCount {
  const now = opts.now ?? Date.now()
  const best = new Map<string, CopyRecord>()
  const rank = (c: CopyRecord): number => {
    if (c.status === 'verified' && (opts.freshMs === undefined || now - c.checkedAt <= opts.freshMs)) return 3
    if (c.status === 'verified' || c.status === 'announced') return 2
    return c.status === 'pending' ? 1 : 0
  }
  for (const c of copies) {
    const b = best.get(c.holder)
    if (!b || rank(c) > rank(b) || (rank(c) === rank(b) && c.checkedAt > b.checkedAt)) best.set(c.holder, c)
  }
  const out: CopyCount = { verified: 0, announced: 0, local: 0, byKind: {} }
  for (const c of best.values()) {
    if (c.local) {
      out.local++
      continue
    }
    const r = rank(c)
    if (r === 3) {
      out.verified++
      out.byKind[c.kind] = (out.byKind[c.kind] ?? 0) + 1
      if (out.oldestCheck === undefined || c.checkedAt < out.oldestCheck) out.oldestCheck = c.checkedAt
    } else if (r === 2) out.announced++
  }
  return out
}

function copiesLevel(db: Database) {
  return (indexLevel(db) as unknown as Database).sublevel<string, CopyRecord>('copies', {
    valueEncoding: 'json',
  })
}

function treeCopiesLevel(db: Database) {
  return (indexLevel(db) as unknown as Database).sublevel<string, CopyRecord>('treecopies', {
    valueEncoding: 'json',
  })
}

/** The copies part of the index: the one place copies are written and read. */
export class CopyStore {
  readonly #copies
  readonly #trees

  constructor(db: Database) {
    this.#copies = copiesLevel(db)
    this.#trees = treeCopiesLevel(db)
  }

  /** Records (or replaces) one holder's copy. Tree copies (scope tree) need `mirror` and `scan`. */
  async put(copy: CopyRecord): Promise<void> {
    if (copy.scope === 'tree') {
      if (copy.mirror === undefined || copy.scan === undefined)
        throw new TypeError('a tree copy needs its mirror and scan')
      await this.#trees.put(`${copy.mirror}${SEP}${copy.holder}`, copy)
    } else await this.#copies.put(`${copy.cid}${SEP}${copy.holder}`, copy)
  }

  async remove(copy: Pick<CopyRecord, 'cid' | 'holder' | 'scope' | 'mirror'>): Promise<void> {
    if (copy.scope === 'tree') await this.#trees.del(`${copy.mirror}${SEP}${copy.holder}`)
    else await this.#copies.del(`${copy.cid}${SEP}${copy.holder}`)
  }

  /** Entity copies of `cid`, one per holder. */
  async of(cid: string): Promise<CopyRecord[]> {
    return readValues(this.#copies as unknown as Room<CopyRecord>, { gte: `${cid}${SEP}`, lt: `${cid}\x01` })
  }

  /** Tree copies of `mirror`, one per holder. */
  async trees(mirror: string): Promise<CopyRecord[]> {
    return readValues(this.#trees as unknown as Room<CopyRecord>, {
      gte: `${mirror}${SEP}`,
      lt: `${mirror}\x01`,
    })
  }

  /**
   * Copies of a path's content: entity copies of its CID, and the mirror's tree copies whose scan is at
   * or after the scan that wrote the record (`recordScan`); see the file comment.
   */
  async ofPath(mirror: string, cid: string, recordScan: number, trees?: CopyRecord[]): Promise<CopyRecord[]> {
    const own = await this.of(cid)
    const t = trees ?? (await this.trees(mirror))
    for (const c of t) if (c.scan !== undefined && c.scan >= recordScan) own.push({ ...c, cid: c.cid })
    return own
  }
}
