/**
 * client_credentials for clients the operator did not list one by one (CC-01): dynamic
 * registration and metadata-document clients get the grant only by the operator's explicit
 * opt-in, never as public clients; opted in, they get tokens with the same resource and scope
 * limits as pre-registered machine clients (CC-03, CC-04) and call a real MCP server through
 * the gateway with the official 2.x SDK's providers. Documents are served from loopback only.
 */
import { randomBytes } from 'node:crypto'
import { Client, ClientCredentialsProvider, PrivateKeyJwtProvider, StreamableHTTPClientTransport } from '@modelcontextprotocol/client'
import { exportJWK, generateKeyPair, SignJWT } from 'jose'
import t from 'tap'
import { ConfigError, loadConfigObject } from '../../src/config/load.js'
import { RegisteredClients } from '../../src/oauth/clients/registered.js'
import { MemoryStore } from '../../src/store/memory.js'
import { json, startHttpDocServer } from '../cimd/servers.js'
import { startSdk1Upstream } from '../fixtures/mcp-upstream.js'
import { startTestGateway, type TestGateway } from '../helpers/gateway.js'

const upstream = await startSdk1Upstream({ stateful: false, jsonResponse: true })
t.teardown(() => upstream.close())
const MACHINE_IAT = 'machine-registration-token-8f2b6d1e4a9c3f7b0e5d'
const SCOPES = [{ name: 'mcp' }, { name: 'admin' }]
const resources = [
  { upstream: upstream.url, default: true, scopes: SCOPES, requiredScopes: ['mcp'] },
  { upstream: upstream.url, scopes: SCOPES, requiredScopes: ['mcp'] },
]

async function post(gw: TestGateway, path: string, body: unknown, headers: Record<string, string> = {}) {
  const form = typeof body === 'object' && body instanceof URLSearchParams
  const res = await fetch(`${gw.origin}${path}`, {
    method: 'POST',
    headers: { 'content-type': form ? 'application/x-www-form-urlencoded' : 'application/json', ...headers },
    body: form ? body : JSON.stringify(body),
  })
  const text = await res.text()
  return { status: res.status, body: (text ? JSON.parse(text) : {}) as Record<string, unknown> }
}
const grantTypesSupported = async (gw: TestGateway) =>
  ((await (await fetch(`${gw.origin}/.well-known/oauth-authorization-server`)).json()) as { grant_types_supported: string[] }).grant_types_supported

// ---------------------------------------------------------------- dynamic registration

const closedGw = await startTestGateway(t, { resources, config: { registration: { enabled: true } } })
const openGw = await startTestGateway(t, {
  resources,
  config: { registration: { enabled: true, clientCredentials: { initialAccessTokens: [MACHINE_IAT], resources: ['r0'], scopes: ['mcp'] } } },
})
const machineRegistration = { client_name: 'Nightly job', grant_types: ['client_credentials'], token_endpoint_auth_method: 'client_secret_basic' }
const bearer = { authorization: `Bearer ${MACHINE_IAT}` }

t.test('CC-01: dynamic registration refuses client_credentials by default', async (t) => {
  const alone = await post(closedGw, '/oauth/register', machineRegistration, bearer)
  t.equal(alone.status, 400)
  t.equal(alone.body.error, 'invalid_client_metadata')
  t.match(alone.body.error_description, /client_credentials is not available to dynamically registered clients/)
  const mixed = await post(closedGw, '/oauth/register', {
    ...machineRegistration,
    grant_types: ['authorization_code', 'client_credentials'],
    redirect_uris: ['http://127.0.0.1/callback'],
  })
  t.equal(mixed.status, 400, 'beside authorization_code too')
  t.equal(mixed.body.error, 'invalid_client_metadata')
  t.notOk((await grantTypesSupported(closedGw)).includes('client_credentials'), 'metadata does not offer what nobody can use')
})

t.test('CC-01: opted in, a registration needs one of the machine tokens and must be confidential', async (t) => {
  const none = await post(openGw, '/oauth/register', machineRegistration)
  t.equal(none.status, 401, 'no initial access token')
  t.equal(none.body.error, 'invalid_token')
  const wrong = await post(openGw, '/oauth/register', machineRegistration, { authorization: `Bearer ${'x'.repeat(40)}` })
  t.equal(wrong.status, 401, 'a wrong one')
  for (const method of [undefined, 'none']) {
    const publicClient = await post(openGw, '/oauth/register', { ...machineRegistration, token_endpoint_auth_method: method }, bearer)
    t.equal(publicClient.status, 400, `public (${method ?? 'absent'}) is refused even with the token`)
    t.equal(publicClient.body.error, 'invalid_client_metadata')
    t.match(publicClient.body.error_description, /confidential/)
  }
  const withRedirect = await post(openGw, '/oauth/register', { ...machineRegistration, redirect_uris: ['https://app.example.com/cb'] }, bearer)
  t.equal(withRedirect.status, 400, 'a machine-only client has no redirect URIs (RFC 7591 §2.1)')
  t.ok((await grantTypesSupported(openGw)).includes('client_credentials'), 'metadata offers the grant')
  // A person's client still registers as before, and never gets the machine grant by accident.
  const ordinary = await post(openGw, '/oauth/register', { redirect_uris: ['http://127.0.0.1/callback'] })
  t.equal(ordinary.status, 201)
  t.same(ordinary.body.grant_types, ['authorization_code'])
})

