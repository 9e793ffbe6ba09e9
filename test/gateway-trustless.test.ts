/**
 * The trustless `/ipfs/{cid}` plugin on a bare fastify on 127.0.0.1, over a mirror tree indexed and
 * block-mapped for real; every answer checked as a trustless client would: raw bodies hashed against
 * the CID, CARs parsed with @ipld/car, their blocks hashed, files rebuilt and paths resolved from the
 * CAR's blocks alone, against the index's CIDs.
 */
import { randomBytes } from 'node:crypto'
import {
  closeSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readFileSync,
  rmSync,
  writeFileSync,
  writeSync,
} from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Writable } from 'node:stream'
import { setImmediate as turn } from 'node:timers/promises'
import Fastify, { type FastifyInstance } from 'fastify'
import { CID } from 'multiformats/cid'
import { request } from 'undici'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type Database, openDatabase } from '../src/db.ts'
import { trustlessGateway } from '../src/gateway/index.ts'
import { carStream } from '../src/gateway/trustless/car.ts'
import {
  BlockReader,
  blockMapSince,
  type MirrorIndex,
  mapBlocks,
  openMirrorIndex,
} from '../src/index/index.ts'
import { fileFromCar, get, hashesTo, readCar, readToEnd, resolveInCar } from './helpers/trustless.ts'

let work: string
let tree: string
let db: Database
let app: FastifyInstance
let base: string
let index: MirrorIndex
let rootCid: CID
const big = randomBytes(2 * 1024 * 1024 + 5)
const WIDE = 2200
const wideName = (i: number): string => `${'n'.repeat(100)}-${i}.txt`

function write(rel: string, data: string | Uint8Array): void {
  const p = join(tree, rel)
  mkdirSync(join(p, '..'), { recursive: true })
  writeFileSync(p, data)
}

async function cidOf(rel: string): Promise<CID> {
  const r = await index.get(rel)
  if (!r) throw new Error(`${rel} not indexed`)
  return CID.parse(r.cid)
}

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), 'cidmirror-trustless-'))
  tree = join(work, 'tree')
  write('small.txt', 'hello\n')
  write('big/three.bin', big)
  write('big/copy.bin', big)
  write('changed/later.bin', randomBytes(3 * 1024 * 1024))
  // Enough long names that the directory's block passes 256 KiB: a HAMT.
  for (let i = 0; i < WIDE; i++) write(`wide/${wideName(i)}`, `${i}\n`)
  db = await openDatabase(join(work, 'db'))
  index = openMirrorIndex(db, 'm', tree)
  const s = await index.scan()
  rootCid = CID.parse(s.rootCid!)
  expect(await blockMapSince(db, 'm')).toBe(0)
  const map = await mapBlocks(db, 'm', tree)
  expect(map.stale).toEqual([])
  // The map says how far it got, so a follower maps only later scans' records.
  expect(await blockMapSince(db, 'm')).toBe(s.id + 1)
  app = Fastify()
  await app.register(trustlessGateway, { blocks: new BlockReader(db) })
  base = await app.listen({ host: '127.0.0.1', port: 0 })
})

afterAll(async () => {
  await app?.close()
  await db?.close()
  rmSync(work, { recursive: true, force: true })
})

