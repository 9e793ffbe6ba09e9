/**
 * `cidmirror daemon` (in process) stores on Filecoin a file deleted upstream before its first upload
 * went through: a real rsync upstream, real Kubo daemons (A: the mirror's node, filestore; B: a node
 * holding the file, the gateway's `fetch_from`), `[gateway]` with its fetch-back, and a `[filecoin]`
 * target. The real `@filoz/synapse-sdk`; THE CHAIN AND THE STORAGE PROVIDERS ARE FAKES
 * (test/helpers/fake-foc.ts, msw in this process), which refuse uploads until the file is gone.
 */
import { randomBytes } from 'node:crypto'
import { chmodSync, existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { CarBlockIterator } from '@ipld/car'
import * as dagPb from '@ipld/dag-pb'
import { CID } from 'multiformats/cid'
import pino from 'pino'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type Daemon, startDaemon } from '../src/daemon/index.ts'
import { openMirrorIndex } from '../src/index/index.ts'
import { FilecoinTarget } from '../src/replicator/index.ts'
import { loadConfig } from '../src/sync/config/index.ts'
import { CLIENT_KEY, FakeFoc } from './helpers/fake-foc.ts'
import { disposeAll, Kubo } from './helpers/kubo.ts'
import { type Rsyncd, startRsyncd } from './helpers/rsyncd.ts'
import { freePort, tempDir, waitFor, writeToml } from './jobs-helpers.ts'

const goneBytes = randomBytes(2 * 1024 * 1024 + 11)
let tmp: ReturnType<typeof tempDir>
let upstream: Rsyncd
let kubos: Kubo[]
let foc: FakeFoc
let daemon: Daemon | undefined
let config: string

beforeAll(async () => {
  tmp = tempDir('cidmirror-fc-daemon-fb-')
  upstream = await startRsyncd()
  mkdirSync(join(upstream.root, 'pool'), { recursive: true })
  writeFileSync(join(upstream.root, 'pool/gone.deb'), goneBytes)
  writeFileSync(join(upstream.root, 'pool/keep.deb'), randomBytes(5000))
  kubos = await Kubo.swarm(2, { parent: tmp.dir, filestore: true })
  writeFileSync(join(tmp.dir, 'wallet.key'), `${CLIENT_KEY}\n`)
  chmodSync(join(tmp.dir, 'wallet.key'), 0o600)
  config = writeToml({
    dir: tmp.dir,
    managerPort: await freePort(),
    interval: '6h',
    mirrors: `[[mirrors]]
name = "deb"
provider = "rsync"
upstream = "${upstream.url}"

[ipfs]
api = "${kubos[0]!.api}"
provide = "none"

[filecoin]
network = "calibration"
key_file = "wallet.key"
copies = 2
small_file = "1M"
scan_every = "0s"

[replication]
n = 2
recheck = "1h"
retry_backoff = "1s"
retry_backoff_max = "2s"

[[replication.targets]]
name = "foc"
type = "filecoin"

[gateway]
listen_addr = "127.0.0.1"
listen_port = ${await freePort()}
fetch_from = ["${kubos[1]!.gateway}"]
`,
  })
  foc = new FakeFoc(3)
  foc.refuseUploads = true
  foc.start()
}, 180_000)

afterAll(async () => {
  await daemon?.close()
  foc?.stop()
  await disposeAll(kubos ?? [])
  await upstream?.stop()
  tmp?.cleanup()
})

describe('[filecoin] and the gateway fetch-back in one daemon (fake chain and providers)', () => {
  it('a file deleted upstream before its upload went through is stored from the fetch-back', async () => {
    // B holds the file (a full copy, the same CID as the index).
    const gone = (
      await kubos[1]!.ok(['add', '-Q', '--cid-version=1', join(upstream.root, 'pool/gone.deb')])
    ).trim()
    daemon = await startDaemon({
      config: await loadConfig(config),
      manager: true,
      worker: true,
      log: pino({ level: process.env.FC_DEBUG ? 'debug' : 'silent' }),
    })
    const d = daemon
    const queue = d.replication!.replicator.queue
    const tree = join(tmp.dir, 'mirrors', 'deb')
    const idx = openMirrorIndex(d.db, 'deb', tree)
    // The first sync, and its first upload refused.
    await waitFor(
      async () => {
        const e = await queue.get(`cid:${gone}`)
        if (e?.state === 'failing' && /uploads refused|Failed to store/.test(e.reason ?? '')) return true
        throw new Error(JSON.stringify(e))
      },
      'the first upload of gone.deb refused',
      120_000,
      100,
    )
    // Upstream deletes it; the next sync records it deleted (its bytes leave the tree).
    rmSync(join(upstream.root, 'pool/gone.deb'))
    await d.worker!.command({ cmd: 'start', mirror_id: 'deb' })
    await waitFor(
      async () => (await idx.get('pool/gone.deb'))?.state === 'deleted',
      'gone.deb deleted',
      120_000,
      100,
    )
    expect(existsSync(join(tree, 'pool/gone.deb'))).toBe(false)

    foc.refuseUploads = false
    await waitFor(
      async () => {
        const e = await queue.get(`cid:${gone}`)
        if (e?.state === 'satisfied') return true
        throw new Error(JSON.stringify(e))
      },
      'gone.deb stored on Filecoin',
      120_000,
      100,
    )
    // Its piece, as the providers hold it, rebuilds the deleted file's bytes.
    const t = d.replication!.filecoin.find((x) => x instanceof FilecoinTarget)!
    const piece = (await t.records.allPieces()).find((p) => p.files.some((f) => f.cid === gone))!
    expect(piece.copies).toHaveLength(2)
    const car = foc.providers.find((p) => p.pieces.has(piece.pieceCid!))!.pieces.get(piece.pieceCid!)!
    const blocks = new Map<string, Uint8Array>()
    for await (const b of await CarBlockIterator.fromBytes(car)) blocks.set(String(b.cid), b.bytes)
    const bytesOf = (cid: CID): Buffer =>
      cid.code === 0x55
        ? Buffer.from(blocks.get(String(cid))!)
        : Buffer.concat(dagPb.decode(blocks.get(String(cid))!).Links.map((l) => bytesOf(l.Hash)))
    expect(bytesOf(CID.parse(gone)).equals(goneBytes)).toBe(true)
    expect(foc.uploadsOf(piece.pieceCid!)).toBe(1)
    // Fetched for the packer only: not back in the tree, still deleted in the index.
    expect(existsSync(join(tree, 'pool/gone.deb'))).toBe(false)
    expect((await idx.get('pool/gone.deb'))?.state).toBe('deleted')
  }, 300_000)
})
