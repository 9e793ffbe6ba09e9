/**
 * The IPFS node interface between real Kubo daemons in a private swarm on 127.0.0.1: peer IDs and
 * connect, announcing and finding providers, and a second node pinning what the first references in
 * place (fetched over bitswap). A node without the swarm key cannot join.
 */
import { randomBytes } from 'node:crypto'
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { cidOfFile } from '../src/cid/index.ts'
import { IpfsCommandError, KuboNode, type PeerInfo } from '../src/ipfs/index.ts'
import { disposeAll, Kubo } from './helpers/kubo.ts'

const MiB = 1024 * 1024

let dir: string
let kubos: Kubo[]
let a: KuboNode
let b: KuboNode

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'cidmirror-ipfs-swarm-'))
  mkdirSync(join(dir, 'mirror'))
  // Not connected yet: the first test connects them through the interface.
  kubos = await Kubo.swarm(2, { parent: dir, filestore: true, connect: false })
  a = new KuboNode({ api: kubos[0]!.api, local: true })
  b = new KuboNode({ api: kubos[1]!.api })
})

afterAll(async () => {
  await Promise.allSettled([a?.close(), b?.close()])
  await disposeAll(kubos ?? [])
  rmSync(dir, { recursive: true, force: true })
})

/** Poll `fn` until it returns a value, or fail after `ms` (a busy machine is slow, never wrong). */
async function eventually<T>(fn: () => Promise<T | undefined>, ms: number, what: string): Promise<T> {
  const deadline = Date.now() + ms
  for (;;) {
    const v = await fn()
    if (v !== undefined) return v
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 50))
  }
}

async function swarmPeers(k: Kubo): Promise<string[]> {
  const out = JSON.parse(await k.ok(['swarm', 'peers', '--enc=json'])) as { Peers: { Peer: string }[] | null }
  return (out.Peers ?? []).map((p) => p.Peer)
}

describe('a private swarm of two Kubo daemons', () => {
  it('id gives the peer ID and loopback addresses; connect dials a peer', async () => {
    const [ia, ib] = [await a.id(), await b.id()]
    expect(ia.peerId).not.toBe(ib.peerId)
    expect(
      ia.addresses.some((x) => x.startsWith('/ip4/127.0.0.1/tcp/') && x.endsWith(`/p2p/${ia.peerId}`)),
    ).toBe(true)
    expect(await swarmPeers(kubos[1]!)).not.toContain(ia.peerId)
    await b.connect(ia.addresses.find((x) => x.startsWith('/ip4/127.0.0.1/tcp/'))!)
    expect(await swarmPeers(kubos[1]!)).toContain(ia.peerId)
  })

  it('finds the node that provides a file, and a second node pins it from there', async () => {
    const bytes = randomBytes(3 * MiB + 17)
    const path = join(dir, 'mirror', 'pkg.deb')
    writeFileSync(path, bytes)
    const cid = await a.referenceFile(path, { expect: (await cidOfFile(path)).cid.toString() })
    await a.provide([cid])
    const { peerId } = await a.id()
    const found = await eventually(
      async () => {
        const providers: PeerInfo[] = []
        for await (const p of b.findProviders(cid, { limit: 5, signal: AbortSignal.timeout(10_000) }))
          providers.push(p)
        return providers.find((p) => p.peerId === peerId)
      },
      30_000,
      'a provider record',
    )
    expect(found.peerId).toBe(peerId)

    expect(await b.has(cid)).toBe(false)
    await b.pin(cid)
    expect(await b.pinned(cid)).toBe('recursive')
    expect(await b.has(cid)).toBe(true)
    // b holds its own copy now: offline, from its blockstore, verified.
    const root = await b.getBlock(cid, { offline: true })
    expect(root.length).toBeGreaterThan(0)
    expect((await kubos[1]!.cat(cid)).equals(bytes)).toBe(true)
  })

  it("provide fails with the node's reason when the node has no peers", async () => {
    const lone = await Kubo.create({ parent: dir, filestore: true })
    try {
      await lone.start({ online: true })
      const node = new KuboNode({ api: lone.api })
      try {
        const path = join(dir, 'mirror', 'lone.txt')
        writeFileSync(path, 'lone')
        const cid = await node.referenceFile(path)
        const err = await node.provide([cid]).catch((e: unknown) => e)
        expect(err).toBeInstanceOf(IpfsCommandError)
        expect((err as Error).message).toMatch(/no connected peers/)
      } finally {
        await node.close()
      }
    } finally {
      await lone.dispose()
    }
  })

  it('a node without the swarm key cannot connect', async () => {
    const outsider = await Kubo.create({ swarmKey: randomBytes(32).toString('hex') })
    try {
      await outsider.start({ online: true })
      const node = new KuboNode({ api: outsider.api })
      try {
        const target = (await a.id()).addresses.find((x) => x.startsWith('/ip4/127.0.0.1/tcp/'))!
        const err = await node
          .connect(target, { signal: AbortSignal.timeout(20_000) })
          .catch((e: unknown) => e)
        expect(err).toBeInstanceOf(IpfsCommandError)
        // The private-network handshake fails; the message stays on one line.
        expect((err as Error).message).toMatch(/failed to negotiate security protocol/)
        expect((err as Error).message).not.toContain('\n')
      } finally {
        await node.close()
      }
    } finally {
      await outsider.dispose()
    }
  })
})