describe('raw blocks', () => {
  it('gives a one-chunk file as its raw block, with the spec headers', async () => {
    const cid = await cidOf('small.txt')
    const r = await get(base, `/ipfs/${cid}?format=raw`)
    expect(r.status).toBe(200)
    expect(await hashesTo(cid, r.body)).toBe(true)
    expect(r.body.toString()).toBe('hello\n')
    expect(r.headers['content-type']).toBe('application/vnd.ipld.raw')
    expect(r.headers['content-length']).toBe('6')
    expect(r.headers['cache-control']).toBe('public, max-age=29030400, immutable')
    expect(r.headers.etag).toBe(`"${cid}.raw"`)
    expect(r.headers['x-ipfs-roots']).toBe(cid.toString())
    expect(r.headers['x-ipfs-path']).toBe(`/ipfs/${cid}`)
    expect(r.headers['x-content-type-options']).toBe('nosniff')
    expect(r.headers['content-disposition']).toBe(`attachment; filename="${cid}.bin"`)
  })

  it('negotiates raw by Accept, says where the format=raw URL is, and lets ?format win over Accept', async () => {
    const cid = await cidOf('small.txt')
    const byAccept = await get(base, `/ipfs/${cid}`, { accept: 'application/vnd.ipld.raw' })
    expect(byAccept.status).toBe(200)
    expect(byAccept.body.toString()).toBe('hello\n')
    expect(byAccept.headers['content-location']).toBe(`/ipfs/${cid}?format=raw`)
    const formatWins = await get(base, `/ipfs/${cid}?format=raw`, { accept: 'application/vnd.ipld.car' })
    expect(formatWins.headers['content-type']).toBe('application/vnd.ipld.raw')
  })

  it('gives directory nodes, file roots and leaves of multi-chunk files from the block map', async () => {
    const file = await cidOf('big/three.bin')
    for (const cid of [rootCid, await cidOf('big'), await cidOf('wide'), file]) {
      const r = await get(base, `/ipfs/${cid}?format=raw`)
      expect(r.status, cid.toString()).toBe(200)
      expect(await hashesTo(cid, r.body)).toBe(true)
    }
    const car = await readCar((await get(base, `/ipfs/${file}?format=car`)).body)
    const leaf = car.blocks.find((b) => b.cid.code === 0x55)!.cid
    const r = await get(base, `/ipfs/${leaf}?format=raw`)
    expect(r.body.length).toBe(1024 * 1024)
    expect(await hashesTo(leaf, r.body)).toBe(true)
  })

  it('answers HEAD with the headers and no body, a single Range with 206, If-None-Match with 304', async () => {
    const cid = await cidOf('small.txt')
    const head = await get(base, `/ipfs/${cid}?format=raw`, {}, 'HEAD')
    expect(head.status).toBe(200)
    expect(head.body.length).toBe(0)
    expect(head.headers['content-length']).toBe('6')
    expect(head.headers.etag).toBe(`"${cid}.raw"`)
    const part = await get(base, `/ipfs/${cid}?format=raw`, { range: 'bytes=1-3' })
    expect(part.status).toBe(206)
    expect(part.body.toString()).toBe('ell')
    expect(part.headers['content-range']).toBe('bytes 1-3/6')
    const past = await get(base, `/ipfs/${cid}?format=raw`, { range: 'bytes=10-' })
    expect(past.status).toBe(416)
    expect(past.headers['content-range']).toBe('bytes */6')
    const again = await get(base, `/ipfs/${cid}?format=raw`, { 'if-none-match': `"${cid}.raw"` })
    expect(again.status).toBe(304)
    expect(again.body.length).toBe(0)
  })

  it('answers the probe /ipfs/bafkqaaa with an empty block and a CAR rooted at it', async () => {
    const raw = await get(base, '/ipfs/bafkqaaa?format=raw')
    expect(raw.status).toBe(200)
    expect(raw.body.length).toBe(0)
    const car = await get(base, '/ipfs/bafkqaaa', { accept: 'application/vnd.ipld.car' })
    expect(car.status).toBe(200)
    const parsed = await readCar(car.body)
    expect(parsed.roots).toEqual(['bafkqaaa'])
    expect(parsed.blocks).toEqual([])
    expect((await get(base, '/ipfs/bafkqaaa?format=raw', {}, 'HEAD')).status).toBe(200)
  })
})

