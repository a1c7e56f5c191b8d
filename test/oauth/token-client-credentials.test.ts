/**
 * Machine clients (OAuth 2.1 §4.2, RFC 6749 §4.4; MCP extension SEP-1046; CC-01..06): the
 * official 2.x SDK's ClientCredentialsProvider (secret) and PrivateKeyJwtProvider get tokens
 * from the gateway on their own and call a real MCP server through it, on the memory store and
 * on Redis; then every check of the grant refuses what it must, each citing its rule.
 */
import { generateKeyPairSync, randomUUID } from 'node:crypto'
import { Client, ClientCredentialsProvider, PrivateKeyJwtProvider, StreamableHTTPClientTransport } from '@modelcontextprotocol/client'
import { exportJWK, SignJWT } from 'jose'
import t, { type Test } from 'tap'
import { ConfigError, loadConfigObject } from '../../src/config/load.js'
import { machineMayAccess, mayAccess, usersMatch } from '../../src/policy/access-rules.js'
import { McpPolicy } from '../../src/policy/mcp-rules.js'
import { startSdk1Upstream } from '../fixtures/mcp-upstream.js'
import { connectSdk2Client } from '../fixtures/mcp-clients.js'
import { startTestGateway, type TestGateway } from '../helpers/gateway.js'
import { redisForTests } from '../helpers/redis.js'

const upstream = await startSdk1Upstream({ stateful: false, jsonResponse: true })
t.teardown(() => upstream.close())

const CI_SECRET = 'ci-bot-secret-5b9e0c2d7a4f1e8b3c6d9a0f'
const OTHER_SECRET = 'other-bot-secret-1c3e5a7b9d0f2e4a6c8b0d1e'
const WEB_SECRET = 'web-app-secret-7d2c9e4b1a6f3e8d0c5b2a9f'
const { privateKey: signerKey, publicKey: signerPublic } = generateKeyPairSync('ec', { namedCurve: 'P-256' })
const signerJwk = { ...(await exportJWK(signerPublic)), kid: 'signer-1', alg: 'ES256', use: 'sig' }
const signerPrivateJwk = { ...(await exportJWK(signerKey)), kid: 'signer-1', alg: 'ES256' }

const SCOPES = [{ name: 'files:read' }, { name: 'files:write' }, { name: 'admin' }]

async function startGateway(t: Test, store?: Record<string, unknown>): Promise<TestGateway> {
  return startTestGateway(t, {
    ...(store && { store }),
    resources: [
      {
        upstream: upstream.url,
        default: true,
        scopes: SCOPES,
        requiredScopes: ['files:read'],
        policy: {
          rules: [
            // Only the CI bot may echo; a person's rule naming the bot's subject must not admit it (CC-05).
            { id: 'ci-echo', method: 'tools/call', name: 'echo', clients: ['ci-bot'] },
            { id: 'people-whoami', method: 'tools/call', name: 'whoami', users: { subjects: ['client:ci-bot', 'static:alice'] } },
          ],
        },
      },
      { id: 'other', upstream: upstream.url, scopes: SCOPES, requiredScopes: ['files:read'], access: { subjects: ['static:alice'], clients: ['other-bot'] } },
    ],
    config: {
      clients: [
        {
          clientId: 'ci-bot',
          name: 'CI bot',
          grantTypes: ['client_credentials'],
          tokenEndpointAuthMethod: 'client_secret_basic',
          secret: CI_SECRET,
          resources: ['r0'],
          scopes: ['files:read', 'files:write'],
        },
        { clientId: 'key-bot', name: 'Key bot', grantTypes: ['client_credentials'], tokenEndpointAuthMethod: 'private_key_jwt', jwks: { keys: [signerJwk] } },
        { clientId: 'other-bot', name: 'Other bot', grantTypes: ['client_credentials'], tokenEndpointAuthMethod: 'client_secret_post', secret: OTHER_SECRET },
        {
          clientId: 'web-app',
          name: 'Web app',
          redirectUris: ['https://app.example.com/callback'],
          tokenEndpointAuthMethod: 'client_secret_basic',
          secret: WEB_SECRET,
        },
      ],
    },
  })
}

