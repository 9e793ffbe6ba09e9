import {
  chmodSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  unlinkSync,
  utimesSync,
  writeFileSync,
} from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { loadConfig } from '../src/sync/config/index.ts'
import type { RunContext } from '../src/sync/provider.ts'
import { createProvider, STAGE1_PROFILES, stageArgs } from '../src/sync/providers/index.ts'
import { type Rsyncd, startRsyncd } from './helpers/rsyncd.ts'
import { tool } from './helpers/tools.ts'

let tmp: string
let up: Rsyncd | undefined
beforeEach(() => {
  tmp = mkdtempSync(join(tmpdir(), 'cidmirror-2stage-'))
})
afterEach(async () => {
  await up?.stop()
  up = undefined
  rmSync(tmp, { recursive: true, force: true })
})

const writeAt = (root: string, rel: string, data: string, mtime?: number) => {
  mkdirSync(join(root, rel, '..'), { recursive: true })
  writeFileSync(join(root, rel), data)
  if (mtime) utimesSync(join(root, rel), mtime, mtime)
}
const read = (p: string) => readFileSync(p, 'utf8')

async function load(mirrorToml: string) {
  const file = join(tmp, 'cidmirror.toml')
  writeFileSync(
    file,
    `[global]\nmirror_dir = "mirrors"\n[[mirrors]]\nname = "debian"\nprovider = "two-stage-rsync"\n${mirrorToml}\n`,
  )
  const config = await loadConfig(file)
  return { mirror: config.mirrors[0]!, provider: createProvider(config.mirrors[0]!, config) }
}

function ctx(name: string): RunContext {
  return { logFile: join(tmp, 'log', name), signal: new AbortController().signal, env: {}, extraArgs: [] }
}

/** A Debian-shaped archive: indexes in dists/, packages in pool/. */
function archive(root: string, version: number) {
  // same sizes in every version: older versions get older times, so rsync's quick check sees the change
  const t = Date.now() / 1000 - 3600 * (10 - version)
  const write = (r: string, rel: string, data: string) => writeAt(r, rel, data, t)
  write(root, 'dists/stable/Release', `Release v${version}\n`)
  write(root, 'dists/stable/InRelease', `InRelease v${version}\n`)
  write(root, 'dists/stable/main/binary-amd64/Packages', `Filename: pool/main/h/hello/hello_${version}.deb\n`)
  write(root, 'dists/stable/main/binary-amd64/Packages.gz', `gz v${version}\n`)
  write(root, 'dists/stable/main/i18n/Translation-en', `tr v${version}\n`)
  write(root, 'ls-lR.gz', `ls v${version}\n`)
  write(root, `pool/main/h/hello/hello_${version}.deb`, `deb v${version}\n`)
}

