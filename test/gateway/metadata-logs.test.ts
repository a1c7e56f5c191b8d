/**
 * Protected Resource Metadata (RFC 9728; PRM-01..05, MCPA-07, MCPA-10, MCPA-12), health
 * endpoints, error forms, and the log's silence about secrets (MCPA-62).
 */
import t from 'tap'
import { postJsonRpc } from '../fixtures/mcp-clients.js'
import { startSdk1Upstream } from '../fixtures/mcp-upstream.js'
import { startTestGateway } from '../helpers/gateway.js'

const upstream = await startSdk1Upstream({ stateful: false, jsonResponse: true })
t.teardown(() => upstream.close())

t.test('PRM at the path-inserted URL and at the root, resource taken from config only', async (t) => {
  const gw = await startTestGateway(t, {
    resources: [
      { id: 'files', name: 'Files', upstream: upstream.url, path: '/files/mcp', scopes: [{ name: 'files:read' }, { name: 'offline_access' }], requiredScopes: ['files:read'], documentation: 'https://docs.example.com/files' },
      { id: 'crm', name: 'CRM', upstream: upstream.url, path: '/crm/mcp', default: true, scopes: [{ name: 'crm' }], requiredScopes: ['crm'] },
    ],
  })
  const res = await fetch(`${gw.origin}/.well-known/oauth-protected-resource/files/mcp`, {
    headers: { host: 'evil.example.com', 'x-forwarded-host': 'evil.example.com', 'x-forwarded-proto': 'https' },
  })
  t.equal(res.status, 200)
  t.match(res.headers.get('content-type'), /^application\/json/)
  t.match(res.headers.get('cache-control'), /max-age=/)
  t.equal(res.headers.get('access-control-allow-origin'), '*')
  t.same(await res.json(), {
    resource: `${gw.origin}/files/mcp`,
    authorization_servers: [gw.origin],
    scopes_supported: ['files:read'],
    bearer_methods_supported: ['header'],
    dpop_signing_alg_values_supported: ['ES256', 'ES384', 'PS256', 'RS256', 'EdDSA'],
    resource_name: 'Files',
    resource_documentation: 'https://docs.example.com/files',
  }, 'exact document; offline_access never in PRM (MCPA-F04); Host and X-Forwarded-* ignored (PRM-05, BCP-13)')

  const root = (await (await fetch(`${gw.origin}/.well-known/oauth-protected-resource`)).json()) as { resource: string }
  t.equal(root.resource, `${gw.origin}/crm/mcp`, 'the root URL serves the default resource (OQ-07)')
  t.equal((await fetch(`${gw.origin}/.well-known/oauth-protected-resource/nope`)).status, 404)

  const challenge = (await postJsonRpc(gw.mcpUrl('files'), {})).headers.get('www-authenticate')!
  const advertised = /resource_metadata="([^"]+)"/.exec(challenge)![1]!
  const viaChallenge = (await (await fetch(advertised)).json()) as { resource: string }
  t.equal(viaChallenge.resource, gw.mcpUrl('files'), 'the challenge points at the metadata of the very URL called (PRM-05)')
})

t.test('no root PRM when the default resource would be ambiguous', async (t) => {
  const gw = await startTestGateway(t, {
    resources: [{ upstream: upstream.url }, { upstream: upstream.url }],
  })
  t.equal((await fetch(`${gw.origin}/.well-known/oauth-protected-resource`)).status, 404)
  t.equal((await fetch(`${gw.origin}/.well-known/oauth-protected-resource/r1/mcp`)).status, 200)
})

t.test('health: liveness and readiness; unknown routes get OAuth-form 404s', async (t) => {
  const gw = await startTestGateway(t, { resources: [{ upstream: upstream.url }] })
  const live = await fetch(`${gw.origin}/healthz`)
  t.equal(live.status, 200)
  t.same(await live.json(), { status: 'ok', store: 'up' })
  const ready = await fetch(`${gw.origin}/readyz`)
  t.equal(ready.status, 200)
  t.same(await ready.json(), { status: 'ready', store: 'up' })
  const missing = await fetch(`${gw.origin}/nothing-here`)
  t.equal(missing.status, 404)
  t.same(await missing.json(), { error: 'not_found', error_description: 'no such endpoint' })
  t.equal(missing.headers.get('x-frame-options'), 'DENY', 'gateway pages are unframeable (BCP-14)')
  t.equal(missing.headers.get('x-content-type-options'), 'nosniff')
})

t.test('request ids: a harmless inbound id is kept, anything else replaced', async (t) => {
  const gw = await startTestGateway(t, { resources: [{ upstream: upstream.url }] })
  const kept = await fetch(`${gw.origin}/healthz`, { headers: { 'x-request-id': 'abc-123' } })
  t.equal(kept.headers.get('x-request-id'), 'abc-123')
  const replaced = await fetch(`${gw.origin}/healthz`, { headers: { 'x-request-id': 'a b\u00e9"<script>' } })
  t.match(replaced.headers.get('x-request-id'), /^[0-9a-f-]{36}$/)
})

t.test('secrets never reach the log, even at debug level (MCPA-62)', async (t) => {
  const gw = await startTestGateway(t, { resources: [{ upstream: upstream.url }], logLevel: 'trace' })
  const token = await gw.mint()
  const forged = `${token.slice(0, -8)}AAAAAAAA`
  await postJsonRpc(gw.mcpUrl(), { jsonrpc: '2.0', id: 1, method: 'ping' }, { authorization: `Bearer ${token}`, cookie: '__Host-gatehouse-session=cookiesecret' })
  await postJsonRpc(gw.mcpUrl(), { jsonrpc: '2.0', id: 2, method: 'ping' }, { authorization: `Bearer ${forged}` })
  await postJsonRpc(`${gw.mcpUrl()}?access_token=${token}&code=codesecret&x=1`, {})
  await fetch(`${gw.origin}/healthz?refresh_token=refreshsecret&state=statesecret`)
  const text = gw.logText()
  t.ok(gw.logs.length > 5, `${gw.logs.length} log lines written`)
  for (const secret of [token, forged, token.split('.')[2]!, 'cookiesecret', 'codesecret', 'refreshsecret', 'statesecret']) {
    t.notOk(text.includes(secret), `not in the log: ${secret.slice(0, 12)}…`)
  }
  t.match(text, /access_token=\[redacted\]/, 'the URL is logged with the value masked')
  t.ok(gw.logs.every((l) => typeof l.reqId === 'string' || !('req' in l)), 'request lines carry the request id')
})
