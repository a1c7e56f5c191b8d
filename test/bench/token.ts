/**
 * The token endpoint on Redis (`npm run bench`; not a test): authorization-code exchanges and
 * refreshes per second, and per core of the gateway (answers per second of its CPU time).
 *
 * The gateway runs in its own process (servers.ts) with a Redis store under a fresh key prefix
 * (GATEHOUSE_TEST_REDIS_URL, default redis://127.0.0.1:6379), one public client, the token
 * endpoint's rate limits off and log level info. Codes are issued beforehand straight into the
 * store, as /authorize would after a sign-in and consent (Grants.issueCode, PKCE S256), so only
 * the token endpoint is measured: client lookup, code redemption (one Redis round trip to take
 * the code), PKCE, the grant and its refresh token written, an ES256 access token signed. The
 * refreshes then rotate the refresh tokens those exchanges returned, one each.
 *
 * Environment: BENCH_TOKEN_SECONDS (per phase, default 5), BENCH_TOKEN_CONNECTIONS (default 16),
 * BENCH_PIN as in proxy.ts (pin the gateway to one core and "per core" is exact).
 */
import autocannon from 'autocannon'
import { Redis } from 'ioredis'
import { createHash, randomBytes } from 'node:crypto'
import { loadConfigObject } from '../../src/config/load.js'
import { Grants } from '../../src/oauth/grants/grants.js'
import { createStore } from '../../src/store/create.js'
import { closeAll, pinLoadGenerator, ServerProcess } from './processes.js'
import { fmtInt } from './stats.js'

const SECONDS = Number(process.env.BENCH_TOKEN_SECONDS ?? 5)
const CONNECTIONS = Number(process.env.BENCH_TOKEN_CONNECTIONS ?? 16)
const REDIS_URL = process.env.GATEHOUSE_TEST_REDIS_URL ?? 'redis://127.0.0.1:6379'
const CLIENT_ID = 'bench-app'
const REDIRECT = 'http://127.0.0.1/callback'
const log = (s: string) => process.stderr.write(`${s}\n`)

const keyPrefix = `gatehouse-bench:${randomBytes(6).toString('hex')}:`
const verifier = randomBytes(32).toString('base64url')
const challenge = createHash('sha256').update(verifier).digest('base64url')

interface Phase {
  label: string
  answers: number
  seconds: number
  gatewayCpuSeconds: number
  failures: number
}

/** Runs for SECONDS, or (`once`) until every body was sent once. */
async function phase(gateway: ServerProcess, label: string, tokenUrl: string, bodies: string[], once: boolean, onAnswer?: (body: string) => void): Promise<Phase> {
  let next = 0
  let answers = 0
  let failures = 0
  const cpu0 = await gateway.cpuMicros()
  const started = performance.now()
  await new Promise<void>((resolve, reject) => {
    const instance = autocannon(
      {
        url: tokenUrl,
        connections: CONNECTIONS,
        ...(once ? { amount: bodies.length } : { duration: SECONDS }),
        requests: [
          {
            method: 'POST',
            headers: { 'content-type': 'application/x-www-form-urlencoded' },
            // One fresh code (or refresh token) per request; the run stops before they run out.
            setupRequest: (req: Record<string, unknown>) => ({ ...req, body: bodies[next++ % bodies.length] }),
            onResponse: (status: number, body: string) => {
              if (status === 200) {
                answers++
                onAnswer?.(body)
              } else failures++
            },
          },
        ],
      } as unknown as autocannon.Options,
      (err) => (err ? reject(err) : resolve()),
    )
    void instance
  })
  const seconds = (performance.now() - started) / 1000
  const gatewayCpuSeconds = ((await gateway.cpuMicros()) - cpu0) / 1e6
  if (next > bodies.length) throw new Error(`${label}: ran out of codes; issue more`)
  return { label, answers, seconds, gatewayCpuSeconds, failures }
}

