/**
 * Promise 6 for Filecoin: kill -9 between a provider's commit of a piece and our record of it. The
 * replicator runs in a child process with the real `@filoz/synapse-sdk`; THE CHAIN AND THE STORAGE
 * PROVIDERS ARE FAKES (test/helpers/fake-foc.ts, served to the child over loopback HTTP by
 * test/helpers/foc-relay.ts, so they outlive the child). The fake answers every request until both
 * providers have committed the piece (it is in two data sets on the fake chain), and holds the
 * SDK's confirmation polls, so the child can never record the copies; it is killed there. The
 * restarted child finds the piece on chain and uploads nothing again.
 */
import { type ChildProcess, spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { openDatabase } from '../src/db.ts'
import { CopyStore, mapBlocks, openMirrorIndex } from '../src/index/index.ts'
import { killChild } from './helpers/cli.ts'
import { FakeFoc } from './helpers/fake-foc.ts'
import { type FakeFocServer, serveFakeFoc } from './helpers/foc-relay.ts'
import { tempDir } from './jobs-helpers.ts'

const child = join(import.meta.dirname, 'helpers', 'filecoin-child.ts')
/** The SDK's wait for a commit's confirmation (a new data set, or pieces added to one). */
const CONFIRMATION = /\/pdp\/data-sets\/(created\/|\d+\/pieces\/added\/)/

function run(dbPath: string, tree: string, relay: string) {
  const p: ChildProcess = spawn(process.execPath, [child, dbPath, tree, relay], {
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let out = ''
  let err = ''
  p.stdout!.on('data', (d: Buffer) => {
    out += d.toString()
  })
  p.stderr!.on('data', (d: Buffer) => {
    err += d.toString()
  })
  const exited = new Promise<number | null>((resolve) => p.once('exit', (code) => resolve(code)))
  return { p, exited, out: () => out, err: () => err }
}

describe('filecoin store killed with SIGKILL (fake chain and providers)', () => {
  let tmp: ReturnType<typeof tempDir>
  let foc: FakeFoc
  let relay: FakeFocServer | undefined
  afterEach(async () => {
    await relay?.close()
    tmp.cleanup()
  })

  // With the providers' `/ipfs/` not serving yet (their indexing lags), the PieceAdded scan cannot
  // verify the copies as someone's; serving, it could: either way they are found as our own.
  it.each([
    ['not serving /ipfs/ yet', false],
    ['serving /ipfs/', true],
  ])(
    'between the providers commit and our record (%s): the restart finds the piece on chain, uploads it once',
    async (_, serving) => {
      tmp = tempDir('cidmirror-fc-kill-')
      const tree = join(tmp.dir, 'mirror')
      mkdirSync(join(tree, 'pool'), { recursive: true })
      writeFileSync(join(tree, 'pool/a.deb'), randomBytes(700_000))
      const dbPath = join(tmp.dir, 'db')
      const db = await openDatabase(dbPath)
      const idx = openMirrorIndex(db, 'debian', tree)
      await idx.scan()
      const cid = (await idx.get('pool/a.deb'))!.cid
      await mapBlocks(db, 'debian', tree, { since: 0 })
      await db.close()

      foc = new FakeFoc(3)
      foc.ipfsServing = serving
      let holding = true
      relay = await serveFakeFoc(foc, (url) => holding && CONFIRMATION.test(url.pathname))
      const committed = () =>
        [...foc.dataSets.values()].filter((d) => d.pieces.some((p) => p.metadata.ipfsRootCID === cid))
      const first = run(dbPath, tree, relay.url)
      // Waits on the condition itself: both commits on the fake chain, a confirmation held.
      await new Promise<void>((resolve, reject) => {
        const check = () => {
          if (committed().length === 2 && relay!.held.length > 0) resolve()
        }
        relay!.events.on('request', check)
        first.exited.then((code) =>
          reject(new Error(`the child exited (${code}) before the commits: ${first.err()}${first.out()}`)),
        )
      })
      await killChild(first.p)
      expect(first.p.signalCode).toBe('SIGKILL')
      expect(first.out()).not.toContain('filecoin piece stored')
      const [pieceCid] = [...new Set(committed().flatMap((d) => d.pieces.map((p) => p.pieceCid)))]
      expect(foc.uploadsOf(pieceCid!)).toBe(1)

      holding = false
      const second = run(dbPath, tree, relay.url)
      expect(await second.exited, second.err() + second.out()).toBe(0)
      // One upload, one pull; each provider's data set holds the piece once.
      expect(foc.uploadsOf(pieceCid!)).toBe(1)
      expect(foc.providers.reduce((a, p) => a + p.pulls, 0)).toBe(1)
      expect(second.out()).not.toContain('filecoin piece stored')
      expect(second.out()).toContain('filecoin piece found on chain')
      const sets = committed()
      expect(sets).toHaveLength(2)
      for (const d of sets) expect(d.pieces.filter((p) => p.pieceCid === pieceCid)).toHaveLength(1)
      // And the copies the restart recorded are the ones on chain, counted.
      const db2 = await openDatabase(dbPath)
      try {
        const copies = (await new CopyStore(db2).of(cid)).filter((c) => c.status === 'verified')
        expect(copies.map((c) => c.holder).sort()).toEqual(
          sets.map((d) => `filecoin:${d.providerId}/${d.id}`).sort(),
        )
        // Recorded as our own pieces (proof checked, the file's byte range kept for the fetch-back).
        for (const c of copies) {
          expect(c.how).toBe('pdp')
          expect(c.detail?.carLength).toBeGreaterThan(700_000)
        }
      } finally {
        await db2.close()
      }
    },
    120_000,
  )
})
