/**
 * The resource side refuses everything that is not a valid, audience-bound, sufficiently
 * scoped token, in the OAuth challenge form, and nothing refused ever reaches the upstream.
 */
import { exportJWK, generateKeyPair, SignJWT } from 'jose'
import t from 'tap'
import { postJsonRpc } from '../fixtures/mcp-clients.js'
import { startSdk1Upstream } from '../fixtures/mcp-upstream.js'
import { startTestGateway } from '../helpers/gateway.js'

const upstream = await startSdk1Upstream({ stateful: false, jsonResponse: true })
t.teardown(() => upstream.close())
const gw = await startTestGateway(t, {
  resources: [
    { id: 'files', upstream: upstream.url, scopes: [{ name: 'files:read' }, { name: 'files:write' }], requiredScopes: ['files:read'], allowedOrigins: ['https://inspector.example.com'] },
    { id: 'crm', upstream: upstream.url, path: '/crm/mcp', scopes: [{ name: 'crm' }], requiredScopes: ['crm'] },
  ],
})
const url = gw.mcpUrl('files')
const prm = `${gw.origin}/.well-known/oauth-protected-resource/mcp`
const ping = { jsonrpc: '2.0', id: 1, method: 'ping' }
const bearer = (token: string) => ({ authorization: `Bearer ${token}` })

t.afterEach(async () => {
  // Refused requests never reach the upstream (MCPA-58: validate before processing).
  upstream.requests.length = 0
})

