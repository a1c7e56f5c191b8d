/**
 * Enterprise-managed authorization (SEP-990): the jwt-bearer grant with an ID-JAG. Every check
 * of XAA-01..08 refuses what it must, in the protocol's own error, never a 500, and a refused
 * request does not burn a good assertion. The IdP's keys are inline here; the end-to-end run with
 * the SDK's CrossAppAccessProvider and an IdP that performs RFC 8693 token exchange is in
 * test/oauth/cross-app-access.test.ts.
 */
import { generateKeyPairSync, randomUUID } from 'node:crypto'
import { exportJWK, SignJWT, type JWTPayload } from 'jose'
import t from 'tap'
import { ConfigError, loadConfigObject } from '../../src/config/load.js'
import { startTestGateway, type TestGateway } from '../helpers/gateway.js'

const IDP = 'https://idp.example.com'
const JWT_BEARER = 'urn:ietf:params:oauth:grant-type:jwt-bearer'
const AGENT_SECRET = 'agent-app-secret-6f1c9e2b7d4a0f3e8c5b1a9d'
const OTHER_SECRET = 'other-app-secret-2a7d4c9e1f6b3a8d0c5e7f2b'
const { privateKey: idpKey, publicKey: idpPublic } = generateKeyPairSync('ec', { namedCurve: 'P-256' })
const { privateKey: strangerKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' })
const idpJwk = { ...(await exportJWK(idpPublic)), kid: 'idp-1', alg: 'ES256', use: 'sig' }

const gw = await startTestGateway(t, {
  resources: [
    {
      upstream: 'http://127.0.0.1:9/mcp',
      scopes: [{ name: 'files:read' }, { name: 'files:write' }, { name: 'admin' }],
      requiredScopes: ['files:read'],
      access: { emailDomains: ['example.com'] },
    },
  ],
  config: {
    enterpriseAuthorization: { issuers: [{ id: 'corp', issuer: IDP, jwks: { keys: [idpJwk] }, clients: ['agent-app'] }] },
    clients: [
      { clientId: 'agent-app', name: 'Agent app', grantTypes: [JWT_BEARER], tokenEndpointAuthMethod: 'client_secret_basic', secret: AGENT_SECRET },
      { clientId: 'other-app', name: 'Other app', grantTypes: [JWT_BEARER], tokenEndpointAuthMethod: 'client_secret_basic', secret: OTHER_SECRET },
      { clientId: 'public-app', name: 'Public app', redirectUris: ['http://127.0.0.1/callback'] },
    ],
  },
})

const claims = (over: JWTPayload = {}): JWTPayload => ({
  iss: IDP,
  sub: 'U019488227',
  aud: gw.config.issuer,
  client_id: 'agent-app',
  jti: randomUUID(),
  resource: gw.mcpUrl(),
  scope: 'files:read files:write unknown:scope',
  email: 'alice@example.com',
  groups: ['engineering'],
  ...over,
})

async function idJag(payload: JWTPayload = claims(), header: Record<string, unknown> = {}, key = idpKey, lifetime = 300): Promise<string> {
  const now = Math.floor(Date.now() / 1000)
  return new SignJWT({ iat: now, exp: now + lifetime, ...payload })
    .setProtectedHeader({ alg: 'ES256', typ: 'oauth-id-jag+jwt', kid: 'idp-1', ...header })
    .sign(key)
}

async function token(gw: TestGateway, form: Record<string, string>, client: [string, string] = ['agent-app', AGENT_SECRET]) {
  const res = await fetch(`${gw.origin}/oauth/token`, {
    method: 'POST',
    headers: {
      'content-type': 'application/x-www-form-urlencoded',
      ...(client[1] !== '' && { authorization: `Basic ${Buffer.from(`${client[0]}:${client[1]}`).toString('base64')}` }),
    },
    body: new URLSearchParams({ grant_type: JWT_BEARER, ...(client[1] === '' && { client_id: client[0] }), ...form }),
  })
  return { status: res.status, body: (await res.json()) as Record<string, unknown> }
}

const claimsOf = (jwt: string) => JSON.parse(Buffer.from(jwt.split('.')[1]!, 'base64url').toString()) as Record<string, unknown>

t.test('XAA-09: metadata advertises the jwt-bearer grant and the ID-JAG profile', async (t) => {
  const metadata = (await (await fetch(`${gw.origin}/.well-known/oauth-authorization-server`)).json()) as Record<string, string[]>
  t.ok(metadata.grant_types_supported!.includes(JWT_BEARER))
  t.same(metadata.authorization_grant_profiles_supported, ['urn:ietf:params:oauth:grant-profile:id-jag'])
})

t.test('a valid ID-JAG gets an access token for the person, once (XAA-01..07)', async (t) => {
  const assertion = await idJag()
  const ok = await token(gw, { assertion })
  t.equal(ok.status, 200)
  t.equal(ok.body.token_type, 'Bearer')
  t.notOk(ok.body.refresh_token, 'no refresh token: the agent asks its IdP again')
  t.equal(ok.body.scope, 'files:read files:write', 'the IdP\'s scope ∩ what the resource knows (RFC 6749 §3.3)')
  t.match(claimsOf(ok.body.access_token as string), {
    sub: 'corp:U019488227',
    client_id: 'agent-app',
    aud: gw.mcpUrl(),
    email: 'alice@example.com',
    groups: ['engineering'],
  })
  const replay = await token(gw, { assertion })
  t.equal(replay.status, 400, 'XAA-06: the same assertion again is refused')
  t.equal(replay.body.error, 'invalid_grant')
  const narrowed = await token(gw, { assertion: await idJag(), scope: 'files:read' })
  t.equal(narrowed.body.scope, 'files:read', 'a scope parameter narrows')
  t.notMatch(gw.logText(), assertion.split('.')[2]!, 'the assertion never reaches the log')
})

t.test('a refused request does not burn the assertion (XAA-06)', async (t) => {
  const assertion = await idJag()
  const wrongResource = await token(gw, { assertion, resource: 'https://elsewhere.example.com/mcp' })
  t.equal(wrongResource.body.error, 'invalid_target')
  const wrongClient = await token(gw, { assertion }, ['other-app', OTHER_SECRET])
  t.equal(wrongClient.body.error, 'invalid_grant', 'another client presenting it: refused')
  t.equal((await token(gw, { assertion })).status, 200, 'the rightful request afterwards succeeds')
})

t.test('every check refuses: invalid_grant with the reason in the log, never a 500', async (t) => {
  const refused = async (why: string, form: Record<string, string>, error = 'invalid_grant', client?: [string, string], status = 400) => {
    const res = await token(gw, form, client)
    t.equal(res.status, status, `${why}: ${status}`)
    t.equal(res.body.error, error, `${why}: ${error}`)
    t.notOk(res.body.access_token, `${why}: no token`)
  }
  const hs256 = await new SignJWT(claims({ iat: Math.floor(Date.now() / 1000), exp: Math.floor(Date.now() / 1000) + 300 }))
    .setProtectedHeader({ alg: 'HS256', typ: 'oauth-id-jag+jwt', kid: 'idp-1' })
    .sign(new TextEncoder().encode('a-shared-secret-that-is-long-enough-for-hs256'))
  await refused('XAA-01: typ JWT (not an ID-JAG)', { assertion: await idJag(claims(), { typ: 'JWT' }) })
  await refused('XAA-01: no typ', { assertion: await idJag(claims(), { typ: undefined }) })
  await refused('XAA-02: an untrusted issuer', { assertion: await idJag(claims({ iss: 'https://evil.example.com' })) })
  await refused('XAA-02: signed by another key', { assertion: await idJag(claims(), {}, strangerKey) })
  await refused('XAA-02: a symmetric algorithm (HS256)', { assertion: hs256 })
  await refused('XAA-03: aud is another server', { assertion: await idJag(claims({ aud: 'https://other-as.example.com' })) })
  await refused('XAA-03: aud lists another server too', { assertion: await idJag(claims({ aud: [gw.config.issuer, 'https://other-as.example.com'] })) })
  await refused('XAA-04: client_id names another client', { assertion: await idJag(claims({ client_id: 'other-app' })) })
  await refused('XAA-04: a client the issuer does not list', { assertion: await idJag(claims({ client_id: 'other-app' })) }, 'invalid_grant', ['other-app', OTHER_SECRET])
  await refused('XAA-05: a resource the gateway does not serve', { assertion: await idJag(claims({ resource: 'https://elsewhere.example.com/mcp' })) })
  await refused('XAA-05: no resource claim', { assertion: await idJag(claims({ resource: undefined })) })
  await refused('XAA-06: expired', { assertion: await idJag(claims({ exp: Math.floor(Date.now() / 1000) - 120 })) })
  await refused('XAA-06: issued in the future', { assertion: await idJag(claims({ iat: Math.floor(Date.now() / 1000) + 600, exp: Math.floor(Date.now() / 1000) + 900 })) })
  await refused('XAA-06: lives longer than maxLifetimeSeconds', { assertion: await idJag(claims(), {}, idpKey, 3600) })
  await refused('XAA-06: no jti', { assertion: await idJag(claims({ jti: undefined })) })
  await refused('XAA-07: the access rules refuse the person', { assertion: await idJag(claims({ email: 'mallory@evil.example.com' })) })
  await refused('scope: nothing the resource knows', { assertion: await idJag(claims({ scope: 'nothing:known' })) }, 'invalid_scope')
  await refused('a malformed assertion', { assertion: 'not-a-jwt' })
  await refused('a JSON-less assertion', { assertion: 'e30.bm90IGpzb24.c2ln' })
  await refused('no assertion', {}, 'invalid_request')
  await refused('a public client (ID-JAG §9.1)', { assertion: await idJag(claims({ client_id: 'public-app' })) }, 'unauthorized_client', ['public-app', ''])
  await refused('a wrong client secret', { assertion: await idJag() }, 'invalid_client', ['agent-app', 'wrong-secret-wrong-secret-wrong-secret'], 401)
  t.notOk(gw.logs.some((l) => Number(l.level) >= 50), 'no error-level log line')
  t.ok(gw.logs.some((l) => JSON.stringify(l).includes('id-jag aud')), 'the log names the failed check')
})

t.test('configuration: trusted IdPs and their clients (check-config)', async (t) => {
  const problems = (enterpriseAuthorization: unknown, clients: unknown[] = []) => {
    try {
      loadConfigObject(
        { publicUrl: 'https://mcp.example.com', resources: [{ id: 'files', name: 'Files', path: '/mcp', upstream: 'http://files:3000/mcp' }], clients, enterpriseAuthorization },
        'test',
      )
      return ''
    } catch (err) {
      if (err instanceof ConfigError) return err.problems.map((p) => `${p.path}: ${p.message}`).join('\n')
      throw err
    }
  }
  const agent = { clientId: 'agent', name: 'Agent', grantTypes: [JWT_BEARER], tokenEndpointAuthMethod: 'client_secret_basic', secret: AGENT_SECRET }
  const issuer = { id: 'corp', issuer: IDP, jwksUri: `${IDP}/jwks`, clients: ['agent'] }
  t.equal(problems({ issuers: [issuer] }, [agent]), '', 'a valid trust')
  t.match(problems({ issuers: [{ ...issuer, jwks: { keys: [idpJwk] } }] }, [agent]), /exactly one of jwksUri or jwks/)
  t.match(problems({ issuers: [{ ...issuer, jwksUri: 'http://idp.example.com/jwks' }] }, [agent]), /must be https/)
  t.match(problems({ issuers: [{ ...issuer, clients: ['nobody'] }] }, [agent]), /no pre-registered client has the id "nobody"/)
  t.match(problems({ issuers: [issuer] }, [{ ...agent, grantTypes: ['client_credentials'] }]), /must list urn:ietf:params:oauth:grant-type:jwt-bearer/)
  t.match(problems({ issuers: [{ ...issuer, id: 'static' }] }, [agent]), /reserved subject prefix/)
  t.match(problems({ issuers: [{ ...issuer, algorithms: ['HS256'] }] }, [agent]), /algorithms/, 'a symmetric algorithm cannot be configured')
  t.match(problems({ issuers: [] }, [{ clientId: 'pub', name: 'Pub', grantTypes: [JWT_BEARER] }]), /confidential clients/)
})