function claimsOf(token: string): Record<string, unknown> {
  return JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString())
}

async function tokenRequest(gw: TestGateway, form: Record<string, string>, basic?: [string, string]) {
  const headers: Record<string, string> = { 'content-type': 'application/x-www-form-urlencoded' }
  if (basic) headers.authorization = `Basic ${Buffer.from(`${encodeURIComponent(basic[0])}:${encodeURIComponent(basic[1])}`).toString('base64')}`
  const res = await fetch(`${gw.origin}/oauth/token`, { method: 'POST', headers, body: new URLSearchParams(form) })
  return { status: res.status, body: (await res.json()) as Record<string, unknown> }
}

async function sdkFlows(t: Test, gw: TestGateway) {
  const mcpUrl = gw.mcpUrl()

  // ClientCredentialsProvider: client_secret_basic; it asks for the scope the 401 challenge names.
  const secretProvider = new ClientCredentialsProvider({ clientId: 'ci-bot', clientSecret: CI_SECRET, expectedIssuer: gw.config.issuer })
  const ci = new Client({ name: 'ci-bot', version: '1.0.0' })
  await ci.connect(new StreamableHTTPClientTransport(new URL(mcpUrl), { authProvider: secretProvider }))
  const echoed = await ci.callTool({ name: 'echo', arguments: { text: 'deploy' } })
  t.match(JSON.stringify(echoed.content), /deploy/, 'the CI bot reached the upstream through the gateway and may call echo')
  const tokens = secretProvider.tokens()!
  t.equal(tokens.token_type, 'Bearer')
  t.notOk(tokens.refresh_token, 'no refresh token for client_credentials (CC-02, RFC 6749 §4.4.3)')
  t.equal(tokens.scope, 'files:read', 'the SDK asked for what the challenge named (MCPA-40) and got it')
  t.match(claimsOf(tokens.access_token), { sub: 'client:ci-bot', client_id: 'ci-bot', aud: mcpUrl, iss: gw.config.issuer })
  const whoami = await ci.callTool({ name: 'whoami', arguments: {} }).then(
    (r) => r,
    (err: Error) => err,
  )
  t.ok(whoami instanceof Error || (whoami as { isError?: boolean }).isError, 'a users rule naming client:ci-bot does not admit the machine (CC-05)')
  await ci.close()

  // PrivateKeyJwtProvider: RFC 7523 §2.2 assertion instead of a secret (CC-06).
  const keyProvider = new PrivateKeyJwtProvider({ clientId: 'key-bot', privateKey: signerPrivateJwk, algorithm: 'ES256', expectedIssuer: gw.config.issuer })
  const keyBot = new Client({ name: 'key-bot', version: '1.0.0' })
  await keyBot.connect(new StreamableHTTPClientTransport(new URL(mcpUrl), { authProvider: keyProvider }))
  t.ok((await keyBot.listTools()).tools.length > 0, 'the private_key_jwt machine client lists tools')
  const denied = await keyBot.callTool({ name: 'echo', arguments: { text: 'x' } }).then(
    (r) => r,
    (err: Error) => err,
  )
  t.ok(denied instanceof Error || (denied as { isError?: boolean }).isError, 'echo is for the CI bot only: another machine client is refused')
  const keyTokens = keyProvider.tokens()!
  t.equal(keyTokens.scope, 'files:read', 'the challenged scope')
  t.match(claimsOf(keyTokens.access_token), { sub: 'client:key-bot', client_id: 'key-bot' })
  await keyBot.close()
}