t.test('CC-01, CC-03, CC-04: a registered machine client gets limited tokens and calls a tool through the gateway', async (t) => {
  const reg = await post(openGw, '/oauth/register', machineRegistration, bearer)
  t.equal(reg.status, 201)
  t.same(reg.body.grant_types, ['client_credentials'])
  t.same(reg.body.redirect_uris, [])
  const clientId = reg.body.client_id as string
  const secret = reg.body.client_secret as string
  t.ok(secret, 'a confidential client gets a secret')

  const basic = { authorization: `Basic ${Buffer.from(`${clientId}:${secret}`).toString('base64')}` }
  const token = (fields: Record<string, string>) => post(openGw, '/oauth/token', new URLSearchParams({ grant_type: 'client_credentials', ...fields }), basic)
  const ok = await token({})
  t.equal(ok.status, 200)
  t.equal(ok.body.scope, 'mcp', 'CC-04: the registration setting\'s scopes, not admin')
  t.notOk(ok.body.refresh_token, 'CC-02')
  t.equal((await token({ resource: openGw.mcpUrl('r1') })).body.error, 'invalid_target', 'CC-03: outside the setting\'s resources')
  t.equal((await token({ scope: 'admin' })).body.error, 'invalid_scope', 'CC-04: outside the setting\'s scopes')

  const provider = new ClientCredentialsProvider({ clientId, clientSecret: secret, expectedIssuer: openGw.config.issuer })
  const client = new Client({ name: 'nightly-job', version: '1.0.0' })
  await client.connect(new StreamableHTTPClientTransport(new URL(openGw.mcpUrl()), { authProvider: provider }))
  t.teardown(() => client.close())
  const echoed = await client.callTool({ name: 'echo', arguments: { text: 'registered machine' } })
  t.match(JSON.stringify(echoed.content), /registered machine/, 'the tool call reached the upstream')

  // The opt-in is read at every use: without it, the registration is no machine client any more.
  const store = new MemoryStore()
  t.teardown(() => store.close())
  const withSetting = new RegisteredClients(store, openGw.config.registration)
  const { record } = await withSetting.register(
    { client_name: 'x', redirect_uris: [], grant_types: ['client_credentials'], response_types: [], token_endpoint_auth_method: 'client_secret_basic', application_type: 'web' },
    '127.0.0.1',
  )
  t.ok((await withSetting.find(record.clientId))!.grantTypes.includes('client_credentials'))
  const without = new RegisteredClients(store, closedGw.config.registration)
  t.notOk((await without.find(record.clientId))!.grantTypes.includes('client_credentials'), 'removing the setting stops the grant')
})

// ---------------------------------------------------------------- metadata documents

const docs = await startHttpDocServer()
t.teardown(() => docs.close())
const { privateKey, publicKey } = await generateKeyPair('ES256', { extractable: true })
const publicJwk = { ...(await exportJWK(publicKey)), kid: 'm1', alg: 'ES256', use: 'sig' }
const privateJwk = { ...(await exportJWK(privateKey)), kid: 'm1', alg: 'ES256' }
const url = (path: string) => `http://127.0.0.1:${docs.port}${path}`
const machineDoc = (path: string, extra: Record<string, unknown> = {}) =>
  docs.routes.set(
    path,
    json({
      client_id: url(path),
      client_name: 'Document machine',
      grant_types: ['client_credentials'],
      token_endpoint_auth_method: 'private_key_jwt',
      token_endpoint_auth_signing_alg: 'ES256',
      jwks: { keys: [publicJwk] },
      ...extra,
    }),
  )
machineDoc('/plain/bot.json')
machineDoc('/plain/mixed.json', { grant_types: ['authorization_code', 'client_credentials'], redirect_uris: ['https://app.example.com/cb'] })
machineDoc('/machines/bot.json')
machineDoc('/machines/public.json', { token_endpoint_auth_method: 'none', token_endpoint_auth_signing_alg: undefined, jwks: undefined })

const cimdGw = await startTestGateway(t, {
  resources,
  config: {
    cimd: {
      enabled: true,
      allowHttp: true,
      allowPrivateAddresses: true,
      cache: { enabled: false },
      trust: {
        allow: [
          { prefix: url('/plain/') },
          { prefix: url('/machines/'), clientCredentials: { resources: ['r0'], scopes: ['mcp'] } },
        ],
      },
    },
  },
})

