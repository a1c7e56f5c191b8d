/**
 * The security-event metric families, fed by the audit trail: each event type at unit level on
 * a real AuditTrail and registry, hostile free-string fields kept out of the labels, and the
 * events a real gateway records at its call sites (bearer refusals, registrations, rate limits).
 */
import t from 'tap'
import { AuditTrail, type AuditEvent } from '../../src/audit/events.js'
import { countAuditEvents } from '../../src/metrics/audit-counters.js'
import { GatewayMetrics } from '../../src/metrics/gateway-metrics.js'
import { postJsonRpc } from '../fixtures/mcp-clients.js'
import { startSdk1Upstream } from '../fixtures/mcp-upstream.js'
import { startHttpDocServer } from '../cimd/servers.js'
import { authorizeUrl } from '../helpers/authorize-url.js'
import { startTestGateway } from '../helpers/gateway.js'
import { parseExposition, scrape, type Exposition } from './metrics-exposition.js'

const RESOURCES = [
  { id: 'files', uri: 'https://mcp.example.com/files/mcp' },
  { id: 'tickets', uri: 'https://mcp.example.com/tickets/mcp' },
]

function counting() {
  const trail = new AuditTrail()
  const metrics = new GatewayMetrics({ resources: RESOURCES, processMetrics: false })
  countAuditEvents(trail, metrics)
  return { trail, metrics, read: async (): Promise<Exposition> => parseExposition(await metrics.exposition()) }
}

t.test('a resource a live reload adds gets its own label value and zero series; an unknown one stays other', async (t) => {
  const { trail, metrics, read } = counting()
  const added = { id: 'wiki', uri: 'https://mcp.example.com/wiki/mcp' }
  trail.record({ type: 'access.refused', sub: 's', provider: 'oidc', clientId: 'c', resource: added.uri })
  t.equal((await read()).value('gatehouse_access_refusals_total', { resource: 'other' }), 1, 'before the reload: other')
  metrics.addResources([...RESOURCES, added])
  t.equal((await read()).value('gatehouse_sse_streams_open', { resource: 'wiki' }), 0, 'its series exist at once')
  trail.record({ type: 'access.refused', sub: 's', provider: 'oidc', clientId: 'c', resource: added.uri })
  trail.record({ type: 'access.refused', sub: 's', provider: 'oidc', clientId: 'c', resource: 'wiki' })
  t.equal((await read()).value('gatehouse_access_refusals_total', { resource: 'wiki' }), 2, 'after it: by URI or id, the id')
  trail.record({ type: 'access.refused', sub: 's', provider: 'oidc', clientId: 'c', resource: 'https://evil.example/mcp' })
  t.equal((await read()).value('gatehouse_access_refusals_total', { resource: 'other' }), 2, 'anything else: other')
})

