/**
 * A gateway replica in a child process (`gatehouse serve`), so that it can really crash: SIGKILL
 * leaves no graceful shutdown, its connections to clients, upstream and Redis simply vanish.
 * Listens on a loopback port reserved for the test (./ports.ts); killed by PID at teardown.
 */
import { guardChild } from './orphan-guard.js'
import { spawn, type ChildProcess } from 'node:child_process'
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import type { Test } from 'tap'
import { reservePort } from './ports.js'
import { CLI_ARGV } from './repo.js'

export interface ChildReplica {
  port: number
  origin: string
  /** Everything the child wrote to stdout and stderr so far (its JSON log lines). */
  output(): string
  /** SIGKILL: a crash. Resolves once the process is gone. */
  crash(): Promise<void>
}

/** Writes `config` (plus its listen address and log level) to `dir` and serves it; resolves once /readyz says 200. */
export async function childReplica(t: Test, dir: string, config: Record<string, unknown>, logLevel = 'warn'): Promise<ChildReplica> {
  const port = await reservePort(t)
  const file = join(dir, `replica-${port}.json`)
  await writeFile(file, JSON.stringify({ ...config, listen: { host: '127.0.0.1', port }, log: { level: logLevel } }))
  const child: ChildProcess = guardChild(spawn(process.execPath, [...CLI_ARGV, 'serve', '--config', file], { stdio: ['ignore', 'pipe', 'pipe'] }))
  let output = ''
  child.stdout!.on('data', (c: Buffer) => (output += c))
  child.stderr!.on('data', (c: Buffer) => (output += c))
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
  const crash = async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
    await exited
  }
  t.teardown(crash)
  const origin = `http://127.0.0.1:${port}`
  const deadline = Date.now() + 30_000
  for (;;) {
    const status = await fetch(`${origin}/readyz`).then((r) => r.status, () => 0)
    if (status === 200) break
    if (Date.now() > deadline || child.exitCode !== null) throw new Error(`the child replica did not become ready: ${output}`)
    await sleep(100)
  }
  return { port, origin, output: () => output, crash }
}