const assertionFor = (clientId: string) => {
  const now = Math.floor(Date.now() / 1000)
  return new SignJWT({})
    .setProtectedHeader({ alg: 'ES256', kid: 'm1' })
    .setIssuer(clientId)
    .setSubject(clientId)
    .setAudience(cimdGw.config.issuer)
    .setIssuedAt(now)
    .setExpirationTime(now + 60)
    .setJti(randomBytes(12).toString('base64url'))
    .sign(privateKey)
}
const cimdToken = async (clientId: string, fields: Record<string, string> = {}) =>
  post(
    cimdGw,
    '/oauth/token',
    new URLSearchParams({
      grant_type: 'client_credentials',
      client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer',
      client_assertion: await assertionFor(clientId),
      ...fields,
    }),
  )

t.test('CC-01: a metadata document asking for client_credentials is refused unless its trust entry allows it', async (t) => {
  for (const path of ['/plain/bot.json', '/plain/mixed.json']) {
    const res = await cimdToken(url(path))
    t.equal(res.status, 401, `${path}: refused`)
    t.equal(res.body.error, 'invalid_client')
    t.match(res.body.error_description, /client_credentials, which the trust entry admitting this client id does not allow/, `${path}: names the rule`)
  }
  const publicMachine = await cimdToken(url('/machines/public.json'))
  t.equal(publicMachine.status, 401, 'a public document is refused even where the entry allows the grant')
  t.match(publicMachine.body.error_description, /private_key_jwt with client_credentials/)
  t.ok((await grantTypesSupported(cimdGw)).includes('client_credentials'), 'metadata offers the grant: a trust entry allows it')
})

t.test('CC-01, CC-03, CC-04: an allowed document client authenticates with its key and calls a tool', async (t) => {
  const clientId = url('/machines/bot.json')
  const ok = await cimdToken(clientId)
  t.equal(ok.status, 200, JSON.stringify(ok.body))
  t.equal(ok.body.scope, 'mcp', 'CC-04: the entry\'s scopes')
  t.notOk(ok.body.refresh_token, 'CC-02')
  t.equal((await cimdToken(clientId, { resource: cimdGw.mcpUrl('r1') })).body.error, 'invalid_target', 'CC-03: outside the entry\'s resources')
  t.equal((await cimdToken(clientId, { scope: 'admin' })).body.error, 'invalid_scope', 'CC-04')

  const provider = new PrivateKeyJwtProvider({ clientId, privateKey: privateJwk, algorithm: 'ES256', expectedIssuer: cimdGw.config.issuer })
  const client = new Client({ name: 'document-machine', version: '1.0.0' })
  await client.connect(new StreamableHTTPClientTransport(new URL(cimdGw.mcpUrl()), { authProvider: provider }))
  t.teardown(() => client.close())
  const echoed = await client.callTool({ name: 'echo', arguments: { text: 'document machine' } })
  t.match(JSON.stringify(echoed.content), /document machine/, 'the tool call reached the upstream')
  t.ok(upstream.requests.every((r) => !r.headers.authorization?.includes('.')), 'no token went upstream')
})

t.test('configuration: machine limits name known resources and scopes', async (t) => {
  const problems = (extra: Record<string, unknown>) => {
    try {
      loadConfigObject({ publicUrl: 'https://mcp.example.com', resources: [{ id: 'files', name: 'F', path: '/mcp', upstream: 'http://f:3000/mcp', scopes: [{ name: 'read' }] }], ...extra }, 't')
      return ''
    } catch (err) {
      if (err instanceof ConfigError) return err.problems.map((p) => `${p.path}: ${p.message}`).join('\n')
      throw err
    }
  }
  const machine = (limits: Record<string, unknown>) => ({ registration: { enabled: true, clientCredentials: { initialAccessTokens: [MACHINE_IAT], ...limits } } })
  t.equal(problems(machine({ resources: ['files'], scopes: ['read'] })), '')
  t.match(problems(machine({ resources: ['nope'] })), /registration.clientCredentials.resources\[0\]: no resource/)
  t.match(problems(machine({ scopes: ['write'] })), /registration.clientCredentials.scopes\[0\]/)
  t.match(problems({ registration: { enabled: true, tokenEndpointAuthMethods: ['none'], clientCredentials: { initialAccessTokens: [MACHINE_IAT] } } }), /confidential/)
  t.match(problems({ registration: { enabled: true, clientCredentials: { initialAccessTokens: ['short'] } } }), /initialAccessTokens/)
  t.match(problems({ cimd: { enabled: true, trust: { allow: [{ host: 'agents.example.com', clientCredentials: { resources: ['nope'] } }] } } }), /cimd.trust.allow\[0\].clientCredentials.resources\[0\]/)
  t.match(problems({ cimd: { enabled: true, trust: { deny: [{ host: 'x.example.com', clientCredentials: {} }] } } }), /deny/, 'deny entries take no options')
})