t.test('each audit event type moves its family by exactly one, with bounded labels', async (t) => {
  const cases: [AuditEvent, string, Record<string, string>][] = [
    [
      { type: 'token.issued', grantType: 'authorization_code', sub: 's', clientId: 'c', resource: 'files', grantId: 'g', scopes: [] },
      'gatehouse_tokens_total',
      { grant_type: 'authorization_code', outcome: 'issued' },
    ],
    [
      { type: 'token.issued', grantType: 'refresh_token', sub: 's', clientId: 'c', resource: 'files', grantId: 'g', scopes: [] },
      'gatehouse_tokens_total',
      { grant_type: 'refresh_token', outcome: 'issued' },
    ],
    [{ type: 'token.refused', grantType: 'refresh_token', error: 'invalid_grant' }, 'gatehouse_token_refusals_total', { grant_type: 'refresh_token', reason: 'invalid_grant' }],
    [{ type: 'bearer.refused', resource: 'files', reason: 'audience' }, 'gatehouse_bearer_refusals_total', { resource: 'files', reason: 'audience' }],
    [{ type: 'client.resolved', clientId: 'https://a.example/c', source: 'cimd', cache: 'hit' }, 'gatehouse_cimd_resolutions_total', { outcome: 'cache_hit' }],
    [{ type: 'client.resolved', clientId: 'https://a.example/c', source: 'cimd', cache: 'fetched' }, 'gatehouse_cimd_resolutions_total', { outcome: 'fetched' }],
    [{ type: 'client.refused', clientId: 'https://a.example/c', reason: 'trust_policy' }, 'gatehouse_cimd_resolutions_total', { outcome: 'refused_trust_policy' }],
    [{ type: 'client.refused', clientId: 'https://a.example/c', reason: 'fetch_error' }, 'gatehouse_cimd_resolutions_total', { outcome: 'refused_fetch_error' }],
    [{ type: 'client.refused', clientId: 'https://a.example/c', reason: 'fetch_error', rule: 'fetch.content_type' }, 'gatehouse_cimd_resolutions_total', { outcome: 'refused_fetch_content_type' }],
    [{ type: 'client.refused', clientId: 'https://a.example/c', reason: 'fetch_error', rule: 'fetch.made-up' }, 'gatehouse_cimd_resolutions_total', { outcome: 'refused_fetch_error' }],
    [{ type: 'client.refused', clientId: 'https://a.example/c', reason: 'metadata_policy', field: 'grant_types' }, 'gatehouse_cimd_resolutions_total', { outcome: 'refused_metadata_policy' }],
    [{ type: 'client.registered', clientId: 'dcr.x', authMethod: 'none' }, 'gatehouse_dcr_registrations_total', { outcome: 'registered' }],
    [{ type: 'client.registration_refused', reason: 'invalid_redirect_uri' }, 'gatehouse_dcr_registrations_total', { outcome: 'invalid_redirect_uri' }],
    [{ type: 'client.deleted', clientId: 'dcr.x', by: 'operator' }, 'gatehouse_dcr_deletions_total', { by: 'operator' }],
    [{ type: 'grant.revoked', grantId: 'g', by: 'refresh_reuse' }, 'gatehouse_grants_revoked_total', { by: 'refresh_reuse' }],
    [{ type: 'code.issued', sub: 's', clientId: 'c', resource: 'files', grantId: 'g', scopes: [] }, 'gatehouse_authorization_codes_issued_total', {}],
    [{ type: 'code.replayed', clientId: 'c', grantId: 'g' }, 'gatehouse_authorization_code_replays_total', {}],
    [{ type: 'refresh.reused', clientId: 'c', grantId: 'g' }, 'gatehouse_refresh_token_reuses_total', {}],
    [{ type: 'login.succeeded', sub: 's', provider: 'static' }, 'gatehouse_logins_total', { outcome: 'succeeded' }],
    [{ type: 'login.failed', provider: 'static', reason: 'bad_credentials' }, 'gatehouse_logins_total', { outcome: 'bad_credentials' }],
    [{ type: 'access.refused', sub: 's', provider: 'oidc', clientId: 'c', resource: 'tickets' }, 'gatehouse_access_refusals_total', { resource: 'tickets' }],
    [{ type: 'consent.granted', sub: 's', clientId: 'c', resource: 'files', scopes: [], remembered: false }, 'gatehouse_consents_total', { outcome: 'granted' }],
    [{ type: 'consent.granted', sub: 's', clientId: 'c', resource: 'files', scopes: [], remembered: true }, 'gatehouse_consents_total', { outcome: 'remembered' }],
    [{ type: 'consent.denied', clientId: 'c', resource: 'files' }, 'gatehouse_consents_total', { outcome: 'denied' }],
    [
      { type: 'mcp.decision', resource: 'files', sub: 's', clientId: 'c', method: 'tools/call', name: 'x', decision: 'deny', rule: 'r' },
      'gatehouse_mcp_decisions_total',
      { resource: 'files', decision: 'deny' },
    ],
    [{ type: 'rate_limited', limit: 'token.per_client', scope: 'client' }, 'gatehouse_rate_limited_total', { limit: 'token.per_client', scope: 'client' }],
    [{ type: 'config.reload', result: 'applied', trigger: 'signal' }, 'gatehouse_config_reloads_total', { result: 'applied' }],
    [{ type: 'config.reload', result: 'refused', trigger: 'file', problems: 2 }, 'gatehouse_config_reloads_total', { result: 'refused' }],
    [{ type: 'admin.refused', reason: 'bad_token', path: '/admin' }, 'gatehouse_admin_refusals_total', { reason: 'bad_token' }],
    [{ type: 'admin.refused', reason: 'not_admin', sub: 'static:bob', path: '/admin/grants' }, 'gatehouse_admin_refusals_total', { reason: 'not_admin' }],
  ]
  const { trail, read } = counting()
  for (const [event, family, labels] of cases) {
    const before = (await read()).value(family, labels)
    trail.record(event)
    t.equal((await read()).value(family, labels) - before, 1, `${event.type} → ${family}${JSON.stringify(labels)}`)
  }
  const before = await read()
  const tokens = before.value('gatehouse_tokens_total', { grant_type: 'refresh_token', outcome: 'refused' })
  t.equal(tokens, 1, 'a token refusal also counts as a refused token request')
})

