/**
 * Child-process entry of the proxy benchmark (test/bench/proxy.ts forks it once per server).
 * The role comes in BENCH_SERVER as JSON:
 *
 * - { role: 'upstream', stateful, json }  the SDK1 test upstream (JSON or event-stream answers), 127.0.0.1:0
 * - { role: 'upstream-2026' }           the SDK 2.x test upstream on 2026-07-28 (stateless, JSON answers)
 * - { role: 'idle-sse-upstream' }       GET streams that stay open and silent (idle notification streams)
 * - { role: 'bare', upstream }          a minimal Fastify app with @fastify/http-proxy, nothing else
 * - { role: 'gateway', upstream, logLevel }  the real gateway (loadConfigObject + startGateway),
 *                                        memory store, logging to stdout (which the parent
 *                                        points at /dev/null), plus a minted access token
 *
 * Over IPC the child answers { id, op: 'cpu' } with its process.cpuUsage(), { id, op: 'clear' }
 * by dropping the upstream fixture's request records, and { id, op: 'close' } by closing its
 * server and exiting. It also exits when the parent goes away.
 */
import httpProxy from '@fastify/http-proxy'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import Fastify from 'fastify'
import { loadConfigObject } from '../../src/config/load.js'
import { mintAccessToken } from '../../src/keys/tokens.js'
import { createLogger } from '../../src/log.js'
import { startGateway } from '../../src/main.js'
import { startSdk1Upstream, startSdk2Upstream } from '../fixtures/mcp-upstream.js'
import { reservePort } from '../helpers/ports.js'

export type ServerSpec =
  /** json: false answers every POST with an event stream (one event), as SDK servers do by default. */
  | { role: 'upstream'; stateful: boolean; json?: boolean }
  /** The SDK 2.x upstream speaking 2026-07-28 (stateless, JSON answers). */
  | { role: 'upstream-2026' }
  /** Holds every GET open as an event stream and sends nothing on it: MCP notification streams at rest. */
  | { role: 'idle-sse-upstream' }
  | { role: 'bare'; upstream: string }
  /** config: members merged over the benchmark's configuration (a Redis store, clients, rate limits). */
  /** jkt: the minted token is DPoP-bound to that key (cnf.jkt). */
  | { role: 'gateway'; upstream: string; logLevel: string; config?: Record<string, unknown>; jkt?: string }

export type ChildRequest = { id: number; op: 'cpu' | 'clear' | 'close' }
export type ChildMessage =
  | { type: 'ready'; url: string; token?: string; pid: number }
  | { type: 'reply'; id: number; cpu?: NodeJS.CpuUsage }
  | { type: 'failed'; error: string }

/** Identity headers as a deployment would configure them (the gateway rewrites them on every request). */
export const IDENTITY_HEADERS = { subject: 'X-User', clientId: 'X-Client', scope: 'X-Scopes' }

function send(message: ChildMessage): void {
  process.send!(message)
}

async function start(spec: ServerSpec): Promise<{ url: string; token?: string; clear?: () => void; close: () => Promise<void> }> {
  switch (spec.role) {
    case 'upstream': {
      const upstream = await startSdk1Upstream({ stateful: spec.stateful, jsonResponse: spec.json ?? true })
      return {
        url: upstream.url,
        // The fixture records every request; over a benchmark that is an unbounded array.
        clear: () => {
          upstream.requests.length = 0
        },
        close: () => upstream.close(),
      }
    }
    case 'upstream-2026': {
      const upstream = await startSdk2Upstream({ responseMode: 'json' })
      return {
        url: upstream.url,
        clear: () => {
          upstream.requests.length = 0
        },
        close: () => upstream.close(),
      }
    }
    case 'idle-sse-upstream': {
      const server = createServer((req, res) => {
        if (req.method !== 'GET') {
          res.writeHead(405, { allow: 'GET' }).end()
          return
        }
        res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' })
        res.write(': open\n\n')
      })
      server.keepAliveTimeout = 0
      server.requestTimeout = 0
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
      const { port } = server.address() as AddressInfo
      return {
        url: `http://127.0.0.1:${port}/mcp`,
        close: () => {
          server.closeAllConnections()
          return new Promise<void>((resolve) => server.close(() => resolve()))
        },
      }
    }
    case 'bare': {
      const upstream = new URL(spec.upstream)
      const app = Fastify()
      await app.register(httpProxy, { upstream: upstream.origin })
      await app.listen({ host: '127.0.0.1', port: 0 })
      const { port } = app.server.address() as { port: number }
      return { url: `http://127.0.0.1:${port}${upstream.pathname}`, close: () => app.close() }
    }
    case 'gateway': {
      // Held until this child process exits; the gateway listens on it (its publicUrl names it).
      const port = await reservePort()
      const origin = `http://127.0.0.1:${port}`
      const config = loadConfigObject(
        {
          publicUrl: origin,
          listen: { host: '127.0.0.1', port },
          shutdown: { graceSeconds: 1 },
          store: { type: 'memory' },
          log: { level: spec.logLevel },
          resources: [
            {
              id: 'bench',
              name: 'Benchmark upstream',
              path: '/mcp',
              upstream: spec.upstream,
              scopes: [{ name: 'mcp' }],
              requiredScopes: ['mcp'],
              identityHeaders: IDENTITY_HEADERS,
            },
          ],
          ...spec.config,
        },
        'benchmark configuration',
      )
      // Production logging path: pino's default destination (stdout, fd 1).
      const gateway = await startGateway(config, { logger: createLogger(spec.logLevel) })
      const resource = config.resources[0]!
      const token = await mintAccessToken(
        gateway.keystore!,
        config.issuer,
        { sub: 'bench-user', clientId: 'bench-client', audience: resource.uri, scopes: resource.requiredScopes, ...(spec.jkt && { jkt: spec.jkt }) },
        3600,
      )
      return { url: resource.uri, token, close: () => gateway.close() }
    }
  }
}

async function main(): Promise<void> {
  const spec = JSON.parse(process.env.BENCH_SERVER ?? 'null') as ServerSpec | null
  if (!spec || !process.send) throw new Error('servers.ts is started by test/bench/proxy.ts (fork with BENCH_SERVER)')
  const server = await start(spec)
  let closing = false
  const close = async () => {
    if (closing) return
    closing = true
    await server.close()
    if (process.connected) process.disconnect()
    process.exit(0)
  }
  process.on('disconnect', () => void close())
  process.on('message', (m: ChildRequest) => {
    if (m.op === 'cpu') send({ type: 'reply', id: m.id, cpu: process.cpuUsage() })
    else if (m.op === 'clear') {
      server.clear?.()
      send({ type: 'reply', id: m.id })
    } else if (m.op === 'close') {
      send({ type: 'reply', id: m.id })
      void close()
    }
  })
  send({ type: 'ready', url: server.url, pid: process.pid, ...(server.token && { token: server.token }) })
}

main().catch((err: unknown) => {
  if (process.send) send({ type: 'failed', error: err instanceof Error ? (err.stack ?? err.message) : String(err) })
  else console.error(err)
  process.exit(1)
})
