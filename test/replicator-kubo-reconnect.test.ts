/**
 * KuboTarget after a store that was cut off by its time limit (boxo #1163: bitswap wants can stall on
 * a connection; the replicate bench saw pins hang until a `swarm disconnect` and `connect`): the next
 * store disconnects the target from the source, then connects it again, then pins. Two real Kubo
 * daemons in a private swarm on 127.0.0.1: S, the source, and T, the target. The target's node is a
 * real KuboNode on T, seen through a recorder that notes each call in order and, after a connect,
 * whether T is connected to S (asked of T itself). Right after a disconnect S may dial T again at
 * once, so that moment is not asserted.
 */
import { randomBytes } from 'node:crypto'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { KuboNode } from '../src/ipfs/index.ts'
import { KuboTarget, type PinningNode, type ReplicationItem } from '../src/replicator/index.ts'
import { disposeAll, Kubo } from './helpers/kubo.ts'
import { waitFor } from './jobs-helpers.ts'

let dir: string
let kubos: Kubo[]
let source: Kubo
let target: Kubo
let sourceId: string
const calls: string[] = []

/** Is T connected to S now (`ipfs swarm peers` on T)? */
async function connected(): Promise<boolean> {
  return (await target.ok(['swarm', 'peers'])).includes(sourceId)
}

/** The real node on T, each call recorded in `calls` in the order it was made. */
function recorded(node: KuboNode): PinningNode {
  return {
    id: (o) => node.id(o),
    pinned: (cid, o) => node.pinned(cid, o),
    pinUpdate: (a, b, o) => node.pinUpdate(a, b, o),
    async connect(addr, o) {
      await node.connect(addr, o)
      calls.push(`connect ${addr.includes(sourceId) ? 'S' : addr} (connected: ${await connected()})`)
    },
    async disconnect(peer, o) {
      await node.disconnect(peer, o)
      calls.push(`disconnect ${peer === `/p2p/${sourceId}` ? 'S' : peer}`)
    },
    async pin(cid, o) {
      calls.push(`pin ${cid}`)
      await node.pin(cid, o)
    },
  }
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'cidmirror-kubo-reconnect-'))
  kubos = await Kubo.swarm(2, { parent: dir })
  ;[source, target] = kubos as [Kubo, Kubo]
  sourceId = (await source.peer()).id
}, 120_000)

afterAll(async () => {
  await disposeAll(kubos ?? [])
  rmSync(dir, { recursive: true, force: true })
})

describe('KuboTarget.store after a store that timed out', () => {
  it('disconnects the source, connects it again, then pins; a store after a good one only connects', async () => {
    const sAddrs = (await source.peer()).addresses
    const t = new KuboTarget({
      name: 'kubo-t',
      node: recorded(new KuboNode({ api: target.api })),
      source: async () => sAddrs,
    })
    // A file nobody holds yet: T's pin waits for blocks the source does not have.
    const bytes = randomBytes(300_000)
    const cid = (await source.ok(['add', '-Q', '--cid-version=1', '--only-hash'], { input: bytes })).trim()
    const item: ReplicationItem = { key: `cid:${cid}`, scope: 'entity', cid }

    const cut = new AbortController()
    const first = t.store(item, { signal: cut.signal })
    // The pin is under way (T wants the root): then its time limit runs out.
    await waitFor(
      async () => (await target.ok(['bitswap', 'wantlist'])).includes(cid),
      'T to want the file',
      60_000,
    )
    cut.abort(new Error('timed out'))
    await expect(first).rejects.toThrow()
    expect(t.reconnects).toBe(0)

    // The source gets the file; the retried store starts on a new connection.
    expect((await source.ok(['add', '-Q', '--cid-version=1'], { input: bytes })).trim()).toBe(cid)
    calls.length = 0
    const copies = await t.store(item, { signal: AbortSignal.timeout(120_000) })
    expect(copies).toEqual([expect.objectContaining({ cid, how: 'pinned', status: 'verified' })])
    const connects = sAddrs.map(() => expect.stringMatching(/^connect S \(connected: true\)$/))
    expect(calls).toEqual(['disconnect S', ...connects, `pin ${cid}`])
    expect(t.reconnects).toBe(1)

    // A store that follows one that succeeded does not disconnect.
    const other = randomBytes(1000)
    const cid2 = (await source.ok(['add', '-Q', '--cid-version=1'], { input: other })).trim()
    calls.length = 0
    await t.store(
      { key: `cid:${cid2}`, scope: 'entity', cid: cid2 },
      { signal: AbortSignal.timeout(120_000) },
    )
    expect(calls).toEqual([...connects, `pin ${cid2}`])
    expect(t.reconnects).toBe(1)
  })

  it('KuboNode.disconnect of a peer it has no connection to is no error', async () => {
    // A peer id that was never online: a repo made and not started.
    const never = await Kubo.create({ parent: dir })
    kubos.push(never)
    const id = (await never.ok(['config', 'Identity.PeerID'])).trim()
    const node = new KuboNode({ api: target.api })
    await expect(node.disconnect(`/p2p/${id}`)).resolves.toBeUndefined()
    // And one that is connected: the call closes it (S may dial again later; not asserted).
    await expect(node.disconnect(`/p2p/${sourceId}`)).resolves.toBeUndefined()
  })
})
