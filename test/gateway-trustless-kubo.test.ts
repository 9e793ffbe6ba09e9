/**
 * Blocks that are not the mirror's come from the local IPFS node: a real Kubo on loopback behind the
 * trustless plugin, asked offline, every block it gives checked again by the test as a client would.
 */
import { execFile } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import Fastify, { type FastifyInstance } from 'fastify'
import { CID } from 'multiformats/cid'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type Database, openDatabase } from '../src/db.ts'
import { trustlessGateway } from '../src/gateway/index.ts'
import { BlockReader } from '../src/index/index.ts'
import { KuboNode } from '../src/ipfs/index.ts'
import { Kubo } from './helpers/kubo.ts'
import { fileFromCar, get, hashesTo, readCar, resolveInCar } from './helpers/trustless.ts'

const run = promisify(execFile)
let work: string
let kubo: Kubo
let node: KuboNode
let db: Database
let app: FastifyInstance
let base: string
const data = randomBytes(2 * 1024 * 1024 + 100)

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), 'cidmirror-trustless-kubo-'))
  kubo = await Kubo.create({ parent: work })
  await kubo.start()
  node = new KuboNode({ api: kubo.api, local: true })
  db = await openDatabase(join(work, 'db'))
  app = Fastify()
  await app.register(trustlessGateway, { blocks: new BlockReader(db), node })
  base = await app.listen({ host: '127.0.0.1', port: 0 })
}, 60_000)

afterAll(async () => {
  await app?.close()
  await db?.close()
  await node?.close()
  await kubo?.dispose()
  rmSync(work, { recursive: true, force: true })
})

describe('relayed from the local Kubo', () => {
  it('gives a raw block the node holds, hashing to its CID', async () => {
    const block = randomBytes(4096)
    const cid = CID.parse((await kubo.ok(['block', 'put', '--cid-codec', 'raw'], { input: block })).trim())
    const r = await get(base, `/ipfs/${cid}?format=raw`)
    expect(r.status).toBe(200)
    expect(await hashesTo(cid, r.body)).toBe(true)
    expect(r.body.equals(block)).toBe(true)
  })

  it('streams a CAR of a tree only the node holds: path proven, file rebuilt from the CAR', async () => {
    const dir = join(work, 'added')
    mkdirSync(dir)
    writeFileSync(join(dir, 'f.bin'), data)
    writeFileSync(join(dir, 'a.txt'), 'a\n')
    const root = CID.parse((await kubo.ok(['add', '-r', '--cid-version=1', '-Q', dir])).trim())
    const r = await get(base, `/ipfs/${root}/f.bin`, {
      accept: 'application/vnd.ipld.car; version=1; order=dfs',
    })
    expect(r.status).toBe(200)
    const car = await readCar(r.body)
    expect(car.roots).toEqual([root.toString()])
    const file = resolveInCar(car, root, ['f.bin'])
    expect(fileFromCar(car, file).equals(data)).toBe(true)
    // Exactly Kubo's own blocks for the file: its `dag export` of the file, in a set.
    const exported = await run(kubo.bin, ['dag', 'export', file.toString()], {
      env: kubo.env,
      encoding: 'buffer',
      maxBuffer: 1 << 26,
    })
    const kubos = await readCar(exported.stdout)
    expect(new Set(car.cids.slice(1))).toEqual(new Set(kubos.cids))
  })

  it('is 404 for a block neither the mirror nor the node holds (the node is not sent to the network)', async () => {
    const absent = CID.parse('bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy')
    const r = await get(base, `/ipfs/${absent}?format=raw`)
    expect(r.status).toBe(404)
    expect(JSON.parse(r.body.toString()).code).toBe('CIDMIRROR_ERR_TRUSTLESS_NOT_HELD')
  })
})
