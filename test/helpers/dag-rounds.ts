/**
 * Run by test/cid-dag-guard.test.ts in a fresh Node process (so V8's tiering starts from nothing, under
 * whatever tier flags the test gives): builds each path of argv `rounds` times, alternating the scan's
 * build (`cidOfTree`, no block sink) and the export's (`treeBlocks`, every block sunk), the sequence
 * that showed issue 10's wrong root CIDs. Prints one JSON line: the root CIDs per path, in build order.
 */
import { cidOfTree, treeBlocks } from '../../src/cid/index.ts'

const [rounds, ...paths] = process.argv.slice(2)
const out: Record<string, string[]> = {}
for (const p of paths) out[p] = []
for (let r = 0; r < Number(rounds); r++) {
  for (const p of paths) {
    out[p]!.push((await cidOfTree(p, { hidden: true })).cid.toString())
    const gen = treeBlocks(p, { hidden: true })
    let last: IteratorResult<unknown, { cid: { toString(): string } }>
    do last = await gen.next()
    while (!last.done)
    out[p]!.push(last.value.cid.toString())
  }
}
process.stdout.write(`${JSON.stringify(out)}\n`)
