import { lstatSync } from 'node:fs'
import { basename, normalize, resolve } from 'node:path'
import type { Command } from 'commander'
import type { EntryKind, HashPool, NodeCid } from '../../cid/index.ts'

interface Added {
  parts: Buffer[]
  name: string
  kind: EntryKind
  cid: string
}

function compareParts(a: Buffer[], b: Buffer[], parentsLast: boolean): number {
  const n = Math.min(a.length, b.length)
  for (let i = 0; i < n; i++) {
    const c = Buffer.compare(a[i]!, b[i]!)
    if (c !== 0) return c
  }
  // One is an ancestor of the other: in post-order the child comes first.
  return parentsLast ? b.length - a.length : a.length - b.length
}

/** The name Kubo prints for a path argument: its last component (`.` names the directory itself). */
function argName(path: string): string {
  const base = basename(normalize(path))
  return base === '.' || base === '' ? basename(resolve(path)) : base
}

/**
 * `ipfs add -r --only-hash` output order: per argument (arguments sorted by name), its files and
 * symlinks depth-first in name order, then its directories in post-order.
 */
function kuboOrder(added: Added[]): Added[] {
  const leaves = added.filter((a) => a.kind !== 'dir').sort((a, b) => compareParts(a.parts, b.parts, false))
  const dirs = added.filter((a) => a.kind === 'dir').sort((a, b) => compareParts(a.parts, b.parts, true))
  return [...leaves, ...dirs]
}

export function register(program: Command): void {
  program
    .command('cid')
    .description('print UnixFS CIDs as `ipfs add -r --only-hash` would (Kubo profile unixfs-v1-2025)')
    .argument('<path...>', 'files or directories')
    .option('-H, --hidden', 'include files and directories whose name starts with a dot')
    .option('-Q, --quieter', 'print only the final root CID')
    .option('-q, --quiet', 'print only the CIDs')
    .option('-j, --threads <n>', 'hashing threads (default: one per core)', (v) => Number.parseInt(v, 10))
    .action(
      async (
        paths: string[],
        o: { hidden?: boolean; quieter?: boolean; quiet?: boolean; threads?: number },
      ) => {
        // Loaded here, not at the top: every command's start-up pays for what the registry imports.
        const { cidOfTree, fsError, HashPool } = await import('../../cid/index.ts')
        // As Kubo: every argument must exist before anything is printed.
        for (const p of paths) {
          try {
            lstatSync(p)
          } catch (err) {
            throw fsError(p, err)
          }
        }
        const args = paths
          .map((p) => ({ path: p, name: argName(p) }))
          .sort((a, b) => Buffer.compare(Buffer.from(a.name), Buffer.from(b.name)))
        let pool: HashPool | undefined
        const out = process.stdout
        let last: NodeCid | undefined
        try {
          // Started only once a tree (or a file) is big enough to be worth the workers' start-up.
          const sharedPool = (): HashPool => {
            pool ??= new HashPool(o.threads ? { threads: o.threads } : undefined)
            return pool
          }
          for (const arg of args) {
            const added: Added[] = []
            last = await cidOfTree(arg.path, {
              hidden: o.hidden ?? false,
              pool: sharedPool,
              onEntry: o.quieter
                ? undefined
                : (rel, kind, node) => {
                    const name = rel === '' ? arg.name : `${arg.name}/${rel}`
                    added.push({
                      parts: name.split('/').map((s) => Buffer.from(s)),
                      name,
                      kind,
                      cid: node.cid.toString(),
                    })
                  },
            })
            if (!o.quieter) {
              const lines = kuboOrder(added).map((a) =>
                o.quiet ? `${a.cid}\n` : `added ${a.cid} ${a.name}\n`,
              )
              for (let i = 0; i < lines.length; i += 4096) out.write(lines.slice(i, i + 4096).join(''))
            }
          }
        } finally {
          await pool?.destroy()
        }
        if (o.quieter && last) out.write(`${last.cid.toString()}\n`)
      },
    )
}