t.test('SDK machine providers end to end, memory store (CC-01..06)', async (t) => {
  const gw = await startGateway(t)
  await sdkFlows(t, gw)
  t.notMatch(gw.logText(), CI_SECRET, 'the client secret never reaches the log')
})

t.test('SDK machine providers end to end, Redis store: assertion jti shared by two replicas (CC-06)', async (t) => {
  const redis = await redisForTests(t)
  if (!redis) return
  const store = { type: 'redis', redis: redis.storeConfig() }
  const a = await startGateway(t, store)
  await sdkFlows(t, a)
  const b = await startGateway(t, store)
  // One assertion, presented at two replicas (audience = the issuer they share is per-origin here,
  // so each replica gets an assertion for itself, with the same jti).
  const jti = randomUUID()
  const assertionFor = (gw: TestGateway) =>
    new SignJWT({})
      .setProtectedHeader({ alg: 'ES256', kid: 'signer-1' })
      .setIssuer('key-bot')
      .setSubject('key-bot')
      .setAudience(gw.config.issuer)
      .setIssuedAt()
      .setExpirationTime('2m')
      .setJti(jti)
      .sign(signerKey)
  const form = (assertion: string) => ({
    grant_type: 'client_credentials',
    client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer',
    client_assertion: assertion,
  })
  const first = await tokenRequest(a, form(await assertionFor(a)))
  t.equal(first.status, 200, `first use of the jti at replica A ${JSON.stringify(first.body)}`)
  const replay = await tokenRequest(b, form(await assertionFor(b)))
  t.equal(replay.status, 401, 'the same jti at replica B is a replay (CC-06, RFC 7523 §3 item 7)')
  t.equal(replay.body.error, 'invalid_client')
})