t.test('free-string event fields never become label values', async (t) => {
  const { trail, read } = counting()
  trail.record({ type: 'token.refused', grantType: 'https://evil.example/grant', clientId: 'https://evil.example/c', error: 'made_up <script>' })
  trail.record({ type: 'bearer.refused', resource: 'https://evil.example/mcp', reason: 'invalid' })
  trail.record({ type: 'bearer.refused', resource: 'https://mcp.example.com/tickets/mcp', reason: 'expired' })
  trail.record({ type: 'rate_limited', limit: 'Not A Limit Name', scope: 'address' })
  trail.record({ type: 'access.refused', sub: 'alice', provider: 'oidc', clientId: 'c', resource: 'nowhere' })
  for (let i = 0; i < 40; i++) trail.record({ type: 'rate_limited', limit: `limit_${i}`, scope: 'host' })
  const e = await read()
  t.equal(e.value('gatehouse_token_refusals_total', { grant_type: 'other', reason: 'other' }), 1, 'unknown grant type and error: other')
  t.equal(e.value('gatehouse_bearer_refusals_total', { resource: 'other', reason: 'invalid' }), 1, 'an unknown resource: other')
  t.equal(e.value('gatehouse_bearer_refusals_total', { resource: 'tickets', reason: 'expired' }), 1, 'a resource URI is labelled by its id')
  t.equal(e.value('gatehouse_access_refusals_total', { resource: 'other' }), 1)
  const limits = new Set(e.all('gatehouse_rate_limited_total').map((s) => s.labels.limit))
  t.ok(limits.size <= 33, `at most 32 limit names and other (${limits.size})`)
  t.ok(limits.has('other'), 'a malformed or surplus limit name is other')
  t.notMatch(e.text, /evil|script|Not A Limit|nowhere|alice/)
})

t.test('a real gateway: bearer refusals, registrations and rate limits recorded at their call sites', async (t) => {
  const upstream = await startSdk1Upstream({ stateful: false, jsonResponse: true })
  t.teardown(() => upstream.close())
  const gw = await startTestGateway(t, {
    resources: [{ upstream: upstream.url }],
    config: {
      metrics: { enabled: true, listen: { host: '127.0.0.1', port: 0 } },
      registration: { enabled: true },
      rateLimits: { mcp: { perSubject: { requests: 2, windowSeconds: 60 } } },
    },
  })
  const read = () => scrape(gw.gateway.metricsAddress!)
  const before = await read()
  const ping = { jsonrpc: '2.0', id: 1, method: 'ping' }

  t.equal((await postJsonRpc(gw.mcpUrl(), ping)).status, 401)
  t.equal((await postJsonRpc(gw.mcpUrl(), ping, { authorization: 'Bearer not-a-jwt' })).status, 401)
  const foreign = await gw.mint({ audience: 'http://127.0.0.1:1/other/mcp' })
  t.equal((await postJsonRpc(gw.mcpUrl(), ping, { authorization: `Bearer ${foreign}` })).status, 401)

  const register = (body: unknown) =>
    fetch(`${gw.origin}/oauth/register`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) })
  t.equal((await register({ redirect_uris: ['http://127.0.0.1/callback'], client_name: 'Metrics test' })).status, 201)
  t.equal((await register({ redirect_uris: ['javascript:alert(1)'] })).status, 400)

  const token = await gw.mint({ sub: 'busy-agent' })
  const statuses: number[] = []
  for (let i = 0; i < 3; i++) statuses.push((await postJsonRpc(gw.mcpUrl(), ping, { authorization: `Bearer ${token}` })).status)
  t.same(statuses, [200, 200, 429], 'the third call in the window is limited')

  const after = await read()
  const d = (name: string, labels: Record<string, string>) => after.value(name, labels) - before.value(name, labels)
  const refusals = after.all('gatehouse_bearer_refusals_total').filter((s) => s.labels.resource === 'r0')
  t.equal(refusals.reduce((n, s) => n + s.value, 0), 3, `three bearer refusals (${refusals.map((s) => s.labels.reason).join(', ')})`)
  t.equal(d('gatehouse_bearer_refusals_total', { resource: 'r0', reason: 'missing' }), 1, 'no token: missing')
  t.equal(d('gatehouse_dcr_registrations_total', { outcome: 'registered' }), 1)
  t.equal(
    after.all('gatehouse_dcr_registrations_total').filter((s) => s.labels.outcome !== 'registered').reduce((n, s) => n + s.value, 0),
    1,
    'one refused registration',
  )
  const limited = after.all('gatehouse_rate_limited_total')
  t.equal(limited.reduce((n, s) => n + s.value, 0), 1, `one rate-limited call (${limited.map((s) => JSON.stringify(s.labels)).join(' ')})`)
  t.same(limited.map((s) => s.labels.scope), ['subject'])
  t.equal(d('gatehouse_http_requests_total', { route: 'mcp', resource: 'r0', status: '429' }), 1)
  t.equal(d('gatehouse_http_requests_total', { route: 'register', resource: '', status: '201' }), 1)
})

