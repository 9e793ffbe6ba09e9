import { execFileSync } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { DatabaseLockedError, openDatabase, sublevelOf } from '../src/db.ts'

const dirs: string[] = []
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true })
})

describe('the one LevelDB', () => {
  it('keeps JSON values across a reopen', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'cidmirror-db-'))
    dirs.push(dir)
    const db = await openDatabase(dir)
    await sublevelOf(db, 'jobs').put('debian', { status: 'success' })
    await db.close()
    const again = await openDatabase(dir)
    expect(await sublevelOf(again, 'jobs').get('debian')).toEqual({ status: 'success' })
    await again.close()
  })

  it('names a database held by another process', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'cidmirror-db-'))
    dirs.push(dir)
    const db = await openDatabase(dir)
    const src = new URL('../src/db.ts', import.meta.url).pathname
    const out = execFileSync(
      process.execPath,
      [
        '--input-type=module',
        '-e',
        `import(${JSON.stringify(src)}).then(m => m.openDatabase(${JSON.stringify(dir)})).then(() => console.log('opened'), e => console.log(e.code, e.message))`,
      ],
      { encoding: 'utf8' },
    )
    await db.close()
    expect(out).toContain('CIDMIRROR_ERR_DB_LOCKED')
    expect(out).toContain(dir)
    expect(new DatabaseLockedError(dir).code).toBe('CIDMIRROR_ERR_DB_LOCKED')
  })
})