describe('two-stage-rsync provider', () => {
  it('stage 1 excludes the indexes (debian profile), stage 2 is the full sync', async () => {
    const { mirror } = await load('upstream = "rsync://e/debian/"\nrsync_options = ["--bwlimit=1000"]')
    const s1 = stageArgs(mirror, 1, ['--exclude-from=/ev'])
    for (const x of STAGE1_PROFILES.debian) expect(s1).toContain(x)
    expect(s1).toContain('--exclude=Packages*')
    expect(s1).toContain('--exclude=InRelease')
    expect(s1).not.toContain('--delete')
    expect(s1).not.toContain('--bwlimit=1000') // rsync_options only in stage 2, as tunasync
    expect(s1.slice(-4)).toEqual([
      '--timeout=120',
      '--exclude-from=/ev',
      'rsync://e/debian/',
      mirror.mirrorDir,
    ])
    const s2 = stageArgs(mirror, 2, ['--exclude-from=/ev'])
    expect(s2).toContain('--delete')
    expect(s2).toContain('--delete-after')
    expect(s2).toContain('--delay-updates')
    expect(s2).toContain('--bwlimit=1000')
    expect(s2.some((a) => a.startsWith('--exclude=Packages'))).toBe(false)
    expect(s2.slice(-3)).toEqual(['--exclude-from=/ev', 'rsync://e/debian/', mirror.mirrorDir])
    const old = await load('upstream = "rsync://e/debian/"\nstage1_profile = "debian-oldstyle"')
    expect(stageArgs(old.mirror, 1, [])).toContain('--exclude=ls-lR*')
    expect(stageArgs(old.mirror, 1, [])).not.toContain('--include=by-hash/')
  })

  it('brings new packages before new indexes, and deletes old packages only at the end', async () => {
    up = await startRsyncd()
    archive(up.root, 1)
    // A wrapper around the real rsync that records the mirror after each stage.
    const rsync = tool('rsync')
    const states = join(tmp, 'states')
    const wrapper = join(tmp, 'rsync-wrapper')
    writeFileSync(
      wrapper,
      `#!/bin/sh\n"${rsync}" "$@"; rc=$?\nfor last; do :; done\nn=$(ls "${states}" 2>/dev/null | wc -l)\nmkdir -p "${states}/$n"\n(cd "$last" && find . -type f | sort > "${states}/$n/files" && cat dists/stable/main/binary-amd64/Packages > "${states}/$n/Packages")\nexit $rc\n`,
    )
    chmodSync(wrapper, 0o755)
    const { provider, mirror } = await load(`upstream = "${up.url}"\ncommand = "${wrapper}"`)
    const dest = mirror.mirrorDir

    const first = await provider.run(ctx('1.log'))
    // the first run: stage 1 left the indexes out, stage 2 brought them
    expect(read(join(states, '0', 'files'))).toBe('./pool/main/h/hello/hello_1.deb\n')
    expect(read(join(dest, 'dists/stable/InRelease'))).toBe('InRelease v1\n')
    expect(first.size).toMatch(/^\d+$/)

    rmSync(states, { recursive: true })
    unlinkSync(join(up.root, 'pool/main/h/hello/hello_1.deb'))
    archive(up.root, 2)
    const c = ctx('2.log')
    await provider.run(c)

    // after stage 1: the new package is there, the old indexes and the old package still are
    const afterStage1 = read(join(states, '0', 'files'))
    expect(afterStage1).toContain('./pool/main/h/hello/hello_2.deb\n')
    expect(afterStage1).toContain('./pool/main/h/hello/hello_1.deb\n')
    expect(read(join(states, '0', 'Packages'))).toBe('Filename: pool/main/h/hello/hello_1.deb\n')
    // after stage 2: new indexes, old package deleted
    const afterStage2 = read(join(states, '1', 'files'))
    expect(afterStage2).not.toContain('hello_1.deb')
    expect(read(join(states, '1', 'Packages'))).toBe('Filename: pool/main/h/hello/hello_2.deb\n')
    expect(read(join(dest, 'dists/stable/Release'))).toBe('Release v2\n')
    expect(read(join(dest, 'dists/stable/main/i18n/Translation-en'))).toBe('tr v2\n')
    expect(read(join(dest, 'ls-lR.gz'))).toBe('ls v2\n')
    expect(existsSync(join(dest, 'pool/main/h/hello/hello_1.deb'))).toBe(false)

    // and the log says so, in order
    const log = read(c.logFile)
    const i1 = log.indexOf('cidmirror: rsync stage 1:')
    const i2 = log.indexOf('cidmirror: rsync stage 2:')
    expect(i1).toBeGreaterThanOrEqual(0)
    expect(i2).toBeGreaterThan(i1)
    // what each rsync printed (the lines after cidmirror's command line)
    const stage1Log = log.slice(log.indexOf('\n', i1), i2)
    const stage2Log = log.slice(log.indexOf('\n', i2))
    expect(stage1Log).toMatch(/^pool\/main\/h\/hello\/hello_2\.deb$/m)
    expect(stage1Log).not.toMatch(/Packages|InRelease/)
    expect(stage2Log).toMatch(/^dists\/stable\/main\/binary-amd64\/Packages$/m)
    expect(stage2Log).toMatch(/^deleting pool\/main\/h\/hello\/hello_1\.deb$/m)
  })

  it('stops after a failed stage 1 and names the stage', async () => {
    up = await startRsyncd()
    const { provider } = await load(`upstream = "rsync://127.0.0.1:${up.port}/missing/"`)
    const c = ctx('f.log')
    await expect(provider.run(c)).rejects.toThrow(
      "rsync stage 1 exited 5: error starting client-server protocol (@ERROR: Unknown module 'missing')",
    )
    expect(read(c.logFile)).not.toContain('rsync stage 2:')
  })
})
