/**
 * SEP-990 end to end, with independent parts: the SDK's CrossAppAccessProvider asks an enterprise
 * IdP for an ID-JAG by RFC 8693 token exchange (test/fixtures/enterprise-idp.ts performs it and
 * signs the grant), presents it at the gateway's token endpoint (jwt-bearer grant), and calls a
 * real MCP server through the gateway as the person the IdP vouched for. On the memory store and
 * on Redis with two replicas sharing the jti replay cache (XAA-06).
 */
import { Client, CrossAppAccessProvider, discoverAndRequestJwtAuthGrant, StreamableHTTPClientTransport } from '@modelcontextprotocol/client'
import t, { type Test } from 'tap'
import { startEnterpriseIdp, type EnterpriseIdp } from '../fixtures/enterprise-idp.js'
import { startSdk1Upstream } from '../fixtures/mcp-upstream.js'
import { startTestGateway, type TestGateway } from '../helpers/gateway.js'
import { redisForTests } from '../helpers/redis.js'

const JWT_BEARER = 'urn:ietf:params:oauth:grant-type:jwt-bearer'
const AGENT_SECRET = 'agent-app-secret-4e8b2d6f0a3c9e1b7d5f2a8c'
const IDP_CLIENT = { clientId: 'agent-at-idp', clientSecret: 'agent-idp-secret-9c1e5a3f7b2d8e0a4c6f', resourceClientId: 'agent-app' }

const upstream = await startSdk1Upstream({ stateful: false, jsonResponse: true })
t.teardown(() => upstream.close())
const idp = await startEnterpriseIdp({ clients: [IDP_CLIENT] })
t.teardown(() => idp.close())

async function startGateway(t: Test, store?: Record<string, unknown>): Promise<TestGateway> {
  return startTestGateway(t, {
    ...(store && { store }),
    resources: [
      {
        upstream: upstream.url,
        scopes: [{ name: 'files:read' }, { name: 'files:write' }],
        requiredScopes: ['files:read'],
        access: { emailDomains: ['example.com'] },
        identityHeaders: { subject: 'X-User-Sub', email: 'X-User-Email' },
      },
    ],
    config: {
      enterpriseAuthorization: { issuers: [{ id: 'corp', issuer: idp.issuer, jwksUri: idp.jwksUri, clients: ['agent-app'] }] },
      clients: [{ clientId: 'agent-app', name: 'Agent app', grantTypes: [JWT_BEARER], tokenEndpointAuthMethod: 'client_secret_basic', secret: AGENT_SECRET }],
    },
  })
}

/** The agent as the SDK documents it: an ID token from the person's sign-in, exchanged for an ID-JAG. */
function crossAppProvider(gw: TestGateway, idp: EnterpriseIdp, person: { sub: string; email: string }) {
  return new CrossAppAccessProvider({
    assertion: async (ctx) =>
      (
        await discoverAndRequestJwtAuthGrant({
          idpUrl: idp.issuer,
          audience: ctx.authorizationServerUrl,
          resource: ctx.resourceUrl,
          idToken: await idp.idTokenFor(person, IDP_CLIENT.clientId),
          clientId: IDP_CLIENT.clientId,
          clientSecret: IDP_CLIENT.clientSecret,
          ...(ctx.scope !== undefined && { scope: ctx.scope }),
          fetchFn: ctx.fetchFn,
        })
      ).jwtAuthGrant,
    clientId: 'agent-app',
    clientSecret: AGENT_SECRET,
    expectedIssuer: gw.config.issuer,
  })
}

async function flow(t: Test, gw: TestGateway) {
  const exchangesBefore = idp.exchanges.length
  const provider = crossAppProvider(gw, idp, { sub: 'U-alice', email: 'alice@example.com' })
  const client = new Client({ name: 'cross-app-agent', version: '1.0.0' })
  await client.connect(new StreamableHTTPClientTransport(new URL(gw.mcpUrl()), { authProvider: provider }))
  const whoami = await client.callTool({ name: 'whoami', arguments: {} })
  const seen = JSON.stringify(whoami.content)
  t.match(seen, /corp:U-alice/, 'the upstream sees the person the IdP vouched for (XAA-07)')
  t.match(seen, /alice@example\.com/)
  t.notMatch(seen, /authorization/i, 'and no credential of the agent (UPS-01)')
  await client.close()

  const exchange = idp.exchanges[exchangesBefore]!
  t.equal(exchange.grant_type, 'urn:ietf:params:oauth:grant-type:token-exchange', 'the IdP performed an RFC 8693 token exchange')
  t.equal(exchange.audience, gw.config.issuer, 'for this authorization server as audience')
  t.equal(exchange.resource, gw.mcpUrl(), 'and this MCP server as resource')
  const tokens = provider.tokens()!
  t.notOk(tokens.refresh_token, 'no refresh token')
  const claims = JSON.parse(Buffer.from(tokens.access_token.split('.')[1]!, 'base64url').toString())
  t.match(claims, { sub: 'corp:U-alice', client_id: 'agent-app', aud: gw.mcpUrl(), email: 'alice@example.com' })

  // The resource's access rules decide as after a browser login: a person they refuse gets nothing.
  const mallory = crossAppProvider(gw, idp, { sub: 'U-mallory', email: 'mallory@elsewhere.example.org' })
  const refused = new Client({ name: 'cross-app-agent', version: '1.0.0' })
  const outcome = await refused.connect(new StreamableHTTPClientTransport(new URL(gw.mcpUrl()), { authProvider: mallory })).then(
    () => 'connected',
    (err: Error) => err.message,
  )
  t.match(outcome, /invalid_grant|not allowed/, 'access rules refuse the person (XAA-07)')
  t.notOk(mallory.tokens(), 'no token')
}

t.test('CrossAppAccessProvider through the gateway, memory store (SEP-990)', async (t) => {
  const gw = await startGateway(t)
  await flow(t, gw)
  t.notMatch(gw.logText(), AGENT_SECRET, 'the client secret never reaches the log')
})

t.test('Redis store, two replicas: one ID-JAG is used once across both (XAA-06)', async (t) => {
  const redis = await redisForTests(t)
  if (!redis) return
  const store = { type: 'redis', redis: redis.storeConfig() }
  const a = await startGateway(t, store)
  await flow(t, a)
  const b = await startGateway(t, store)
  // One jti; the audience differs per replica here only because each test replica has its own origin.
  const jti = `shared-${Date.now()}`
  const grantFor = (gw: TestGateway) =>
    idp.signIdJag({ sub: 'U-alice', aud: gw.config.issuer, client_id: 'agent-app', resource: gw.mcpUrl(), email: 'alice@example.com', jti })
  const exchange = async (gw: TestGateway) => {
    const res = await fetch(`${gw.origin}/oauth/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: `Basic ${Buffer.from(`agent-app:${AGENT_SECRET}`).toString('base64')}` },
      body: new URLSearchParams({ grant_type: JWT_BEARER, assertion: await grantFor(gw) }),
    })
    return { status: res.status, body: (await res.json()) as Record<string, unknown> }
  }
  t.equal((await exchange(a)).status, 200, 'first use at replica A')
  const replay = await exchange(b)
  t.equal(replay.status, 400, 'the same jti at replica B is refused')
  t.equal(replay.body.error, 'invalid_grant')
})