t.test('the grant refuses what it must, in the protocol\'s own errors', async (t) => {
  const gw = await startGateway(t)
  const ci: [string, string] = ['ci-bot', CI_SECRET]
  const grant = { grant_type: 'client_credentials' }

  const metadata = (await (await fetch(`${gw.origin}/.well-known/oauth-authorization-server`)).json()) as Record<string, string[]>
  t.ok(metadata.grant_types_supported!.includes('client_credentials'), 'metadata advertises the grant')
  t.ok(metadata.token_endpoint_auth_methods_supported!.includes('private_key_jwt'), 'and private_key_jwt, a static client uses it')

  const ok = await tokenRequest(gw, grant, ci)
  t.equal(ok.status, 200, 'no resource: the default resource (CC-03, OQ-06)')
  t.equal(claimsOf(ok.body.access_token as string).aud, gw.mcpUrl())
  t.equal(ok.body.scope, 'files:read files:write', 'no scope: everything the client may have there (RFC 6749 §3.3)')
  t.notOk('refresh_token' in ok.body, 'no refresh token (CC-02)')

  const narrowed = await tokenRequest(gw, { ...grant, scope: 'files:read admin unknown:scope' }, ci)
  t.equal(narrowed.body.scope, 'files:read', 'asked ∩ allowed ∩ known (CC-04)')

  const bad = async (form: Record<string, string>, basic: [string, string] | undefined, status: number, error: string, why: string) => {
    const res = await tokenRequest(gw, { ...grant, ...form }, basic)
    t.equal(res.status, status, `${why}: ${status}`)
    t.equal(res.body.error, error, `${why}: ${error}`)
    t.notOk(res.body.access_token, `${why}: no token`)
  }
  await bad({ scope: 'admin' }, ci, 400, 'invalid_scope', 'only a scope the client may not have (CC-04)')
  await bad({ scope: 'nothing:known' }, ci, 400, 'invalid_scope', 'only unknown scopes (CC-04)')
  await bad({ resource: gw.mcpUrl('other') }, ci, 400, 'invalid_target', 'a resource outside the client\'s limit (CC-03)')
  await bad({ resource: 'https://elsewhere.example.com/mcp' }, ci, 400, 'invalid_target', 'an unknown resource (CC-03, RFC 8707 §2)')
  await bad({}, ['ci-bot', 'wrong-secret-wrong-secret-wrong-secret'], 401, 'invalid_client', 'a wrong secret (CC-01)')
  await bad({ client_id: 'ci-bot' }, undefined, 401, 'invalid_client', 'the client id alone: a confidential client must authenticate (CC-01)')
  await bad({}, ['web-app', WEB_SECRET], 400, 'unauthorized_client', 'a client not registered for the grant')
  await bad({ resource: gw.mcpUrl('other'), client_id: 'key-bot', client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer', client_assertion: 'not.a.jwt' }, undefined, 401, 'invalid_client', 'a malformed assertion (CC-06)')
  const other = await tokenRequest(gw, { ...grant, client_id: 'other-bot', client_secret: OTHER_SECRET, resource: gw.mcpUrl('other') })
  t.equal(other.status, 200, 'client_secret_post; the resource\'s access.clients names this machine client')
  t.equal(claimsOf(other.body.access_token as string).aud, gw.mcpUrl('other'))

  // A person may not use a machine-only grant's subject, nor a machine client the browser flow.
  const authorize = await fetch(
    `${gw.origin}/oauth/authorize?response_type=code&client_id=ci-bot&redirect_uri=${encodeURIComponent('https://app.example.com/callback')}&code_challenge=${'a'.repeat(43)}&code_challenge_method=S256`,
    { redirect: 'manual' },
  )
  t.equal(authorize.status, 400, 'a machine-only client cannot start the authorization code flow')
  t.equal(authorize.headers.get('location'), null, 'and nothing is redirected for it (O21-09)')

  // The upstream sees the machine identity; a person-token for the same rule is refused.
  const person = await gw.mint({ sub: 'static:alice', clientId: 'web-app', scopes: ['files:read'] })
  const asPerson = await connectSdk2Client(gw.mcpUrl(), { token: person })
  const echo = await asPerson.callTool({ name: 'echo', arguments: { text: 'x' } }).then(
    (r) => r,
    (err: Error) => err,
  )
  t.ok(echo instanceof Error || (echo as { isError?: boolean }).isError, 'a rule with clients: [ci-bot] refuses a person (CC-05)')
  await asPerson.close()
  const forged = await gw.mint({ sub: 'client:ci-bot', clientId: 'web-app', scopes: ['files:read'] })
  const asForged = await connectSdk2Client(gw.mcpUrl(), { token: forged })
  const forgedEcho = await asForged.callTool({ name: 'echo', arguments: { text: 'x' } }).then(
    (r) => r,
    (err: Error) => err,
  )
  t.ok(forgedEcho instanceof Error || (forgedEcho as { isError?: boolean }).isError, 'sub client:ci-bot from another client is not the CI bot (CC-05)')
  await asForged.close()
})

t.test('configuration: machine clients are confidential and limited (CC-01, CC-02, check-config)', async (t) => {
  const base = {
    publicUrl: 'https://mcp.example.com',
    resources: [{ id: 'files', name: 'Files', path: '/mcp', upstream: 'http://files:3000/mcp' }],
  }
  const problems = (clients: unknown[], extra: Record<string, unknown> = {}) => {
    try {
      loadConfigObject({ ...base, clients, ...extra }, 'test')
      return []
    } catch (err) {
      if (err instanceof ConfigError) return err.problems.map((p) => `${p.path}: ${p.message}`)
      throw err
    }
  }
  t.same(problems([{ clientId: 'bot', name: 'Bot', grantTypes: ['client_credentials'], tokenEndpointAuthMethod: 'client_secret_basic', secret: CI_SECRET }]), [], 'a machine client needs no redirect URIs')
  t.match(problems([{ clientId: 'bot', name: 'Bot', grantTypes: ['client_credentials'] }]).join('\n'), /public client \(none\) never gets it/, 'a public client never gets client_credentials (CC-01)')
  t.match(problems([{ clientId: 'bot', name: 'Bot', grantTypes: ['client_credentials', 'refresh_token'], tokenEndpointAuthMethod: 'client_secret_post', secret: CI_SECRET }]).join('\n'), /refresh_token comes with authorization_code/, 'no refresh tokens for machines (CC-02)')
  t.match(problems([{ clientId: 'bot', name: 'Bot', grantTypes: ['client_credentials'], tokenEndpointAuthMethod: 'private_key_jwt' }]).join('\n'), /exactly one of jwks or jwksUri/)
  t.match(problems([{ clientId: 'bot', name: 'Bot', grantTypes: ['client_credentials'], tokenEndpointAuthMethod: 'private_key_jwt', jwks: { keys: [signerPrivateJwk] } }]).join('\n'), /jwks/, 'a private key in jwks is refused')
  t.match(problems([{ clientId: 'bot', name: 'Bot', grantTypes: ['client_credentials'], tokenEndpointAuthMethod: 'client_secret_basic', secret: CI_SECRET, resources: ['nope'] }]).join('\n'), /no resource has the id "nope"/)
  t.match(problems([{ clientId: 'app', name: 'App', grantTypes: ['authorization_code'] }]).join('\n'), /redirectUris: is required with authorization_code/)
  t.match(problems([{ clientId: 'app', name: 'App', redirectUris: ['https://a.example.com/cb'], scopes: ['x'] }]).join('\n'), /does not have that grant/)
  t.match(problems([], { registration: { enabled: true, grantTypes: ['authorization_code', 'client_credentials'] } }).join('\n'), /registration\.grantTypes/, 'dynamic registration never yields client_credentials')
  t.match(problems([], { login: { oidc: [{ id: 'client', name: 'X', issuer: 'https://idp.example.com', clientId: 'x', clientSecret: 'y'.repeat(32) }] } }).join('\n'), /"client" is the subject prefix of machine clients/, 'no person\'s subject can look like a machine\'s (CC-05)')
})

t.test('policy: a machine caller is never a person, a person never a machine client (CC-05)', async (t) => {
  const machine = { sub: 'client:ci-bot', clientId: 'ci-bot', machine: true, scopes: new Set(['files:read']) }
  const person = { sub: 'client:ci-bot', clientId: 'ci-bot', scopes: new Set(['files:read']) }
  t.notOk(usersMatch({ subjects: ['client:ci-bot'] }, machine), 'a users condition naming the machine\'s subject does not match it')
  t.notOk(mayAccess({ subjects: ['client:ci-bot'] }, machine), 'access rules for people never admit a machine')
  t.notOk(mayAccess({ clients: ['ci-bot'] }, { sub: 'static:alice' }), 'access rules naming only machine clients admit no person')
  t.ok(machineMayAccess({ subjects: ['static:alice'] }, 'ci-bot'), 'people rules do not exclude machines: only access.clients does')
  t.notOk(machineMayAccess({ clients: ['other-bot'] }, 'ci-bot'), 'access.clients names other machines: refused')
  const policy = new McpPolicy(
    [
      { id: 'people', method: 'tools/call', name: 'whoami', users: { subjects: ['client:ci-bot'] }, action: 'allow' },
      { id: 'bots', method: 'tools/call', name: 'deploy_*', clients: ['ci-bot'], action: 'allow' },
    ],
    ['files:read'],
  )
  t.match(policy.decide({ method: 'tools/call', name: 'whoami' }, machine), { allowed: false, reason: 'denied' }, 'users rule: machine refused')
  t.match(policy.decide({ method: 'tools/call', name: 'deploy_app' }, machine), { allowed: true }, 'clients rule: the named machine allowed')
  t.match(policy.decide({ method: 'tools/call', name: 'deploy_app' }, person), { allowed: false, reason: 'denied' }, 'clients rule: a person with the same ids refused')
})