describe('CARs', () => {
  it('streams a multi-chunk file on a path: the path blocks, then the file, which rebuilds to its bytes', async () => {
    const r = await get(base, `/ipfs/${rootCid}/big/three.bin?format=car`)
    expect(r.status).toBe(200)
    expect(r.headers['content-type']).toBe('application/vnd.ipld.car; version=1; order=dfs; dups=n')
    expect(r.headers['accept-ranges']).toBe('none')
    expect(r.headers['content-disposition']).toBe(`attachment; filename="${rootCid}.car"`)
    expect(r.headers.etag).toMatch(/^".+\.car\.all\.[0-9a-f]{16}"$/)
    const file = await cidOf('big/three.bin')
    expect(r.headers['x-ipfs-roots']).toBe([rootCid, await cidOf('big'), file].join(','))
    const car = await readCar(r.body)
    expect(car.roots).toEqual([rootCid.toString()])
    expect(car.cids.slice(0, 3)).toEqual([rootCid, await cidOf('big'), file].map(String))
    expect(car.blocks).toHaveLength(3 + 3) // path, file root, three leaves
    expect(resolveInCar(car, rootCid, ['big', 'three.bin']).toString()).toBe(file.toString())
    expect(fileFromCar(car, file).equals(big)).toBe(true)
  })

  it('gives only the blocks an entity-bytes range needs, and only the root for a range outside the file', async () => {
    const file = await cidOf('big/three.bin')
    const full = await readCar((await get(base, `/ipfs/${file}?format=car`)).body)
    const leaves = full.cids.slice(1)
    const mid = await readCar(
      (await get(base, `/ipfs/${file}?format=car&dag-scope=entity&entity-bytes=1048576:1048580`)).body,
    )
    expect(mid.cids).toEqual([file.toString(), leaves[1]])
    const tail = await readCar((await get(base, `/ipfs/${file}?format=car&entity-bytes=-5:*`)).body)
    expect(tail.cids).toEqual([file.toString(), leaves[2]])
    const span = await readCar((await get(base, `/ipfs/${file}?format=car&entity-bytes=1048575:-3`)).body)
    expect(span.cids).toEqual([file.toString(), ...leaves])
    const outside = await readCar((await get(base, `/ipfs/${file}?format=car&entity-bytes=9999999:*`)).body)
    expect(outside.cids).toEqual([file.toString()])
    // The ETag names the range: caches keep them apart.
    const e1 = (await get(base, `/ipfs/${file}?format=car&entity-bytes=0:10`, {}, 'HEAD')).headers.etag
    const e2 = (await get(base, `/ipfs/${file}?format=car&entity-bytes=0:11`, {}, 'HEAD')).headers.etag
    expect(e1).not.toBe(e2)
  })

  it('sends duplicate blocks each time with dups=y and once with dups=n', async () => {
    const dir = await cidOf('big')
    const accept = (dups: string) => ({
      accept: `application/vnd.ipld.car; version=1; order=dfs; dups=${dups}`,
    })
    const y = await get(base, `/ipfs/${dir}`, accept('y'))
    expect(y.headers['content-type']).toBe('application/vnd.ipld.car; version=1; order=dfs; dups=y')
    const withDups = await readCar(y.body)
    // big/: copy.bin and three.bin are one file: root + 3 leaves twice under dups=y.
    expect(withDups.cids).toHaveLength(1 + 2 * 4)
    const n = await get(base, `/ipfs/${dir}`, accept('n'))
    const once = await readCar(n.body)
    expect(once.cids).toHaveLength(1 + 4)
    expect(new Set(once.cids).size).toBe(once.cids.length)
    expect(fileFromCar(once, await cidOf('big/copy.bin')).equals(big)).toBe(true)
    // ?car-dups over the Accept parameter (IPIP-523).
    const q = await get(base, `/ipfs/${dir}?format=car&car-dups=y`, accept('n'))
    expect(q.headers['content-type']).toContain('dups=y')
  })

  it('resolves a path through a HAMT directory with the shards on the way only', async () => {
    const wide = await cidOf('wide')
    const name = wideName(1234)
    const file = await cidOf(`wide/${name}`)
    const r = await get(base, `/ipfs/${rootCid}/wide/${encodeURIComponent(name)}?format=car&dag-scope=block`)
    expect(r.status).toBe(200)
    const car = await readCar(r.body)
    expect(resolveInCar(car, rootCid, ['wide', name]).toString()).toBe(file.toString())
    expect(car.cids[0]).toBe(rootCid.toString())
    expect(car.cids[1]).toBe(wide.toString())
    expect(car.cids.at(-1)).toBe(file.toString())
    // The whole HAMT is many shards; the path needs one or two.
    const entity = await readCar((await get(base, `/ipfs/${wide}?format=car&dag-scope=entity`)).body)
    expect(entity.blocks.every((b) => b.cid.code === 0x70)).toBe(true)
    expect(entity.blocks.length).toBeGreaterThan(car.blocks.length)
    expect(car.blocks.length).toBeLessThanOrEqual(2 + 3)
    // dag-scope=entity lists the directory: every name resolves from its blocks alone, no file block in it.
    for (const i of [0, 7, 1234, WIDE - 1])
      expect(resolveInCar(entity, wide, [wideName(i)]).toString()).toBe(
        (await cidOf(`wide/${wideName(i)}`)).toString(),
      )
  })

  it('streams the whole tree with dag-scope=all, every indexed file rebuilding from it', async () => {
    const car = await readCar((await get(base, `/ipfs/${rootCid}?format=car`)).body)
    expect(car.cids[0]).toBe(rootCid.toString())
    for (const rel of ['small.txt', 'big/three.bin', `wide/${wideName(42)}`]) {
      const cid = resolveInCar(car, rootCid, rel.split('/'))
      expect(cid.toString()).toBe((await cidOf(rel)).toString())
      expect(fileFromCar(car, cid).equals(readFileSync(join(tree, rel)))).toBe(true)
    }
    expect(new Set(car.cids).size).toBe(car.cids.length)
  })
})

