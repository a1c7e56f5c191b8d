/**
 * upstreamAuth.exchange (UPS-01, UPS-03): the gateway exchanges a JWT it signs about the caller
 * for a token of the operator's token service (RFC 8693), and the upstream gets that token. Real
 * parts: the gateway, an STS that verifies the subject token against the gateway's JWKS over
 * HTTP (test/fixtures/token-exchange-sts.ts) and a real SDK MCP server as the upstream.
 */
import t from 'tap'
import { ConfigError, loadConfigObject } from '../../src/config/load.js'
import { postJsonRpc } from '../fixtures/mcp-clients.js'
import { startSdk1Upstream } from '../fixtures/mcp-upstream.js'
import { ACCESS_TOKEN_TYPE, JWT_TOKEN_TYPE, startSts, STS_INTERNAL_DETAIL, TOKEN_EXCHANGE_GRANT } from '../fixtures/token-exchange-sts.js'
import { startTestGateway } from '../helpers/gateway.js'
import { reservePort } from '../helpers/ports.js'

const upstream = await startSdk1Upstream({ stateful: false, jsonResponse: true })
t.teardown(() => upstream.close())
const STS_CLIENT = { clientId: 'gatehouse-at-sts', clientSecret: 'sts-client-secret-3b7e1f9a0c4d6e2b8a5f' }
const sts = await startSts(STS_CLIENT)
t.teardown(() => sts.close())
// Reserved and never listened on: connecting to it is refused (an STS that is down).
const downPort = await reservePort(t)

const exchange = (tokenEndpoint: string) => ({
  tokenEndpoint,
  ...STS_CLIENT,
  audience: 'https://crm.example.com',
  resource: upstream.url,
  scope: 'crm.read',
  timeoutMs: 1000,
})
const gw = await startTestGateway(t, {
  resources: [
    { upstream: upstream.url, upstreamAuth: { exchange: exchange(sts.tokenEndpoint) } },
    { upstream: upstream.url, upstreamAuth: { exchange: exchange(`http://127.0.0.1:${downPort}/token`) } },
  ],
})
sts.trust(gw.config.issuer, `${gw.origin}/oauth/jwks`)

const ping = { jsonrpc: '2.0', id: 1, method: 'ping' }
const call = async (sub: string, resource = 'r0') => {
  const token = await gw.mint({ resource, sub, clientId: 'agent', scopes: ['mcp'] })
  const res = await postJsonRpc(gw.mcpUrl(resource), ping, { authorization: `Bearer ${token}` })
  return { res, token, seen: upstream.requests[upstream.requests.length - 1]! }
}
const issuedTo = (header: string | undefined) => sts.issued.get((header ?? '').replace(/^Bearer /, ''))
const stsCount = () => sts.exchanges.length

t.beforeEach(() => {
  sts.mode = 'normal'
  sts.expiresIn = 300
  sts.delayMs = 0
})

t.test('UPS-01, UPS-03: the upstream gets the exchanged token, never the client\'s; the exchange is RFC 8693', async (t) => {
  const before = stsCount()
  const { res, token, seen } = await call('static:alice')
  t.equal(res.status, 200, res.text)
  t.equal(stsCount(), before + 1, 'one exchange')
  const request = sts.exchanges[sts.exchanges.length - 1]!.form
  t.match(request, {
    grant_type: TOKEN_EXCHANGE_GRANT,
    subject_token_type: JWT_TOKEN_TYPE,
    requested_token_type: ACCESS_TOKEN_TYPE,
    audience: 'https://crm.example.com',
    resource: upstream.url,
    scope: 'crm.read',
  })
  t.not(request.subject_token, token, 'UPS-01: the subject token is the gateway\'s JWT, not the client\'s token')
  t.notMatch(JSON.stringify(request), token, 'the client\'s token is nowhere in the exchange')
  t.notOk('client_secret' in request, 'the secret travels in Basic, not in the form')
  const issued = issuedTo(seen.headers.authorization)
  t.ok(issued, 'the upstream got a token the STS issued')
  t.match(issued, { sub: 'static:alice', clientId: 'agent', audience: 'https://crm.example.com' }, 'for this caller')
  t.notMatch(JSON.stringify(seen.rawHeaders), token, 'UPS-01: the client\'s token reached no upstream header')
})

t.test('UPS-03: cached per caller until shortly before expires_in; then exchanged again', async (t) => {
  const first = await call('static:carol')
  const count = stsCount()
  const second = await call('static:carol')
  t.equal(second.res.status, 200)
  t.equal(stsCount(), count, 'the second call needs no exchange')
  t.equal(second.seen.headers.authorization, first.seen.headers.authorization, 'the cached token')

  sts.expiresIn = 2
  const short = await call('static:dave')
  const afterShort = stsCount()
  await call('static:dave')
  t.equal(stsCount(), afterShort, 'still cached within its lifetime minus the margin')
  await new Promise((r) => setTimeout(r, 1200))
  const renewed = await call('static:dave')
  t.equal(stsCount(), afterShort + 1, 'renewed shortly before expiry (2 s lifetime, margin 1 s)')
  t.not(renewed.seen.headers.authorization, short.seen.headers.authorization, 'a new token')

  sts.expiresIn = undefined
  await call('static:erin')
  await call('static:erin')
  t.equal(stsCount(), afterShort + 3, 'without expires_in a token serves one call only')
})

