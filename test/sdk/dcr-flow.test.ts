/**
 * The official MCP SDK client connects to a gateway that has never heard of it: its auth()
 * finds registration_endpoint in the metadata, registers itself (RFC 7591; DCR-01, DCR-02,
 * MCPA-F02), and goes on through login and consent to tokens, MCP calls and a refresh. Then the
 * registration is read and deleted with its registration access token (RFC 7592), after which
 * the client can neither refresh nor authorize. On both stores.
 */
import t, { type Test } from 'tap'
import { auth } from '@modelcontextprotocol/sdk/client/auth.js'
import { Client } from '@modelcontextprotocol/sdk/client/index.js'
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js'
import type { OAuthClientInformationFull } from '@modelcontextprotocol/sdk/shared/auth.js'
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
      login: { static: { users: [{ username: 'alice', passwordHash }] } },
      registration: { enabled: true },
    },
  })
  const mcpUrl = gw.mcpUrl()
  const provider = new MemoryClientProvider({
    // Nothing pre-registered: the SDK registers and saves what it is given.
    redirectUrl: 'http://127.0.0.1:43211/callback',
    clientMetadata: {
      client_name: 'Self-registered <b>MCP</b> client',
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      // MCPA-F02: DCR clients send application_type (not in the SDK's metadata type yet).
      ...({ application_type: 'native' } as object),
    },
  })

  // The SDK keeps only RFC 7591 fields; the RFC 7592 ones are read off the wire.
  let registration = { registration_access_token: '', registration_client_uri: '' }
  const fetchFn: typeof fetch = async (input, init) => {
    const res = await fetch(input, init)
    if (String(input).endsWith('/oauth/register') && res.status === 201) registration = (await res.clone().json()) as typeof registration
    return res
  }

  // 1. Discovery, then registration because clientInformation() is undefined.
  t.equal(await auth(provider, { serverUrl: mcpUrl, fetchFn }), 'REDIRECT')
  const info = provider.info as OAuthClientInformationFull
  t.match(info.client_id, /^dcr\.[A-Za-z0-9_-]{22}$/, 'a registered id: prefixed, never URL-shaped (DCR-05, CIMD-33)')
  t.equal(info.client_secret, undefined, 'no secret for a public client (DCR-02)')
  t.type(info.client_id_issued_at, 'number')
  t.same(info.redirect_uris, [provider.redirectUrl])
  t.equal(registration.registration_client_uri, `${gw.origin}/oauth/register/${info.client_id}`)
  t.ok(registration.registration_access_token)
  const authorizationUrl = provider.authorizationUrl!
  t.equal(authorizationUrl.searchParams.get('client_id'), info.client_id)

  // 2. Login and consent: the self-chosen name is escaped and marked as unverified (SEC-24).
  const browser = new FormBrowser(gw.origin)
  const login = await browser.get(authorizationUrl.href)
  t.equal(login.status, 200)
  const consent = await browser.submit(login, { username: 'alice', password: 'alice-password' })
  t.equal(consent.status, 200)
  t.match(consent.html, /Self-registered &#60;b&#62;MCP&#60;\/b&#62; client/)
  t.notMatch(consent.html, /<b>MCP<\/b>/)
  t.match(consent.html, /registered itself on \d{4}-\d{2}-\d{2}; nothing about it was verified/)
  const back = await browser.submit(consent, { decision: 'allow' })
  t.equal(back.status, 303)
  const code = new URL(back.location!).searchParams.get('code')!

  // 3. Tokens, MCP through the gateway, refresh.
  t.equal(await auth(provider, { serverUrl: mcpUrl, authorizationCode: code }), 'AUTHORIZED')
  const tokens = provider.savedTokens!
  t.ok(tokens.refresh_token, 'refresh_token was registered, so a refresh token is issued')
  const payload = JSON.parse(Buffer.from(tokens.access_token.split('.')[1]!, 'base64url').toString())
  t.equal(payload.client_id, info.client_id)
  const client = new Client({ name: 'dcr-flow', version: '1.0.0' })
  await client.connect(new StreamableHTTPClientTransport(new URL(mcpUrl), { authProvider: provider }))
  t.ok((await client.listTools()).tools.some((tool) => tool.name === 'echo'))
  await client.close()
  t.equal(await auth(provider, { serverUrl: mcpUrl }), 'AUTHORIZED', 'refreshed')

  // 4. RFC 7592 read with the registration access token.
  const read = await fetch(registration.registration_client_uri, {
    headers: { authorization: `Bearer ${registration.registration_access_token}` },
  })
  t.equal(read.status, 200)
  t.equal(read.headers.get('cache-control'), 'no-store')
  t.match(await read.json(), {
    client_id: info.client_id,
    client_name: 'Self-registered <b>MCP</b> client',
    application_type: 'native',
    token_endpoint_auth_method: 'none',
  })

  // 5. Delete: refresh and authorization both stop working.
  const del = await fetch(registration.registration_client_uri, {
    method: 'DELETE',
    headers: { authorization: `Bearer ${registration.registration_access_token}` },
  })
  t.equal(del.status, 204)
  const refresh = await fetch(`${gw.origin}/oauth/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ grant_type: 'refresh_token', refresh_token: provider.savedTokens!.refresh_token!, client_id: info.client_id }),
  })
  t.equal(refresh.status, 401, 'a deleted client cannot refresh')
  t.equal(((await refresh.json()) as { error: string }).error, 'invalid_client')
  const again = await browser.get(authorizationUrl.href)
  t.equal(again.status, 400, 'a deleted client cannot authorize')
  t.match(again.html, /not known to the gateway/)
  t.equal(again.location, undefined, 'and is not redirected anywhere')
  t.notMatch(gw.logText(), registration.registration_access_token, 'no registration access token in the log')
}

t.test('SDK registers itself and completes the flow (DCR-01, DCR-02, MCPA-F02), memory store', (t) => flow(t))

t.test('SDK registers itself and completes the flow, Redis store', async (t) => {
  const redis = await redisForTests(t)
  if (!redis) return
  await flow(t, { type: 'redis', redis: redis.storeConfig() })
  const keys = await redis.raw.keys(`${redis.keyPrefix}*`)
  t.ok(keys.some((k) => k.includes(':registration-rate:')), 'the rate counter lives in Redis')
  t.notOk(keys.some((k) => k.includes(':registered-client:')), 'the deleted registration is gone from Redis')
})
