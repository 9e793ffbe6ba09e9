import { type ChildProcess, execFile, spawn } from 'node:child_process'
import { join } from 'node:path'

/** The CLI from source (Node 24 runs it directly); what every `cidmirror ...` line runs. */
export const MAIN = join(import.meta.dirname, '..', '..', 'src', 'cli', 'main.ts')

export interface CliResult {
  code: number
  stdout: string
  stderr: string
}

/** Runs `cidmirror ARGS...` to its end; never throws on a non-zero exit. */
export function runCli(args: string[], env: NodeJS.ProcessEnv = {}): Promise<CliResult> {
  return runFile(process.execPath, [MAIN, ...args], env)
}

/** Runs a program to its end with the test's environment plus `env`; never throws on a non-zero exit. */
export function runFile(file: string, args: string[], env: NodeJS.ProcessEnv = {}): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    execFile(
      file,
      args,
      { env: { ...process.env, CIDMIRROR_TOKEN: '', CIDMIRROR_CONFIG: '', ...env }, encoding: 'utf8' },
      (err, stdout, stderr) => {
        if (err && typeof err.code !== 'number') return reject(err)
        resolve({ code: err ? (err.code as number) : 0, stdout, stderr })
      },
    )
  })
}

/** `cidmirror daemon -c FILE` in the background, its stderr (the JSON log) collected in `log()`. */
export function spawnDaemon(config: string): { child: ChildProcess; log: () => string } {
  const child = spawn(process.execPath, [MAIN, 'daemon', '-c', config], {
    stdio: ['ignore', 'ignore', 'pipe'],
    env: { ...process.env, CIDMIRROR_LOG_LEVEL: 'info' },
  })
  let log = ''
  child.stderr?.on('data', (d: Buffer) => {
    log += d.toString()
  })
  return { child, log: () => log }
}

/** SIGKILLs a child that is still running and waits for its exit. */
export async function killChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return
  const exited = new Promise((r) => child.once('exit', r))
  child.kill('SIGKILL')
  await exited
}

/** A stack trace's frame lines (`    at f (file:1:2)`): none may reach a user. */
export const STACK_LINE = /^\s+at .+[:(]/m