t.test('UPS-03: never shared between callers; concurrent calls of one caller share one exchange', async (t) => {
  const alice = await call('static:frank')
  const bob = await call('static:grace')
  t.not(alice.seen.headers.authorization, bob.seen.headers.authorization, 'two callers, two tokens')
  t.equal(issuedTo(alice.seen.headers.authorization)?.sub, 'static:frank')
  t.equal(issuedTo(bob.seen.headers.authorization)?.sub, 'static:grace')

  sts.delayMs = 300
  const before = stsCount()
  const upstreamBefore = upstream.requests.length
  const token = await gw.mint({ sub: 'static:heidi', clientId: 'agent', scopes: ['mcp'] })
  const answers = await Promise.all(
    Array.from({ length: 8 }, () => postJsonRpc(gw.mcpUrl(), ping, { authorization: `Bearer ${token}` })),
  )
  t.same(answers.map((a) => a.status), Array(8).fill(200))
  t.equal(stsCount(), before + 1, 'eight concurrent calls, one exchange (no thundering herd)')
  const presented = new Set(upstream.requests.slice(upstreamBefore).map((r) => r.headers.authorization))
  t.equal(presented.size, 1, 'all eight presented the one token')
  t.equal(issuedTo([...presented][0])?.sub, 'static:heidi')
})

const rpcError = (text: string) => (JSON.parse(text) as { error?: { code: number; message: string } }).error

t.test('UPS-03: a failing token service is a clear 502/503 JSON-RPC error, never a 500, never its body', async (t) => {
  const cases = [
    { mode: 'server_error', status: 503, sub: 'static:f1' },
    { mode: 'refuse', status: 502, sub: 'static:f2' },
    { mode: 'html', status: 502, sub: 'static:f3' },
    { mode: 'not_a_token', status: 502, sub: 'static:f4' },
  ] as const
  for (const c of cases) {
    sts.mode = c.mode
    const upstreamBefore = upstream.requests.length
    const { res } = await call(c.sub)
    t.equal(res.status, c.status, `${c.mode}: ${c.status}`)
    t.equal(rpcError(res.text)?.code, -32001, `${c.mode}: the JSON-RPC upstream-failure code`)
    t.notMatch(res.text, STS_INTERNAL_DETAIL, `${c.mode}: the STS's body is not echoed`)
    t.equal(upstream.requests.length, upstreamBefore, `${c.mode}: nothing went upstream`)
    if (c.status === 503) t.equal(res.headers.get('retry-after'), '5')
  }
  sts.mode = 'normal'
  const { res } = await call('static:f1')
  t.equal(res.status, 200, 'a failure is not cached: the next call exchanges again')
  const failed = gw.logs.filter((l) => l.audit === 'upstream.exchange_failed')
  t.match(failed.map((l) => l.reason), ['unavailable', 'refused', 'malformed', 'malformed'])
  t.match(failed[1], { status: 400, error: 'invalid_grant', sub: 'static:f2', resource: 'r0' }, 'the error code, not its description')
})

t.test('UPS-03: a token service that is down or too slow is 503 within the bounded timeout', async (t) => {
  const down = await call('static:g1', 'r1')
  t.equal(down.res.status, 503, 'connection refused: 503')
  t.equal(rpcError(down.res.text)?.code, -32001)
  sts.mode = 'slow'
  const started = Date.now()
  const slow = await call('static:g2')
  const took = Date.now() - started
  t.equal(slow.res.status, 503, 'no answer within timeoutMs: 503')
  t.ok(took >= 900 && took < 2500, `bounded by timeoutMs (1000 ms): took ${took} ms`)
  t.match(gw.logs.filter((l) => l.audit === 'upstream.exchange_failed').slice(-2).map((l) => l.reason), ['unreachable', 'timeout'])
})

t.test('UPS-03: the client secret, the subject tokens and the exchanged tokens never reach the log', async (t) => {
  const text = gw.logText()
  t.notMatch(text, STS_CLIENT.clientSecret, 'no client secret')
  t.notMatch(text, Buffer.from(`${STS_CLIENT.clientId}:${STS_CLIENT.clientSecret}`).toString('base64'), 'no Basic credentials')
  t.notMatch(text, STS_INTERNAL_DETAIL, 'nothing of the STS\'s bodies')
  const secrets = [...sts.exchanges.map((e) => e.form.subject_token!), ...sts.issued.keys()]
  t.ok(secrets.length > 10)
  t.equal(secrets.filter((s) => text.includes(s)).length, 0, 'no subject token and no exchanged token')
  t.ok(gw.logs.some((l) => l.audit === 'upstream.exchanged' && l.sub === 'static:alice' && l.expiresIn === 300), 'each exchange is audited')
})

t.test('configuration: the exchange needs https (or loopback), a target and the gateway\'s own keys', async (t) => {
  const problems = (exchange: Record<string, unknown>, extra: Record<string, unknown> = {}) => {
    try {
      loadConfigObject(
        { publicUrl: 'https://mcp.example.com', ...extra, resources: [{ id: 'crm', name: 'CRM', path: '/mcp', upstream: 'http://crm:3000/mcp', upstreamAuth: { exchange } }] },
        'test',
      )
      return ''
    } catch (err) {
      if (err instanceof ConfigError) return err.problems.map((p) => `${p.path}: ${p.message}`).join('\n')
      throw err
    }
  }
  const good = { tokenEndpoint: 'https://sts.example.com/token', clientId: 'gw', clientSecret: 's', audience: 'crm' }
  t.equal(problems(good), '')
  t.equal(problems({ ...good, tokenEndpoint: 'http://127.0.0.1:9000/token' }), '', 'http on loopback')
  t.match(problems({ ...good, tokenEndpoint: 'http://sts.example.com/token' }), /must be https/)
  t.match(problems({ ...good, audience: undefined }), /give audience or resource/)
  t.match(problems({ ...good, timeoutMs: 60000 }), /timeoutMs/)
  t.match(problems(good, { externalIssuer: { issuer: 'https://idp.example.com', jwksUri: 'https://idp.example.com/jwks' } }), /externalIssuer/)
})
