/**
 * Red team: private_key_jwt client assertions (RFC 7523 §3, SEC-30, SEC-31, CIMD-38) against an
 * in-process gateway fetching the client's document (inline jwks) from a loopback server (the
 * development switches allowHttp/allowPrivateAddresses make that possible here). Client
 * authentication runs before anything else, so /oauth/revoke with an unknown token tells
 * whether an assertion was accepted (200) or refused (401 invalid_client).
 */
import { randomBytes } from 'node:crypto'
import t from 'tap'
import { exportJWK, generateKeyPair, SignJWT, type CryptoKey, type JWK } from 'jose'
import { testPasswordHash } from '../helpers/passwords.js'
import { startTestGateway } from '../helpers/gateway.js'
import { json, startHttpDocServer } from '../cimd/servers.js'

const JWT_BEARER = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer'
const docs = await startHttpDocServer()
t.teardown(() => docs.close())
const clientId = `http://127.0.0.1:${docs.port}/clients/pkj.json`
const { privateKey, publicKey } = await generateKeyPair('ES256', { extractable: true })
const publicJwk: JWK = { ...(await exportJWK(publicKey)), kid: 'k1', alg: 'ES256', use: 'sig' }
const attacker = await generateKeyPair('ES256', { extractable: true })
docs.routes.set(
  '/clients/pkj.json',
  json({
    client_id: clientId,
    client_name: 'Assertion client',
    redirect_uris: ['https://app.example.com/cb'],
    token_endpoint_auth_method: 'private_key_jwt',
    token_endpoint_auth_signing_alg: 'ES256',
    jwks: { keys: [publicJwk] },
  }),
)
const gw = await startTestGateway(t, {
  resources: [{ upstream: 'http://127.0.0.1:9/mcp' }],
  config: {
    login: { static: { users: [{ username: 'alice', passwordHash: await testPasswordHash('alice-password') }] } },
    cimd: { enabled: true, allowHttp: true, allowPrivateAddresses: true, trust: { allow: [{ prefix: `http://127.0.0.1:${docs.port}/clients/` }] } },
  },
})
const issuer = gw.config.issuer
const now = () => Math.floor(Date.now() / 1000)

interface Opts {
  key?: CryptoKey
  header?: Record<string, unknown>
  claims?: Record<string, unknown>
}
function assertion(o: Opts = {}): Promise<string> {
  const claims = Object.fromEntries(
    Object.entries({ iss: clientId, sub: clientId, aud: issuer, iat: now(), exp: now() + 120, jti: randomBytes(12).toString('base64url'), ...o.claims }).filter(([, v]) => v !== undefined),
  )
  return new SignJWT(claims).setProtectedHeader({ alg: 'ES256', kid: 'k1', ...o.header }).sign(o.key ?? privateKey)
}

async function post(path: string, fields: Record<string, string>) {
  const res = await fetch(`${gw.origin}${path}`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams(fields) })
  const text = await res.text()
  return { status: res.status, body: text ? (JSON.parse(text) as Record<string, string>) : undefined }
}
const revoke = (clientAssertion: string, extra: Record<string, string> = {}) =>
  post('/oauth/revoke', { token: 'unknown-token', client_assertion_type: JWT_BEARER, client_assertion: clientAssertion, ...extra })

t.test('control: a good assertion authenticates at /oauth/revoke', async (t) => {
  t.equal((await revoke(await assertion())).status, 200)
})

t.test('RFC 7523 §3: aud may name the issuer or the token endpoint, at any endpoint; nothing else', async (t) => {
  t.equal((await revoke(await assertion({ claims: { aud: `${issuer}/oauth/token` } }))).status, 200, 'aud = token endpoint, used at /revoke: accepted (RFC 7523 §3, documented)')
  for (const aud of [`${issuer}/oauth/revoke`, `${issuer}/`, issuer.toUpperCase(), 'https://evil.example', [], ['https://evil.example'], clientId]) {
    const res = await revoke(await assertion({ claims: { aud } }))
    t.equal(res.status, 401, `aud ${JSON.stringify(aud)}: 401`)
    t.equal(res.body?.error, 'invalid_client')
  }
})