/** The Bearer challenge's parameters, and the DPoP challenge's that follows it (RFC 9449 §7.1). */
function challengeOf(res: { headers: Headers }) {
  const header = res.headers.get('www-authenticate') ?? ''
  const [bearerPart = '', dpopPart = ''] = header.split(/, (?=DPoP )/)
  const parse = (text: string) => Object.fromEntries([...text.matchAll(/(\w+)="([^"]*)"/g)].map((m) => [m[1], m[2]]))
  return { header, params: parse(bearerPart), dpop: parse(dpopPart) }
}

t.test('no token: 401 with resource_metadata and scope, no error code (MCPA-12, MCPA-14, BRR-03)', async (t) => {
  const res = await postJsonRpc(url, ping)
  t.equal(res.status, 401)
  const { header, params, dpop } = challengeOf(res)
  t.match(header, /^Bearer /)
  t.same(params, { scope: 'files:read', resource_metadata: prm })
  t.same(dpop, { algs: 'ES256 ES384 PS256 RS256 EdDSA' }, 'a DPoP challenge with the algorithms follows, without error (RFC 9449 §7.1, DPOP-07)')
  t.equal(JSON.parse(res.text).jsonrpc, '2.0', 'MCP endpoint errors are JSON-RPC')
  t.equal(upstream.requests.length, 0)
})

t.test('garbage and forged tokens: 401 invalid_token (MCPA-54, JWT-03)', async (t) => {
  const attacker = await generateKeyPair('ES256')
  const forged = await new SignJWT({ client_id: 'x', scope: 'files:read', jti: 'j' })
    .setProtectedHeader({ alg: 'ES256', typ: 'at+jwt', kid: gw.gateway.keystore!.active.kid })
    .setIssuer(gw.config.issuer)
    .setSubject('alice')
    .setAudience(url)
    .setIssuedAt()
    .setExpirationTime('5m')
    .sign(attacker.privateKey)
  const none = `${Buffer.from('{"alg":"none","typ":"at+jwt"}').toString('base64url')}.${Buffer.from(JSON.stringify({ iss: gw.config.issuer, sub: 'a', aud: url, exp: 9e9 })).toString('base64url')}.`
  for (const [what, token] of [
    ['garbage', 'not-a-jwt'],
    ['forged signature', forged],
    ['alg none', none],
    ['expired', await gw.mint({ ttlSeconds: -60 })],
  ] as const) {
    const res = await postJsonRpc(url, ping, bearer(token))
    t.equal(res.status, 401, what)
    const { params } = challengeOf(res)
    t.equal(params.error, 'invalid_token', what)
    t.equal(params.resource_metadata, prm, what)
  }
  t.equal(upstream.requests.length, 0)
})

t.test('a genuine token for another resource is refused (MCPA-53, MCPA-59, RI-08)', async (t) => {
  const crmToken = await gw.mint({ resource: 'crm', scopes: ['crm', 'files:read'] })
  const res = await postJsonRpc(url, ping, bearer(crmToken))
  t.equal(res.status, 401)
  t.match(challengeOf(res).params, { error: 'invalid_token', error_description: /not issued for this resource/ })
  const originToken = await gw.mint({ audience: gw.origin })
  t.equal((await postJsonRpc(url, ping, bearer(originToken))).status, 401, 'the bare origin is not this resource')
  const slashToken = await gw.mint({ audience: `${url}/` })
  t.equal((await postJsonRpc(url, ping, bearer(slashToken))).status, 401, 'aud is compared exactly: no trailing-slash variant')
  t.equal(upstream.requests.length, 0)
})

t.test('missing scope: 403 insufficient_scope naming the scope (MCPA-42, MCPA-43)', async (t) => {
  const res = await postJsonRpc(url, ping, bearer(await gw.mint({ scopes: ['files:write'] })))
  t.equal(res.status, 403)
  t.match(challengeOf(res).params, { error: 'insufficient_scope', scope: 'files:read', resource_metadata: prm })
  t.equal(upstream.requests.length, 0)
})

t.test('token in the query string or twice: 400 invalid_request (MCPA-51, BRR-01)', async (t) => {
  const token = await gw.mint()
  const query = await postJsonRpc(`${url}?access_token=${token}`, ping)
  t.equal(query.status, 400)
  t.equal(challengeOf(query).params.error, 'invalid_request')
  const both = await postJsonRpc(`${url}?access_token=${token}`, ping, bearer(token))
  t.equal(both.status, 400, 'even beside a valid header token')

  const twice = await new Promise<number>((resolve, reject) => {
    // fetch merges repeated headers, so send two Authorization lines by hand.
    import('node:http').then(({ request }) => {
      const req = request(url, { method: 'POST', headers: [['authorization', `Bearer ${token}`], ['authorization', `Bearer ${token}`], ['content-type', 'application/json']].flat() as unknown as Record<string, string> }, (res) => {
        res.resume()
        resolve(res.statusCode!)
      })
      req.on('error', reject)
      req.end(JSON.stringify(ping))
    }, reject)
  })
  t.equal(twice, 400)
  t.equal(upstream.requests.length, 0)
  t.notMatch(gw.logText(), token, 'the query token never reaches the log')
})

t.test('Origin: present and not allowed → 403; allowed origins get CORS (MCPT-01)', async (t) => {
  const token = await gw.mint()
  const evil = await postJsonRpc(url, ping, { ...bearer(token), origin: 'https://evil.example.com' })
  t.equal(evil.status, 403)
  t.equal(upstream.requests.length, 0)
  const nullOrigin = await postJsonRpc(url, ping, { ...bearer(token), origin: 'null' })
  t.equal(nullOrigin.status, 403, 'an opaque origin is not allowed')
  const ok = await postJsonRpc(url, ping, { ...bearer(token), origin: 'https://inspector.example.com' })
  t.equal(ok.status, 200)
  t.equal(ok.headers.get('access-control-allow-origin'), 'https://inspector.example.com')
  t.match(ok.headers.get('access-control-expose-headers'), /Mcp-Session-Id/)
  const own = await postJsonRpc(url, ping, { ...bearer(token), origin: gw.origin })
  t.equal(own.status, 200, "the gateway's own origin is allowed")

  const preflight = await fetch(url, {
    method: 'OPTIONS',
    headers: { origin: 'https://inspector.example.com', 'access-control-request-method': 'POST', 'access-control-request-headers': 'authorization, content-type, mcp-protocol-version' },
  })
  t.equal(preflight.status, 204, 'preflight needs no token')
  t.equal(preflight.headers.get('access-control-allow-headers'), 'authorization, content-type, mcp-protocol-version')
  const badPreflight = await fetch(url, { method: 'OPTIONS', headers: { origin: 'https://evil.example.com' } })
  t.equal(badPreflight.status, 403)
  t.equal(badPreflight.headers.get('access-control-allow-origin'), null)
})

t.test('only the exact MCP path is exposed', async (t) => {
  const token = await gw.mint()
  for (const path of ['/mcp/', '/mcp/extra', '/mcpx', '/MCP']) {
    const res = await postJsonRpc(`${gw.origin}${path}`, ping, bearer(token))
    t.equal(res.status, 404, path)
  }
  t.equal(upstream.requests.length, 0)
})

t.test('a token signed by a key the gateway never had, even with a valid-looking JWKS, is refused', async (t) => {
  const { privateKey, publicKey } = await generateKeyPair('ES256', { extractable: true })
  const jwk = await exportJWK(publicKey)
  const token = await new SignJWT({ client_id: 'c', scope: 'files:read', jti: 'j' })
    .setProtectedHeader({ alg: 'ES256', typ: 'at+jwt', jwk })
    .setIssuer(gw.config.issuer)
    .setSubject('alice')
    .setAudience(url)
    .setIssuedAt()
    .setExpirationTime('5m')
    .sign(privateKey)
  t.equal((await postJsonRpc(url, ping, bearer(token))).status, 401)
})

t.test('a valid token passes and the call reaches the upstream', async (t) => {
  const res = await postJsonRpc(url, ping, bearer(await gw.mint()))
  t.equal(res.status, 200)
  t.same(JSON.parse(res.text), { jsonrpc: '2.0', id: 1, result: {} })
  t.equal(upstream.requests.length, 1)
})
