/**
 * A real gateway for integration tests: real HTTP on a loopback port reserved for the test
 * (./ports.ts), the real store of the caller's choice, logs captured as parsed JSON lines so
 * tests can assert on them.
 */
import { Writable } from 'node:stream'
import type { Test } from 'tap'
import { loadConfigObject, type GatewayConfig, type Resource } from '../../src/config/load.js'
import { mintAccessToken } from '../../src/keys/tokens.js'
import { createLogger } from '../../src/log.js'
import { startGateway, type Gateway } from '../../src/main.js'
import { reservePort } from './ports.js'

export interface TestGateway {
  /** The gateway's origin, e.g. http://127.0.0.1:PORT (also its publicUrl). */
  origin: string
  config: GatewayConfig
  gateway: Gateway
  /** Every log line written so far, parsed. */
  logs: Record<string, unknown>[]
  /** Raw log text, for "this secret appears nowhere" assertions. */
  logText(): string
  /** The MCP URL of a resource (by id; default: the first). */
  mcpUrl(resourceId?: string): string
  /** Mints an access token for a resource with the gateway's own key. */
  mint(options?: MintOptions): Promise<string>
  close(): Promise<void>
}

export interface MintOptions {
  resource?: string
  sub?: string
  clientId?: string
  scopes?: readonly string[]
  audience?: string
  ttlSeconds?: number
}

export interface TestGatewayOptions {
  /** Resources; `id`, `name` and `path` default from the index. */
  resources: (Record<string, unknown> & { upstream: string })[]
  store?: Record<string, unknown>
  /** Any other top-level configuration. */
  config?: Record<string, unknown>
  /**
   * The port to listen on, reserved by the caller with reservePort (because something set up
   * before the gateway needs it, or to restart a replica on it); default a new reservation.
   */
  port?: number
  logLevel?: string
}

export async function startTestGateway(t: Test, options: TestGatewayOptions): Promise<TestGateway> {
  const port = options.port ?? (await reservePort(t))
  const origin = `http://127.0.0.1:${port}`
  const config = loadConfigObject(
    {
      publicUrl: origin,
      listen: { host: '127.0.0.1', port },
      shutdown: { graceSeconds: 2 },
      ...(options.store && { store: options.store }),
      ...options.config,
      resources: options.resources.map((r, i) => ({
        id: `r${i}`,
        name: `Resource ${i}`,
        path: i === 0 ? '/mcp' : `/r${i}/mcp`,
        scopes: [{ name: 'mcp' }, { name: 'admin' }],
        requiredScopes: ['mcp'],
        ...r,
      })),
    },
    'test configuration',
  )
  const lines: string[] = []
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      lines.push(...chunk.toString('utf8').split('\n').filter(Boolean))
      done()
    },
  })
  const logger = createLogger(options.logLevel ?? 'info', sink)
  const gateway = await startGateway(config, { logger })
  let closed = false
  const close = async () => {
    if (closed) return
    closed = true
    await gateway.close()
  }
  t.teardown(close)

  const resourceById = (id?: string): Resource => {
    const r = id === undefined ? config.resources[0] : config.resources.find((x) => x.id === id)
    if (!r) throw new Error(`no resource ${id}`)
    return r
  }
  return {
    origin,
    config,
    gateway,
    get logs() {
      return lines.map((l) => JSON.parse(l) as Record<string, unknown>)
    },
    logText: () => lines.join('\n'),
    mcpUrl: (id) => resourceById(id).uri,
    mint: async (m = {}) => {
      const resource = resourceById(m.resource)
      if (!gateway.keystore) throw new Error('this gateway trusts an external issuer')
      return mintAccessToken(
        gateway.keystore,
        config.issuer,
        {
          sub: m.sub ?? 'alice',
          clientId: m.clientId ?? 'test-client',
          audience: m.audience ?? resource.uri,
          scopes: m.scopes ?? resource.requiredScopes,
        },
        m.ttlSeconds ?? 300,
      )
    },
    close,
  }
}