t.test('SEC-31: lifetime and time claims', async (t) => {
  for (const [what, claims] of [
    ['exp a year ahead', { exp: now() + 365 * 86400 }],
    ['exp missing', { exp: undefined }],
    ['exp past', { exp: now() - 600 }],
    ['iat in the future', { iat: now() + 600 }],
    ['nbf in the future', { nbf: now() + 600 }],
    ['jti missing', { jti: undefined }],
    ['jti not a string', { jti: 7 }],
    ['iss differs from sub', { iss: 'https://evil.example/client.json' }],
    ['sub of another client', { sub: `${clientId}x`, iss: `${clientId}x` }],
  ] as const) {
    const res = await revoke(await assertion({ claims: claims as Record<string, unknown> }))
    t.equal(res.status, 401, `${what}: 401 invalid_client`)
  }
})

t.test('SEC-31: a jti is single use across endpoints', async (t) => {
  const once = await assertion()
  t.equal((await revoke(once)).status, 200, 'first use at /revoke')
  const atToken = await post('/oauth/token', { grant_type: 'refresh_token', refresh_token: 'x', client_assertion_type: JWT_BEARER, client_assertion: once })
  t.equal(atToken.status, 401, 'the same assertion at /token: 401')
  t.equal(atToken.body?.error, 'invalid_client')
  t.equal((await revoke(once)).status, 401, 'and again at /revoke')
  const atIntrospect = await post('/oauth/introspect', { token: 'x', client_assertion_type: JWT_BEARER, client_assertion: once })
  t.equal(atIntrospect.status, 401, 'and at /introspect')
})

t.test('SEC-31: key and algorithm forgeries (attacker key, embedded jwk, x5c, jku, HS256, none)', async (t) => {
  const attackerJwk = await exportJWK(attacker.publicKey)
  const cases: [string, Promise<string> | string][] = [
    ['attacker key, our kid', assertion({ key: attacker.privateKey })],
    ['attacker key, no kid', assertion({ key: attacker.privateKey, header: { kid: undefined } })],
    ['embedded jwk header', assertion({ key: attacker.privateKey, header: { kid: undefined, jwk: attackerJwk } })],
    ['x5c header', assertion({ key: attacker.privateKey, header: { x5c: ['MIIBszCCAVmgAwIBAgIU'] } })],
    ['jku header', assertion({ key: attacker.privateKey, header: { jku: `http://127.0.0.1:${docs.port}/clients/attacker-jwks.json` } })],
    ['kid with path characters', assertion({ key: attacker.privateKey, header: { kid: '../../k1' } })],
    ['HS256 keyed with the public JWK', new SignJWT({ iss: clientId, sub: clientId, aud: issuer, exp: now() + 60, jti: 'hs' }).setProtectedHeader({ alg: 'HS256', kid: 'k1' }).sign(new TextEncoder().encode(JSON.stringify(publicJwk)))],
    ['alg none', `${Buffer.from(JSON.stringify({ alg: 'none' })).toString('base64url')}.${Buffer.from(JSON.stringify({ iss: clientId, sub: clientId, aud: issuer, exp: now() + 60, jti: 'none' })).toString('base64url')}.`],
    ['two segments', 'a.b'],
    ['garbage', '%%%'],
    ['an empty-but-present assertion', ' '],
  ]
  for (const [what, a] of cases) {
    const res = await revoke(await a)
    t.ok(res.status === 401 || res.status === 400, `${what}: ${res.status}`)
    t.ok(res.body?.error === 'invalid_client' || res.body?.error === 'invalid_request', `${what}: ${res.body?.error}`)
  }
  t.equal(docs.hits.get('/clients/attacker-jwks.json') ?? 0, 0, 'jku was never fetched')
})

t.test('SEC-30 CIMD-38: no downgrade: client_id alone, or an assertion beside a secret, is refused', async (t) => {
  const alone = await post('/oauth/revoke', { token: 'x', client_id: clientId })
  t.equal(alone.status, 401, 'client_id alone: 401')
  const withSecret = await revoke(await assertion(), { client_secret: 'x' })
  t.equal(withSecret.body?.error, 'invalid_request', 'assertion + client_secret: invalid_request')
  const otherType = await revoke(await assertion(), { client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:saml2-bearer' })
  t.equal(otherType.status, 401, 'another assertion type: 401')
  const mismatch = await revoke(await assertion(), { client_id: 'someone-else' })
  t.equal(mismatch.status, 401, 'client_id differing from sub: 401')
})

t.test('no 500, and no assertion in the log', async (t) => {
  t.notMatch(gw.logText(), /"level":50/, 'no error-level log line')
  t.notMatch(gw.logText(), /eyJ[A-Za-z0-9_-]{20,}\.eyJ/, 'no JWT in the log')
})
