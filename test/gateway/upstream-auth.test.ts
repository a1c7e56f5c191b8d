/**
 * Credentials the gateway presents to the upstream (UPS-01, UPS-02): a static secret header, or a
 * short-lived JWT the gateway signs, verifiable with its published JWKS. The client's own token
 * and any forged copy of the secret header never reach the upstream; an upstream JWT is never an
 * access token at the gateway; the secret never reaches the log.
 */
import { createRemoteJWKSet, jwtVerify } from 'jose'
import t from 'tap'
import { ConfigError, loadConfigObject } from '../../src/config/load.js'
import { postJsonRpc } from '../fixtures/mcp-clients.js'
import { startSdk1Upstream } from '../fixtures/mcp-upstream.js'
import { startTestGateway } from '../helpers/gateway.js'

const upstream = await startSdk1Upstream({ stateful: false, jsonResponse: true })
t.teardown(() => upstream.close())
const API_KEY = 'upstream-api-key-7c2e9a4f1b6d3e8a0c5f'
const ping = { jsonrpc: '2.0', id: 1, method: 'ping' }

const gw = await startTestGateway(t, {
  resources: [
    { upstream: upstream.url, upstreamAuth: { header: { name: 'X-Api-Key', value: API_KEY } }, identityHeaders: { subject: 'X-User' } },
    { upstream: upstream.url, upstreamAuth: { jwt: { ttlSeconds: 60 } } },
  ],
})

const lastUpstreamRequest = () => upstream.requests[upstream.requests.length - 1]!

t.test('UPS-01: a static secret header replaces whatever the client sent; the client\'s token stays behind', async (t) => {
  const token = await gw.mint({ resource: 'r0', sub: 'static:alice' })
  const res = await postJsonRpc(gw.mcpUrl('r0'), ping, { authorization: `Bearer ${token}`, 'x-api-key': 'forged-by-the-client' })
  t.equal(res.status, 200)
  const seen = lastUpstreamRequest()
  t.equal(seen.headers['x-api-key'], API_KEY, 'the configured secret, not the client\'s copy')
  t.equal(seen.headers['x-user'], 'static:alice', 'identity headers as before')
  t.notOk(seen.headers.authorization, 'no Authorization upstream: the client\'s token never passes')
  t.notMatch(JSON.stringify(seen.rawHeaders), token, 'the token appears in no upstream header')
  t.notMatch(gw.logText(), API_KEY, 'the secret never reaches the log')
})

t.test('UPS-02: a gateway-signed upstream JWT names the caller, verifiable with the gateway\'s JWKS', async (t) => {
  const token = await gw.mint({ resource: 'r1', sub: 'static:bob', clientId: 'agent', scopes: ['mcp'] })
  const res = await postJsonRpc(gw.mcpUrl('r1'), ping, { authorization: `Bearer ${token}` })
  t.equal(res.status, 200)
  const header = lastUpstreamRequest().headers.authorization ?? ''
  t.match(header, /^Bearer /, 'the upstream gets a bearer token')
  const upstreamJwt = header.slice(7)
  t.not(upstreamJwt, token, 'not the client\'s token (UPS-01)')
  const jwks = createRemoteJWKSet(new URL(`${gw.origin}/oauth/jwks`))
  const { payload, protectedHeader } = await jwtVerify(upstreamJwt, jwks, { issuer: gw.config.issuer, audience: new URL(upstream.url).origin, typ: 'upstream+jwt' })
  t.match(payload, { sub: 'static:bob', client_id: 'agent', scope: 'mcp' }, 'who is calling, with what scopes')
  t.ok(payload.exp! - payload.iat! <= 60, 'short-lived')
  t.equal(protectedHeader.typ, 'upstream+jwt')

  // The same caller again: the cached token, not a new signature per call.
  await postJsonRpc(gw.mcpUrl('r1'), ping, { authorization: `Bearer ${token}` })
  t.equal(lastUpstreamRequest().headers.authorization, header, 'cached per caller until shortly before it expires')
  const other = await gw.mint({ resource: 'r1', sub: 'static:carol', scopes: ['mcp'] })
  await postJsonRpc(gw.mcpUrl('r1'), ping, { authorization: `Bearer ${other}` })
  t.not(lastUpstreamRequest().headers.authorization, header, 'never shared between callers (UPS-03 by analogy)')

  const replayed = await postJsonRpc(gw.mcpUrl('r1'), ping, { authorization: header })
  t.equal(replayed.status, 401, 'an upstream JWT is never an access token at the gateway')
})

t.test('configuration: one kind of upstream credential, not on a header the gateway owns', async (t) => {
  const problems = (upstreamAuth: unknown, extra: Record<string, unknown> = {}) => {
    try {
      loadConfigObject(
        { publicUrl: 'https://mcp.example.com', ...extra, resources: [{ id: 'files', name: 'Files', path: '/mcp', upstream: 'http://files:3000/mcp', upstreamAuth }] },
        'test',
      )
      return ''
    } catch (err) {
      if (err instanceof ConfigError) return err.problems.map((p) => `${p.path}: ${p.message}`).join('\n')
      throw err
    }
  }
  t.equal(problems({ header: { name: 'Authorization', value: 'Bearer static-key' } }), '', 'Authorization may carry a static key')
  t.match(problems({}), /exactly one of header, jwt or exchange/)
  t.match(problems({ header: { name: 'X-K', value: 'v' }, jwt: {} }), /exactly one of header, jwt or exchange/)
  t.match(problems({ header: { name: 'Cookie', value: 'v' } }), /a header the gateway already owns/)
  t.match(problems({ header: { name: 'Mcp-Session-Id', value: 'v' } }), /a header the gateway already owns/)
  t.match(problems({ jwt: {} }, { externalIssuer: { issuer: 'https://idp.example.com', jwksUri: 'https://idp.example.com/jwks' } }), /externalIssuer/)
})
