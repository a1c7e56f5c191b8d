/**
 * `gatehouse serve` in a child process that trusts a test CA through NODE_EXTRA_CA_CERTS (read
 * by Node at startup only, so an in-process gateway cannot fetch from the https document
 * servers). Its JSON log lines are collected from the pipe for assertions.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import type { Test } from 'tap'
import { reservePort } from '../helpers/ports.js'
import { CLI_ARGV } from '../helpers/repo.js'
import type { TestCa } from './servers.js'

export interface ChildGateway {
  origin: string
  mcpUrl: string
  output(): string
  /** Parsed JSON log lines so far. */
  logs(): Record<string, unknown>[]
  /** Whether the output matches within a few seconds (log lines arrive through a pipe). */
  logged(pattern: RegExp): Promise<boolean>
}

/** Starts a gateway with `config` (publicUrl, listen and shutdown are filled in). */
export async function startChildGateway(t: Test, tls: TestCa, config: Record<string, unknown>): Promise<ChildGateway> {
  const port = await reservePort(t)
  const origin = `http://127.0.0.1:${port}`
  const file = join(tls.caFile, '..', `gateway-${port}.json`)
  await writeFile(
    file,
    JSON.stringify({ publicUrl: origin, listen: { host: '127.0.0.1', port }, shutdown: { graceSeconds: 1 }, log: { level: 'info' }, ...config }),
  )
  const child: ChildProcess = spawn(process.execPath, [...CLI_ARGV, 'serve', '--config', file], {
    env: { ...process.env, NODE_EXTRA_CA_CERTS: tls.caFile },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let output = ''
  // A child that could not be spawned emits 'error' and never exits: say so rather than wait.
  let spawnError: Error | undefined
  child.once('error', (err) => (spawnError = err))
  child.stdout!.on('data', (c: Buffer) => (output += c))
  child.stderr!.on('data', (c: Buffer) => (output += c))
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
  t.teardown(async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM')
      await exited
    }
  })
  // Measured on the monotonic clock: a test sharing this process may move performance.now
  // (advanceStoreClock), and the wall clock may be stepped.
  const started = process.hrtime.bigint()
  const waitedMs = () => Number((process.hrtime.bigint() - started) / 1_000_000n)
  for (;;) {
    if (spawnError) throw new Error(`the gateway could not be started: ${spawnError.message}`)
    if (child.exitCode !== null || child.signalCode !== null) throw new Error(`the gateway exited (${child.exitCode ?? child.signalCode}): ${output}`)
    try {
      if ((await fetch(`${origin}/readyz`)).status === 200) break
    } catch {
      // not listening yet
    }
    if (waitedMs() > 240_000) throw new Error(`the gateway did not become ready in ${waitedMs()} ms: ${output}`)
    await sleep(200)
  }
  const logged = async (pattern: RegExp) => {
    for (const end = Date.now() + 10_000; Date.now() < end; await sleep(50)) if (pattern.test(output)) return true
    return pattern.test(output)
  }
  const logs = () =>
    output
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as Record<string, unknown>)
  return { origin, mcpUrl: `${origin}/mcp`, output: () => output, logs, logged }
}
