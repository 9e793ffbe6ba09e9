/**
 * A two-peer IPFS Cluster (v1.1.6, real `ipfs-cluster-service`) over two test Kubo daemons on
 * loopback: a file referenced in place on the first Kubo, pinned through the REST API with a
 * replication factor of 2, reaches `pinned` on both peers (the second Kubo fetches it over bitswap),
 * and each peer's status is read per peer, through the REST API and `ipfs-cluster-ctl`.
 */
import { randomBytes } from 'node:crypto'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { KuboNode } from '../src/ipfs/index.ts'
import { Cluster } from './helpers/cluster.ts'
import { disposeAll, Kubo } from './helpers/kubo.ts'

interface PeerStatus {
  peername: string
  ipfs_peer_id: string
  status: string
  error: string
}
interface GlobalPinInfo {
  cid: string
  name: string
  allocations: string[]
  peer_map: Record<string, PeerStatus>
}

let dir: string
let kubos: Kubo[]
let cluster: Cluster

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'cidmirror-ipfs-cluster-'))
  kubos = await Kubo.swarm(2, { parent: dir, filestore: true })
  cluster = await Cluster.start(kubos, { parent: dir })
}, 180_000)

afterAll(async () => {
  await cluster?.dispose()
  await disposeAll(kubos ?? [])
  rmSync(dir, { recursive: true, force: true })
})

/** Poll until `fn` gives a value, or fail after `ms`. */
async function eventually<T>(fn: () => Promise<T | undefined>, ms: number, what: () => string): Promise<T> {
  const deadline = Date.now() + ms
  for (;;) {
    const v = await fn()
    if (v !== undefined) return v
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what()}`)
    await new Promise((r) => setTimeout(r, 50))
  }
}

describe('IPFS Cluster over two Kubo daemons', () => {
  it('lists both peers, each in front of its own Kubo', async () => {
    const peers = await cluster.rest<{ id: string; ipfs: { id: string } }[]>('GET', '/peers')
    expect(new Set(peers.map((p) => p.id))).toEqual(new Set(cluster.peers.map((p) => p.peerId)))
    const kuboIds = await Promise.all(kubos.map(async (k) => (await k.peer()).id))
    expect(new Set(peers.map((p) => p.ipfs.id))).toEqual(new Set(kuboIds))
  })

  it('pins a CID with replication factor 2: pinned on both peers, read per peer', async () => {
    const local = new KuboNode({ api: kubos[0]!.api, local: true })
    let cid: string
    try {
      const path = join(dir, 'pool-file.deb')
      writeFileSync(path, randomBytes(2 * 1024 * 1024 + 99))
      cid = await local.referenceFile(path)
    } finally {
      await local.close()
    }
    const pin = await cluster.rest<{ cid: string; allocations: string[] }>(
      'POST',
      `/pins/${cid}?replication-min=2&replication-max=2&name=cidmirror-smoke`,
    )
    expect(pin.cid).toBe(cid)
    expect(new Set(pin.allocations)).toEqual(new Set(cluster.peers.map((p) => p.peerId)))

    let last: GlobalPinInfo | undefined
    const status = await eventually(
      async () => {
        last = await cluster.rest<GlobalPinInfo>('GET', `/pins/${cid}`, 1)
        const states = Object.values(last.peer_map).map((s) => s.status)
        return states.length === 2 && states.every((s) => s === 'pinned') ? last : undefined
      },
      90_000,
      () => `both peers pinned: ${JSON.stringify(last?.peer_map)}`,
    )
    expect(status.name).toBe('cidmirror-smoke')
    expect(Object.keys(status.peer_map).sort()).toEqual(cluster.peers.map((p) => p.peerId).sort())

    // Each Kubo holds its own recursive pin: the second one fetched the file from the first.
    for (const k of kubos) {
      const node = new KuboNode({ api: k.api })
      try {
        expect(await node.pinned(cid)).toBe('recursive')
        expect(await node.has(cid)).toBe(true)
      } finally {
        await node.close()
      }
    }
    // ipfs-cluster-ctl reads the same per-peer status.
    const ctl = await cluster.ctl(['status', cid])
    expect(ctl.match(/PINNED/g)).toHaveLength(2)
  })
})
