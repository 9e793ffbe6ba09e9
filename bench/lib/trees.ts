import { createCipheriv } from 'node:crypto'
import { existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'

/** Deterministic incompressible bytes (AES-CTR keystream): fast, and the same tree on every machine. */
function stream(seed: number) {
  const key = Buffer.alloc(32, seed & 0xff)
  const iv = Buffer.alloc(16)
  iv.writeUInt32BE(seed >>> 0, 0)
  const cipher = createCipheriv('aes-256-ctr', key, iv)
  return (n: number) => cipher.update(Buffer.alloc(n))
}

const MiB = 2 ** 20

/** Large files from 1 KiB to 256 MiB (about 1.9 GiB) plus 200,000 small files of 0.5–4 KiB. */
const LARGE: Array<[count: number, size: number]> = [
  [1, 256 * MiB],
  [2, 128 * MiB],
  [4, 64 * MiB],
  [8, 32 * MiB],
  [16, 16 * MiB],
  [64, 4 * MiB],
  [200, MiB],
  [256, MiB + 1],
  [1024, 64 * 1024],
  [4096, 1024],
]

export function ensureBigTree(dir: string, scale: number): string {
  const done = `${dir}.done-${scale}`
  if (existsSync(done)) return dir
  rmSync(dir, { recursive: true, force: true })
  const next = stream(1)
  let n = 0
  for (const [count, size] of LARGE) {
    const sub = join(dir, 'large', `size-${size}`)
    mkdirSync(sub, { recursive: true })
    const c = Math.max(1, Math.round(count * scale))
    for (let i = 0; i < c; i++) {
      // Write big files in 16 MiB pieces to keep the generator's memory small.
      const path = join(sub, `f${i}.bin`)
      writeFileSync(path, '')
      for (let left = size; left > 0; left -= 16 * MiB)
        writeFileSync(path, next(Math.min(left, 16 * MiB)), { flag: 'a' })
      n++
    }
  }
  const small = Math.round(200_000 * scale)
  for (let i = 0; i < small; i++) {
    const sub = join(dir, 'small', `d${Math.floor(i / 1000)}`)
    if (i % 1000 === 0) mkdirSync(sub, { recursive: true })
    writeFileSync(join(sub, i % 50 === 0 ? `.hidden-${i}` : `f${i}.txt`), next(512 + ((i * 7919) % 3584)))
    n++
  }
  writeFileSync(done, `${n}\n`)
  return dir
}

/** One million files of 16–80 bytes in folders of 1,000. */
export function ensureMillionTree(dir: string, scale: number): { dir: string; files: number } {
  const files = Math.round(1_000_000 * scale)
  const done = `${dir}.done-${scale}`
  if (existsSync(done)) return { dir, files }
  rmSync(dir, { recursive: true, force: true })
  const next = stream(2)
  for (let i = 0; i < files; i++) {
    const sub = join(dir, `d${Math.floor(i / 100_000)}`, `e${Math.floor(i / 1000) % 100}`)
    if (i % 1000 === 0) mkdirSync(sub, { recursive: true })
    writeFileSync(join(sub, `f${i}`), next(16 + (i % 64)))
  }
  writeFileSync(done, `${files}\n`)
  return { dir, files }
}
