/**
 * `[filecoin]` through the daemon's replication wiring: the key file, the spending cap, and the key
 * never in a log line. THE CHAIN AND THE STORAGE PROVIDERS ARE FAKES (test/helpers/fake-foc.ts:
 * `@filoz/synapse-core/mocks` over msw); the SDK is the real `@filoz/synapse-sdk`.
 */
import { randomBytes } from 'node:crypto'
import { chmodSync, mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { Writable } from 'node:stream'
import pino from 'pino'
import { afterEach, describe, expect, it } from 'vitest'
import { formatFile } from '../src/cli/audit-format.ts'
import { filecoinQuote, filecoinStatus } from '../src/cli/commands/filecoin.ts'
import { metricsRegistry, readReplicationConfig, startReplication } from '../src/daemon/index.ts'
import { openDatabase } from '../src/db.ts'
import { openMirrorIndex } from '../src/index/index.ts'
import { type AuditFile, auditMirror } from '../src/replicator/index.ts'
import { loadConfig } from '../src/sync/index.ts'
import { CLIENT_KEY, FakeFoc } from './helpers/fake-foc.ts'
import { tempDir, writeToml } from './jobs-helpers.ts'

const MiB = 1024 * 1024
let tmp: ReturnType<typeof tempDir> | undefined
let foc: FakeFoc | undefined
afterEach(() => {
  foc?.stop()
  foc = undefined
  tmp?.cleanup()
})

function capture(): { log: pino.Logger; text: () => string } {
  const lines: string[] = []
  const sink = new Writable({
    write(chunk, _enc, cb) {
      lines.push(String(chunk))
      cb()
    },
  })
  return { log: pino({ level: 'debug' }, sink), text: () => lines.join('') }
}

async function setup(filecoin: string, keyMode = 0o600) {
  tmp = tempDir('cidmirror-fcd-')
  const tree = join(tmp.dir, 'mirrors', 'deb')
  mkdirSync(join(tree, 'pool'), { recursive: true })
  writeFileSync(join(tree, 'pool', 'a.deb'), randomBytes(1_500_000))
  writeFileSync(join(tree, 'pool', 'b.deb'), randomBytes(4000))
  writeFileSync(join(tree, 'Release'), 'Suite: stable\n')
  const keyFile = join(tmp.dir, 'wallet.key')
  writeFileSync(keyFile, `${CLIENT_KEY}\n`)
  chmodSync(keyFile, keyMode)
  const file = writeToml({
    dir: tmp.dir,
    mirrors: `[[mirrors]]
name = "deb"
upstream = "rsync://127.0.0.1:1/m/"

[filecoin]
network = "calibration"
key_file = "wallet.key"
copies = 2
small_file = "1M"
scan_every = "0s"
${filecoin}

[replication]
n = 2
[[replication.targets]]
name = "foc"
type = "filecoin"
`,
  })
  const config = await loadConfig(file)
  const repl = readReplicationConfig(config)
  const db = await openDatabase(config.database.path)
  await openMirrorIndex(db, 'deb', tree).scan()
  foc = new FakeFoc(3)
  foc.start()
  return { repl, db, keyFile, file, tree }
}

describe('[filecoin] in the daemon (fake chain and providers)', () => {
  it('stores every file of a mirror to n = 2; the key is in no log line, metric or copy record', async () => {
    const { repl, db, tree } = await setup('')
    expect(repl.filecoin).toMatchObject({ network: 'calibration', copies: 2, smallFile: MiB })
    const { log, text } = capture()
    const svc = await startReplication({
      db,
      log,
      ipfs: undefined,
      replication: repl.replication!,
      filecoin: repl.filecoin,
      mirrorRoots: [],
      follow: false,
    })
    try {
      await svc.catchUp()
      await svc.replicator.runOnce()
      const files = (await svc.replicator.queue.all()).filter((e) => e.item.scope === 'entity')
      expect(files).toHaveLength(3)
      for (const e of files) expect(e.state, e.reason).toBe('satisfied')
      // With the Filecoin target alone nothing stores the tree: its item asks for nothing.
      const treeItem = (await svc.replicator.queue.all()).find((e) => e.item.scope === 'tree')
      expect(treeItem?.state).toBe('satisfied')
      const metrics = await metricsRegistry(svc).metrics()
      expect(metrics).toMatch(/cidmirror_filecoin_proven_copies\{target="foc"\} 4/)
      expect(metrics).toMatch(/cidmirror_filecoin_spend_usdfc\{target="foc",period="month"\} [0-9.]+/)
      const copies = JSON.stringify(await Promise.all(files.map((e) => svc.replicator.copies.of(e.item.cid))))
      const hex = CLIENT_KEY.slice(2)
      for (const where of [text(), metrics, copies]) {
        expect(where.toLowerCase()).not.toContain(hex.toLowerCase())
        expect(where).not.toContain(hex.slice(0, 16))
      }
      expect(text()).toContain('filecoin piece stored')
      // The audit shows each Filecoin copy's provider, data set, piece, last proof and next proof due.
      const audited: AuditFile[] = []
      await auditMirror(db, openMirrorIndex(db, 'deb', tree), { n: 2 }, { onFile: (f) => audited.push(f) })
      expect(audited).toHaveLength(3)
      for (const f of audited) {
        expect(f.verdict).toBe('ok')
        const out = formatFile({ type: 'file', ...f })
        expect(out).toMatch(/filecoin:\d\/\d+ {2}filecoin\/pdp {2}verified {2}entity/)
        expect(out).toMatch(
          /provider \d {2}data set \d+ {2}piece \d+ bafkzcib\w+ {2}last proof \d{4}-\d\d-\d\dT[\d:]+Z {2}next proof due \d{4}-/,
        )
        expect(out).not.toContain(hex.slice(0, 16))
      }
    } finally {
      await svc.close()
      await db.close()
    }
  }, 60_000)

  it('a key file readable by others is refused, naming the file and not its content', async () => {
    const { repl, db, keyFile } = await setup('', 0o644)
    const { log, text } = capture()
    const err = await startReplication({
      db,
      log,
      ipfs: undefined,
      replication: repl.replication!,
      filecoin: repl.filecoin,
      mirrorRoots: [],
      follow: false,
    }).catch((e: unknown) => e as Error & { code?: string })
    await db.close()
    expect(err).toBeInstanceOf(Error)
    expect((err as { code?: string }).code).toBe('CIDMIRROR_ERR_FILECOIN_KEY_FILE')
    expect((err as Error).message).toContain(keyFile)
    expect((err as Error).message).toContain('readable by others (mode 644)')
    expect((err as Error).message).not.toContain(CLIENT_KEY.slice(2, 18))
    expect(text()).not.toContain(CLIENT_KEY.slice(2, 18))
  })

  it('the spending cap stops storing before anything is sent, and says so in the item state', async () => {
    const { repl, db, tree } = await setup('cap_month = "0.01"')
    const { log, text } = capture()
    const svc = await startReplication({
      db,
      log,
      ipfs: undefined,
      replication: repl.replication!,
      filecoin: repl.filecoin,
      mirrorRoots: [],
      follow: false,
    })
    try {
      await svc.catchUp()
      await svc.replicator.runOnce()
      const files = (await svc.replicator.queue.all()).filter((e) => e.item.scope === 'entity')
      for (const e of files) {
        expect(e.state).toBe('failing')
        expect(e.reason).toMatch(/filecoin spending cap: .* filecoin\.cap_month = 0\.01 USDFC/)
      }
      expect(foc!.providers.reduce((a, p) => a + p.uploads, 0)).toBe(0)
      expect(text()).toContain('filecoin spending cap')
      const audited: AuditFile[] = []
      await auditMirror(db, openMirrorIndex(db, 'deb', tree), { n: 2 }, { onFile: (f) => audited.push(f) })
      for (const f of audited) {
        expect(f.queue?.state).toBe('failing')
        expect(formatFile({ type: 'file', ...f })).toMatch(/queue: failing: .*filecoin spending cap/)
      }
      const metrics = await metricsRegistry(svc).metrics()
      expect(metrics).toMatch(/cidmirror_filecoin_spend_cap_usdfc\{target="foc",period="month"\} 0\.01/)
    } finally {
      await svc.close()
      await db.close()
    }
  }, 60_000)

  it('cidmirror filecoin quote and status: the cost of a mirror against the cap; the wallet and its data sets, never the key', async () => {
    const { repl, db, file } = await setup('cap_month = "0.01"')
    await db.close()
    let out = ''
    await filecoinQuote({ config: file }, (t) => {
      out += t
    })
    expect(out).toContain('network calibration, wallet 0x2e988A386a799F506693793c6A5AF6B54dfAaBfB, 2 copies')
    // a.deb alone (above small_file = 1M), Release and b.deb together.
    expect(out).toMatch(
      /^deb: 3 files, 1504014 bytes in 2 pieces: [0-9.]+ USDFC\/month for 2 copies; deposit still needed: [0-9.]+ USDFC$/m,
    )
    expect(out).toContain('cap_month 0.01 USDFC: the quote passes it')
    await expect(filecoinQuote({ config: file, mirror: 'nope' }, () => {})).rejects.toThrow(
      /no mirror named nope \(known: deb\)/,
    )
    // Store the mirror (without a cap), then the status lists the wallet and the data sets made.
    const db2 = await openDatabase(join(tmp!.dir, 'db'))
    const svc = await startReplication({
      db: db2,
      log: pino({ level: 'silent' }),
      ipfs: undefined,
      replication: repl.replication!,
      filecoin: { ...repl.filecoin!, capMonth: undefined },
      mirrorRoots: [],
      follow: false,
    })
    await svc.catchUp()
    await svc.replicator.runOnce()
    await svc.close()
    await db2.close()
    let status = ''
    await filecoinStatus({ config: file }, (t) => {
      status += t
    })
    expect(status).toContain('wallet 0x2e988A386a799F506693793c6A5AF6B54dfAaBfB')
    expect(status).toMatch(/^balance [0-9.]+ FIL, [0-9.]+ USDFC$/m)
    expect(status).toMatch(/^deposit [0-9.]+ USDFC in Filecoin Pay, [0-9.]+ USDFC available$/m)
    expect(status).toContain('data sets: 2')
    expect(status).toMatch(/^ {2}\d+: provider \d, live, 2 pieces, source cidmirror, IPFS indexing$/m)
    for (const t of [out, status]) expect(t).not.toContain(CLIENT_KEY.slice(2, 18))
  }, 60_000)
})
