/**
 * The whole chain a person goes through, driven by the MCP SDK's own OAuth client (`auth()`
 * with an OAuthClientProvider and a pre-registered client): discovery from the 401 challenge
 * and PRM → authorization with login and consent → code → tokens → MCP calls through the
 * gateway → refresh. On both stores.
 */
import t, { type Test } from 'tap'
import { auth } from '@modelcontextprotocol/sdk/client/auth.js'
import { Client } from '@modelcontextprotocol/sdk/client/index.js'
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js'
import { hashPassword } from '../../src/login/passwords.js'
import { startSdk1Upstream } from '../fixtures/mcp-upstream.js'
import { FormBrowser } from '../helpers/form-browser.js'
import { MemoryClientProvider } from '../helpers/sdk-provider.js'
import { startTestGateway } from '../helpers/gateway.js'
import { redisForTests } from '../helpers/redis.js'

const upstream = await startSdk1Upstream({ stateful: true, jsonResponse: false })
t.teardown(() => upstream.close())
const passwordHash = await hashPassword('alice-password')


async function flow(t: Test, store?: Record<string, unknown>) {
  const gw = await startTestGateway(t, {
    ...(store && { store }),
    resources: [{ upstream: upstream.url, scopes: [{ name: 'mcp', description: 'Use the tools' }, { name: 'admin' }] }],
    config: {
      login: { static: { users: [{ username: 'alice', passwordHash, email: 'alice@example.com' }] } },
      clients: [{ clientId: 'test-client', name: 'Test MCP client', redirectUris: ['http://127.0.0.1/callback'] }],
    },
  })
  const mcpUrl = gw.mcpUrl()
  const provider = new MemoryClientProvider({ info: { client_id: 'test-client' }, redirectUrl: 'http://127.0.0.1:43210/callback' })

  // 1. The SDK discovers everything from the MCP URL and sends the person to /authorize.
  t.equal(await auth(provider, { serverUrl: mcpUrl }), 'REDIRECT')
  const authorizationUrl = provider.authorizationUrl!
  t.equal(authorizationUrl.origin + authorizationUrl.pathname, `${gw.origin}/oauth/authorize`)
  t.equal(authorizationUrl.searchParams.get('resource'), mcpUrl, 'the SDK sent the resource indicator (MCPA-46)')
  t.equal(authorizationUrl.searchParams.get('code_challenge_method'), 'S256')

  // 2. The person signs in and consents.
  const browser = new FormBrowser(gw.origin)
  const login = await browser.get(authorizationUrl.href)
  t.equal(login.status, 200)
  t.match(login.html, /Sign in to continue/)
  const consent = await browser.submit(login, { username: 'alice', password: 'alice-password' })
  t.equal(consent.status, 200)
  t.match(consent.html, /Allow <span>Test MCP client<\/span>/)
  t.match(consent.html, /http:\/\/127\.0\.0\.1:43210/, 'the redirect origin is shown (MCPA-78)')
  const back = await browser.submit(consent, { decision: 'allow' })
  t.equal(back.status, 303)
  const callback = new URL(back.location!)
  t.equal(callback.origin + callback.pathname, 'http://127.0.0.1:43210/callback', 'loopback port ignored, path exact')
  t.equal(callback.searchParams.get('state'), 'state-123')
  t.equal(callback.searchParams.get('iss'), gw.config.issuer, 'RFC 9207 iss (MCPA-F01)')
  const code = callback.searchParams.get('code')!

  // 3. The SDK exchanges the code.
  t.equal(await auth(provider, { serverUrl: mcpUrl, authorizationCode: code }), 'AUTHORIZED')
  const tokens = provider.savedTokens!
  t.equal(tokens.token_type, 'Bearer')
  // Without a challenge in hand the SDK asks for all of scopes_supported (MCPA-40).
  const asked = authorizationUrl.searchParams.get('scope')
  t.equal(asked, 'mcp admin')
  t.equal(tokens.scope, asked)
  t.ok(tokens.refresh_token, 'a refresh token for a client allowed to refresh')
  const [header, payload] = tokens.access_token.split('.').slice(0, 2).map((p) => JSON.parse(Buffer.from(p, 'base64url').toString()))
  t.match(header, { typ: 'at+jwt', alg: 'ES256' })
  t.match(payload, { iss: gw.config.issuer, sub: 'static:alice', aud: mcpUrl, client_id: 'test-client', scope: 'mcp admin' })

  // 4. MCP calls through the gateway with that token, the SDK's authProvider attaching it.
  const client = new Client({ name: 'sdk-flow', version: '1.0.0' })
  await client.connect(new StreamableHTTPClientTransport(new URL(mcpUrl), { authProvider: provider }))
  t.ok((await client.listTools()).tools.some((tool) => tool.name === 'echo'))
  await client.close()

  // 5. Refresh: the SDK uses the refresh token when asked to authorize again.
  const before = tokens.refresh_token
  t.equal(await auth(provider, { serverUrl: mcpUrl }), 'AUTHORIZED')
  t.not(provider.savedTokens!.refresh_token, before, 'the refresh token rotated (MCPA-64)')
  t.not(provider.savedTokens!.access_token, tokens.access_token)
  const again = new Client({ name: 'sdk-flow-2', version: '1.0.0' })
  await again.connect(new StreamableHTTPClientTransport(new URL(mcpUrl), { authProvider: provider }))
  t.ok((await again.listTools()).tools.length > 0, 'the refreshed token works')
  await again.close()

  // 6. A second authorization by the same person and client skips consent (remembered).
  const provider2 = new MemoryClientProvider({ info: { client_id: 'test-client' }, redirectUrl: 'http://127.0.0.1:50000/callback' })
  t.equal(await auth(provider2, { serverUrl: mcpUrl }), 'REDIRECT')
  const direct = await browser.get(provider2.authorizationUrl!.href)
  t.equal(direct.status, 302, 'signed in and consented before: straight back to the client')
  t.ok(new URL(direct.location!).searchParams.get('code'))
  t.notMatch(gw.logText(), tokens.refresh_token!, 'no refresh token in the log (MCPA-62)')
  t.notMatch(gw.logText(), code, 'no code in the log')
}

t.test('SDK auth() end to end, memory store', (t) => flow(t))

t.test('SDK auth() end to end, Redis store', async (t) => {
  const redis = await redisForTests(t)
  if (!redis) return
  await flow(t, { type: 'redis', redis: redis.storeConfig() })
  const keys = await redis.raw.keys(`${redis.keyPrefix}*`)
  t.ok(keys.some((k) => k.includes(':grant:')), 'grants live in Redis')
  t.ok(keys.some((k) => k.includes(':refresh:')), 'refresh tokens live in Redis, by hash')
})
