/** `[ipfs]` and `[replication]`: the example loads; a bad value is one line naming the key and the file. */
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { readReplicationConfig } from '../src/daemon/index.ts'
import { loadConfig } from '../src/sync/index.ts'
import { runCli, STACK_LINE } from './helpers/cli.ts'
import { tempDir, writeToml } from './jobs-helpers.ts'

let tmp: ReturnType<typeof tempDir> | undefined
afterEach(() => tmp?.cleanup())

function config(body: string): string {
  tmp = tempDir('cidmirror-replcfg-')
  return writeToml({
    dir: tmp.dir,
    mirrors: `[[mirrors]]\nname = "deb"\nupstream = "rsync://127.0.0.1:1/m/"\nreplication_n = 3\n\n${body}`,
  })
}

describe('replication config', () => {
  it('reads the example: the local node, two kubo targets, units resolved', async () => {
    const c = await loadConfig(join(import.meta.dirname, '..', 'examples', 'replication', 'cidmirror.toml'))
    const r = readReplicationConfig(c)
    expect(r.ipfs).toMatchObject({
      api: '/ip4/127.0.0.1/tcp/5101',
      local: true,
      provide: 'none',
      providePerHour: 300,
    })
    expect(r.replication).toMatchObject({
      n: 2,
      recheckMs: 60_000,
      freshMs: 86_400_000,
      retryBackoffMs: 5_000,
    })
    expect(r.replication?.targets.map((t) => [t.name, t.type, t.api, t.scope])).toEqual([
      ['kubo-b', 'kubo', '/ip4/127.0.0.1/tcp/5102', 'tree'],
      ['kubo-c', 'kubo', '/ip4/127.0.0.1/tcp/5103', 'tree'],
    ])
  })

  it('a per-mirror replication_n and a token_file (read, relative to the config)', async () => {
    const file = config(`[replication]
n = 2
[[replication.targets]]
name = "psa"
type = "pinning-service"
endpoint = "https://pins.example/psa"
token_file = "psa.token"
`)
    writeFileSync(join(tmp!.dir, 'psa.token'), 'secret-token\n', { mode: 0o600 })
    const r = readReplicationConfig(await loadConfig(file))
    expect(r.replication?.perMirror).toEqual({ deb: 3 })
    expect(r.replication?.targets[0]).toMatchObject({
      type: 'pinning-service',
      api: 'https://pins.example/psa',
      token: 'secret-token',
    })
  })

  it("ipfs_api: a cluster target's list (or one address) of its peers' IPFS RPC APIs; none for others", async () => {
    const targets = async (body: string) =>
      readReplicationConfig(await loadConfig(config(`[replication]\n${body}`))).replication?.targets
    const list = await targets(
      '[[replication.targets]]\nname = "c"\ntype = "cluster"\napi = "http://127.0.0.1:9094"\nipfs_api = ["http://127.0.0.1:9095", "/ip4/127.0.0.1/tcp/5001"]\n',
    )
    expect(list?.[0]?.ipfsApi).toEqual(['http://127.0.0.1:9095', '/ip4/127.0.0.1/tcp/5001'])
    const one = await targets(
      '[[replication.targets]]\nname = "c"\ntype = "cluster"\napi = "http://127.0.0.1:9094"\nipfs_api = "http://127.0.0.1:9095"\n',
    )
    expect(one?.[0]?.ipfsApi).toEqual(['http://127.0.0.1:9095'])
    const kubo = await targets(
      '[[replication.targets]]\nname = "b"\ntype = "kubo"\napi = "/ip4/127.0.0.1/tcp/1"\n',
    )
    expect(kubo?.[0]?.ipfsApi).toEqual([])
  })

  it('keep_archived: for ever by default and as "forever", else a duration in units', async () => {
    const keep = async (line: string) =>
      readReplicationConfig(await loadConfig(config(`[replication]\n${line}\n`))).replication?.keepArchivedMs
    expect(await keep('')).toBeUndefined()
    expect(await keep('keep_archived = "forever"')).toBeUndefined()
    expect(await keep('keep_archived = "2y"')).toBe(2 * 365 * 86_400_000)
    expect(await keep('keep_archived = "90d"')).toBe(90 * 86_400_000)
  })

  for (const [body, key] of [
    [
      '[replication]\n[[replication.targets]]\nname = "b"\ntype = "ipfs"\napi = "/ip4/127.0.0.1/tcp/1"\n',
      'replication.targets[0].type',
    ],
    ['[replication]\nrecheck = "6x"\n', 'replication.recheck'],
    ['[replication]\nn = -1\n', 'replication.n'],
    ['[replication]\nkeep_archived = "always"\n', 'replication.keep_archived'],
    ['[replication]\nreplicas = 2\n', 'replication.replicas'],
    ['[ipfs]\nprovide = "all"\n[replication]\n', 'ipfs.provide'],
    ['[replication]\n[[replication.targets]]\nname = "b"\ntype = "kubo"\n', 'replication.targets[0].api'],
    [
      '[replication]\n[[replication.targets]]\nname = "b"\ntype = "kubo"\napi = "/ip4/127.0.0.1/tcp/1"\nipfs_api = "http://127.0.0.1:2"\n',
      'replication.targets[0].ipfs_api',
    ],
    [
      '[replication]\n[[replication.targets]]\nname = "c"\ntype = "cluster"\napi = "http://127.0.0.1:1"\nipfs_api = [3]\n',
      'replication.targets[0].ipfs_api[0]',
    ],
  ] as const) {
    it(`a bad ${key}: one line naming it and the file, exit 2`, async () => {
      const file = config(body)
      const res = await runCli(['replicate', '-c', file, '--once'])
      expect(res.code).toBe(2)
      expect(res.stderr).not.toMatch(STACK_LINE)
      expect(res.stderr.trim().split('\n')).toHaveLength(1)
      expect(res.stderr).toContain(file)
      expect(res.stderr).toContain(`${key}:`)
    })
  }

  it('replicate without [replication]: one line, exit 2', async () => {
    const res = await runCli(['replicate', '-c', config(''), '--once'])
    expect(res.code).toBe(2)
    expect(res.stderr).toMatch(/no \[replication\] section/)
  })
})
