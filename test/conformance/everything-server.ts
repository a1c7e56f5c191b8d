/**
 * The reference "everything" MCP server (npm @modelcontextprotocol/server-everything, SDK 1.x),
 * run as the program it is: .ci/install-node22 installs the pinned version next to the
 * conformance suite, and the 2025-11-25 conformance run starts it as a child process with its
 * streamable HTTP transport (`mcp-server-everything streamableHttp`, port from PORT).
 *
 * It listens with `app.listen(PORT)`, i.e. on every interface. A test server has no business
 * outside loopback, so the child is started with a one-line preload that gives a `listen(port)`
 * without a host the host 127.0.0.1. The port is reserved first (test/helpers/ports.ts), since
 * the command line must name it before the server listens.
 */
import { spawn } from 'node:child_process'
import { accessSync, constants } from 'node:fs'
import { dirname, join } from 'node:path'
import type { Test } from 'tap'
import { reservePort } from '../helpers/ports.js'

/** Where .ci/install-node22 puts the server: beside the suite its `conformance` wrapper runs. */
export function everythingServerEntry(conformance: string): string {
  return join(dirname(dirname(conformance)), 'node_modules', '@modelcontextprotocol', 'server-everything', 'dist', 'index.js')
}

/** The entry file, or undefined (after failing the test: the suite's install is incomplete). */
export function everythingServerForTests(t: Test, conformance: string): string | undefined {
  const entry = everythingServerEntry(conformance)
  try {
    accessSync(entry, constants.R_OK)
    return entry
  } catch {
    t.fail(`no @modelcontextprotocol/server-everything at ${entry}: run .ci/install-node22 (it installs it beside the suite)`)
    return undefined
  }
}

// net.Server#listen(port[, callback]) → listen(port, '127.0.0.1'[, callback]); any other form untouched.
const LOOPBACK_ONLY =
  'data:text/javascript,' +
  encodeURIComponent(
    `import net from 'node:net';
const listen = net.Server.prototype.listen;
net.Server.prototype.listen = function (port, ...rest) {
  const bare = (typeof port === 'number' || typeof port === 'string') && typeof rest[0] !== 'string';
  return bare ? listen.call(this, Number(port), '127.0.0.1', ...rest) : listen.call(this, port, ...rest);
};`,
  )

export interface EverythingServer {
  url: string
  /** What the server printed (its last 8 KB), for a failure's diagnostics. */
  output(): string
  close(): Promise<void>
}

/** Starts the server on a reserved loopback port and resolves once it answers HTTP. */
export async function startEverythingServer(t: Test, entry: string): Promise<EverythingServer> {
  const port = await reservePort(t)
  const url = `http://127.0.0.1:${port}/mcp`
  // The test runner's NODE_OPTIONS (its loaders) are not the child's business.
  const { NODE_OPTIONS: _ignored, ...env } = process.env
  const child = spawn(process.execPath, ['--import', LOOPBACK_ONLY, entry, 'streamableHttp'], {
    env: { ...env, PORT: String(port) },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let output = ''
  const keep = (d: Buffer) => (output = (output + d.toString('utf8')).slice(-8192))
  child.stdout.on('data', keep)
  child.stderr.on('data', keep)
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
  let gone = false
  void exited.then(() => (gone = true))

  const close = async () => {
    if (!gone) child.kill('SIGTERM')
    const timer = setTimeout(() => child.kill('SIGKILL'), 3000)
    await exited
    clearTimeout(timer)
  }
  t.teardown(close)

  const deadline = Date.now() + 20_000
  for (;;) {
    if (gone) throw new Error(`server-everything exited before it answered:\n${output}`)
    // Any HTTP answer will do (a GET without a session is a 400): the server is listening.
    const answered = await fetch(url, { signal: AbortSignal.timeout(1000) }).then(
      () => true,
      () => false,
    )
    if (answered) break
    if (Date.now() > deadline) {
      await close()
      throw new Error(`server-everything did not answer on ${url} within 20 s:\n${output}`)
    }
    await new Promise((r) => setTimeout(r, 100))
  }
  return { url, output: () => output, close }
}