describe('streaming', () => {
  it('never sends a block that does not hash to its CID: a file changed on disk ends the CAR unfinished', async () => {
    const file = await cidOf('changed/later.bin')
    const leaves = (await readCar((await get(base, `/ipfs/${file}?format=car`)).body)).cids.slice(1)
    expect(leaves).toHaveLength(3)
    // The second leaf's bytes change after the index mapped them (a sync rewrote the file in place).
    const fd = openSync(join(tree, 'changed/later.bin'), 'r+')
    writeSync(fd, Buffer.from('not the indexed bytes'), 0, 21, 1024 * 1024 + 10)
    closeSync(fd)
    const r = await request(`${base}/ipfs/${file}?format=car`)
    expect(r.statusCode).toBe(200) // committed once the root block was read
    const { got, err } = await readToEnd(r.body)
    // The response is cut, not ended cleanly; what came is the root and the first leaf, both verified.
    expect(err).toBeInstanceOf(Error)
    const leaf0 = readFileSync(join(tree, 'changed/later.bin')).subarray(0, 1024 * 1024)
    expect(got.includes(leaf0)).toBe(true)
    expect(got.includes(Buffer.from('not the indexed bytes'))).toBe(false)
    // The changed leaf is not served as a raw block either; the others still are.
    expect((await get(base, `/ipfs/${leaves[1]}?format=raw`)).status).toBe(404)
    expect((await get(base, `/ipfs/${leaves[2]}?format=raw`)).status).toBe(200)
  })

  it('reads blocks only as the client takes them (backpressure: a stalled reader stalls the walk)', async () => {
    let pulled = 0
    async function* blocks() {
      for (let i = 0; i < 1000; i++) {
        pulled++
        yield { cid: rootCid, bytes: new Uint8Array(64 * 1024) }
      }
    }
    const held: (() => void)[] = []
    let holding = true
    let written = 0
    const sink = new Writable({
      highWaterMark: 1,
      write(chunk: Buffer, _enc, cb) {
        written += chunk.length
        if (holding) held.push(cb)
        else cb()
      },
    })
    const stream = carStream([rootCid], blocks())
    stream.pipe(sink)
    while (held.length === 0) await turn()
    for (let i = 0; i < 20; i++) await turn()
    // The header is written and the sink holds it; the walk is at most a block or two ahead.
    expect(pulled).toBeLessThanOrEqual(3)
    const done = new Promise((resolve) => sink.on('finish', resolve))
    holding = false
    for (const cb of held.splice(0)) cb()
    await done
    expect(pulled).toBe(1000)
    expect(written).toBeGreaterThan(1000 * 64 * 1024)
  })
})

describe('errors', () => {
  it('is 404 for a CID not held, 404 for a path not in the DAG, each with its code', async () => {
    const absent = CID.parse('bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy')
    const r = await get(base, `/ipfs/${absent}?format=raw`)
    expect(r.status).toBe(404)
    expect(JSON.parse(r.body.toString()).code).toBe('CIDMIRROR_ERR_TRUSTLESS_NOT_HELD')
    expect((await get(base, `/ipfs/${absent}?format=car`, {}, 'HEAD')).status).toBe(404)
    expect(
      (await get(base, `/ipfs/${absent}?format=raw`, { 'cache-control': 'only-if-cached' })).status,
    ).toBe(412)
    const path = await get(base, `/ipfs/${rootCid}/big/nope.bin?format=car`)
    expect(path.status).toBe(404)
    expect(JSON.parse(path.body.toString()).code).toBe('CIDMIRROR_ERR_TRUSTLESS_NO_SUCH_PATH')
    expect((await get(base, `/ipfs/${rootCid}/wide/nope?format=car`)).status).toBe(404)
  })

  it('is 400 for what is malformed and 406 for what it does not give', async () => {
    const cid = await cidOf('small.txt')
    const cases: [string, Record<string, string>, number][] = [
      ['/ipfs/not-a-cid?format=raw', {}, 400],
      ['/ipfs/?format=raw', {}, 400],
      [`/ipfs/${cid}`, {}, 400],
      [`/ipfs/${rootCid}/small.txt?format=raw`, {}, 400],
      [`/ipfs/${cid}?format=car&dag-scope=most`, {}, 400],
      [`/ipfs/${cid}?format=car&entity-bytes=a:b`, {}, 400],
      [`/ipfs/${cid}?format=car&entity-bytes=10:5`, {}, 400],
      [`/ipfs/${cid}`, { accept: 'text/html' }, 406],
      [`/ipfs/${cid}`, { accept: 'application/vnd.ipld.car; version=2' }, 406],
      [`/ipfs/${cid}?format=car&car-order=bfs`, {}, 406],
      [`/ipfs/${cid}?format=tar`, {}, 406],
    ]
    for (const [path, headers, status] of cases) {
      const r = await get(base, path, headers)
      expect(r.status, path).toBe(status)
      expect(JSON.parse(r.body.toString()).code, path).toMatch(/^CIDMIRROR_ERR_TRUSTLESS_/)
    }
    // A percent-encoding that does not decode: fastify's router refuses it before the plugin runs.
    expect((await get(base, `/ipfs/${rootCid}/%E0%A4%A?format=car`)).status).toBe(400)
  })
})