let exitCode = 1
const store = createStore({ type: 'redis', redis: { url: REDIS_URL, keyPrefix } } as never, { warn: () => {}, info: () => {}, error: () => {} } as never)
try {
  pinLoadGenerator()
  const gateway = await ServerProcess.start('token gateway (info)', {
    role: 'gateway',
    upstream: 'http://127.0.0.1:9/mcp',
    logLevel: 'info',
    config: {
      store: { type: 'redis', redis: { url: REDIS_URL, keyPrefix } },
      rateLimits: { token: { perAddress: { requests: 0, windowSeconds: 60 }, perClient: { requests: 0, windowSeconds: 60 } } },
      clients: [{ clientId: CLIENT_ID, name: 'Bench app', redirectUris: [REDIRECT], tokenEndpointAuthMethod: 'none' }],
    },
  })
  const origin = new URL(gateway.url).origin
  const config = loadConfigObject(
    { publicUrl: origin, store: { type: 'memory' }, resources: [{ id: 'bench', name: 'Bench', path: '/mcp', upstream: 'http://127.0.0.1:9/mcp', scopes: [{ name: 'mcp' }], requiredScopes: ['mcp'] }] },
    'token benchmark',
  )
  const grants = new Grants(store, config.authorizationServer)
  // Enough codes for a fast machine: 4,000 exchanges a second.
  const count = 4000 * SECONDS
  log(`issuing ${fmtInt(count)} authorization codes into Redis…`)
  const bodies: string[] = []
  for (let i = 0; i < count; i += 500) {
    const batch = await Promise.all(
      Array.from({ length: Math.min(500, count - i) }, () =>
        grants.issueCode({
          grant: grants.newGrant({ sub: 'static:bench', clientId: CLIENT_ID, resourceId: 'bench', scopes: ['mcp'] }),
          redirectUri: REDIRECT,
          redirectUriGiven: true,
          codeChallenge: challenge,
          refreshAllowed: true,
        }),
      ),
    )
    for (const code of batch) {
      bodies.push(new URLSearchParams({ grant_type: 'authorization_code', code, code_verifier: verifier, client_id: CLIENT_ID, redirect_uri: REDIRECT }).toString())
    }
  }
  const tokenUrl = `${origin}/oauth/token`
  const refreshTokens: string[] = []
  log('exchanging codes…')
  const exchange = await phase(gateway, 'authorization-code exchanges', tokenUrl, bodies, false, (body) => {
    refreshTokens.push((JSON.parse(body) as { refresh_token: string }).refresh_token)
  })
  log('refreshing…')
  const refreshBodies = refreshTokens.map((t) => new URLSearchParams({ grant_type: 'refresh_token', refresh_token: t, client_id: CLIENT_ID }).toString())
  // Each refresh token once: as many refreshes as there were exchanges.
  const refresh = await phase(gateway, 'refreshes', tokenUrl, refreshBodies, true)
  await gateway.close()
  const lines = [exchange, refresh].map(
    (p) =>
      `  ${p.label.padEnd(30)} ${fmtInt(p.answers / p.seconds).padStart(6)} /s   ${fmtInt(p.answers / p.gatewayCpuSeconds).padStart(6)} per core (per second of gateway CPU)` +
      `   ${fmtInt(p.answers)} answered 200, ${p.failures} other`,
  )
  process.stdout.write(
    `\nGatehouse token endpoint benchmark — Redis ${new URL(REDIS_URL).host}, ${CONNECTIONS} connections, ${SECONDS} s per phase, public client + PKCE, log info\n${lines.join('\n')}\n`,
  )
  exitCode = exchange.failures + refresh.failures > 0 ? 1 : 0
} catch (err) {
  process.stderr.write(`token benchmark failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`)
} finally {
  await closeAll()
  await store.close()
  // Everything under the bench's prefix goes: codes, grants, refresh tokens.
  const raw = new Redis(REDIS_URL)
  let cursor = '0'
  do {
    const [next, keys] = await raw.scan(cursor, 'MATCH', `${keyPrefix}*`, 'COUNT', 1000)
    if (keys.length > 0) await raw.unlink(...keys)
    cursor = next
  } while (cursor !== '0')
  raw.disconnect()
}
process.exit(exitCode)