t.test('a real gateway: metadata-document resolutions and token refusals recorded at their call sites', async (t) => {
  const docs = await startHttpDocServer()
  t.teardown(() => docs.close())
  const clientId = `${docs.origin}/client.json`
  docs.routes.set('/client.json', (_req, res) => {
    res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'max-age=600' }).end(
      JSON.stringify({ client_id: clientId, client_name: 'Counted', redirect_uris: ['http://127.0.0.1/callback'] }),
    )
  })
  const gw = await startTestGateway(t, {
    resources: [{ upstream: 'http://127.0.0.1:9/mcp' }],
    config: {
      metrics: { enabled: true, listen: { host: '127.0.0.1', port: 0 } },
      cimd: { enabled: true, allowHttp: true, allowPrivateAddresses: true, trust: { allow: [{ prefix: `${docs.origin}/` }] } },
    },
  })
  const read = () => scrape(gw.gateway.metricsAddress!)
  const before = await read()
  const authorize = (client: string) =>
    fetch(authorizeUrl(gw.origin, { client_id: client, redirect_uri: 'http://127.0.0.1:5555/callback', code_challenge: 'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM' }))
  t.ok((await authorize(clientId)).status < 500)
  t.ok((await authorize(clientId)).status < 500)
  t.ok((await authorize('https://untrusted.example/client.json')).status < 500)
  t.equal(docs.hits.get('/client.json'), 1, 'fetched once, then from the cache')
  const token = await fetch(`${gw.origin}/oauth/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: `grant_type=authorization_code&code=not-a-code&code_verifier=${'v'.repeat(43)}&client_id=${encodeURIComponent(clientId)}&redirect_uri=x`,
  })
  t.equal(token.status, 400)
  const after = await read()
  const d = (name: string, labels: Record<string, string>) => after.value(name, labels) - before.value(name, labels)
  t.equal(d('gatehouse_cimd_resolutions_total', { outcome: 'fetched' }), 1)
  t.ok(d('gatehouse_cimd_resolutions_total', { outcome: 'cache_hit' }) >= 1, 'the second authorize hit the cache')
  t.equal(d('gatehouse_cimd_resolutions_total', { outcome: 'refused_trust_policy' }), 1, 'an untrusted client id')
  t.equal(d('gatehouse_tokens_total', { grant_type: 'authorization_code', outcome: 'refused' }), 1)
  t.equal(
    after.all('gatehouse_token_refusals_total').reduce((n, s) => n + s.value, 0),
    1,
    `one token refusal (${after.all('gatehouse_token_refusals_total').map((s) => s.labels.reason).join(', ')})`,
  )
  t.notMatch(after.text, /127\.0\.0\.1|untrusted|not-a-code/, 'no client id or code in the exposition')
})
