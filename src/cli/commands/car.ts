import { createWriteStream, lstatSync, rmSync } from 'node:fs'
import { open, rename } from 'node:fs/promises'
import { basename, dirname, join } from 'node:path'
import type { Command } from 'commander'
import { CarOutputError } from '../errors.ts'

export function register(program: Command): void {
  program
    .command('car')
    .description(
      'write a CARv1 of a file or directory (root = its CID, as `ipfs add -r`) for `ipfs dag import`',
    )
    .argument('<path>', 'file or directory')
    .requiredOption(
      '-o, --output <file>',
      'the CAR file to write (written to a temporary name, then renamed)',
    )
    .option('-H, --hidden', 'include files and directories whose name starts with a dot')
    .action(async (path: string, o: { output: string; hidden?: boolean }) => {
      // Loaded here, not at the top: every command's start-up pays for what the registry imports.
      const { exportCar, fsError, HashPool } = await import('../../cid/index.ts')
      let isDir: boolean
      try {
        isDir = lstatSync(path).isDirectory()
      } catch (err) {
        throw fsError(path, err)
      }
      const tmp = join(dirname(o.output), `.${basename(o.output)}.${process.pid}.tmp`)
      const pool = isDir ? new HashPool() : undefined
      try {
        const out = createWriteStream(tmp, { flags: 'wx' })
        const opened = new Promise<void>((resolve, reject) => {
          out.once('open', () => resolve())
          out.once('error', reject)
        })
        try {
          await opened
        } catch (err) {
          throw new CarOutputError(o.output, (err as Error).message, { cause: err })
        }
        const root = await exportCar(path, out, { hidden: o.hidden ?? false, pool })
        // A CAR that appears under its name is whole, even after a crash: fsync, rename, fsync the folder.
        await fsyncPath(tmp)
        await rename(tmp, o.output)
        await fsyncPath(dirname(o.output))
        process.stdout.write(`${root.toString()}\n`)
      } catch (err) {
        rmSync(tmp, { force: true })
        throw err
      } finally {
        await pool?.destroy()
      }
    })
}

async function fsyncPath(path: string): Promise<void> {
  const fh = await open(path, 'r')
  try {
    await fh.sync()
  } finally {
    await fh.close()
  }
}
