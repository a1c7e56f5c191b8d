/**
 * Rate limits: counted in the store, so two gateway replicas on one Redis share every count
 * (SEC-35, DCR-05); refusals are 429 with Retry-After in the protocol of the route (OAuth JSON,
 * an HTML page that never redirects, a JSON-RPC error); IPv6 addresses count per /64.
 */
import t, { type Test } from 'tap'
import { addressKey } from '../../src/http/rate-limit.js'
import { startTestGateway, type TestGateway } from '../helpers/gateway.js'
import { redisForTests, redisServerForTests } from '../helpers/redis.js'

t.setTimeout(120_000)

const NO_UPSTREAM = 'http://127.0.0.1:1/mcp'
const CLIENT = { clientId: 'test-client', name: 'Test client', redirectUris: ['http://127.0.0.1/callback'] }

/** Two replicas of one deployment: same configuration, same Redis and key prefix. */
async function twoReplicas(t: Test, config: Record<string, unknown>): Promise<[TestGateway, TestGateway] | undefined> {
  const redis = await redisForTests(t)
  if (!redis) return undefined
  const store = { type: 'redis', redis: redis.storeConfig() }
  // trustProxy: the tests speak for many client addresses through X-Forwarded-For.
  const options = { store, resources: [{ upstream: NO_UPSTREAM }], config: { trustProxy: true, clients: [CLIENT], ...config } }
  return [await startTestGateway(t, options), await startTestGateway(t, options)]
}

const limits = (overrides: Record<string, unknown>) => ({
  rateLimits: {
    authorize: { perAddress: { requests: 1000 }, perClient: { requests: 1000 } },
    token: { perAddress: { requests: 1000 }, perClient: { requests: 1000 } },
    mcp: { perSubject: { requests: 1000 } },
    ...overrides,
  },
})

function tokenRequest(gw: TestGateway, { clientId, from = '198.51.100.7' }: { clientId?: string; from?: string }) {
  const form = new URLSearchParams({ grant_type: 'refresh_token', refresh_token: 'not-a-real-token' })
  if (clientId !== undefined) form.set('client_id', clientId)
  return fetch(`${gw.origin}/oauth/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', 'x-forwarded-for': from },
    body: form,
  })
}

function retryAfter(res: Response): number {
  return Number(res.headers.get('retry-after'))
}

t.test('address keys: IPv4 as is, IPv4-mapped IPv6 as IPv4, IPv6 grouped by /64', async (t) => {
  t.equal(addressKey('203.0.113.9'), '203.0.113.9')
  t.equal(addressKey('::ffff:203.0.113.9'), '203.0.113.9', 'a mapped address is the IPv4 client it stands for')
  t.equal(addressKey('2001:db8:1:2::1'), '2001:db8:1:2::/64')
  t.equal(addressKey('2001:db8:1:2:ffff:ee:dd:cc'), addressKey('2001:db8:1:2::1'), 'one /64, one count: an attacker gets the whole block')
  t.not(addressKey('2001:db8:1:3::1'), addressKey('2001:db8:1:2::1'), 'the next /64 is another subscriber')
  t.equal(addressKey('2001:0DB8:0001:0002::1'), '2001:db8:1:2::/64', 'written forms fold to one key')
  t.equal(addressKey('not an address'), 'not an address', 'anything else is counted as given')
})

t.test('token endpoint: the per-client limit is shared by two replicas; 429 OAuth JSON with Retry-After (SEC-35)', async (t) => {
  const replicas = await twoReplicas(t, limits({ token: { perAddress: { requests: 1000 }, perClient: { requests: 3, windowSeconds: 120 } } }))
  if (!replicas) return
  const [a, b] = replicas
  const statuses = []
  for (const gw of [a, b, a]) statuses.push((await tokenRequest(gw, { clientId: 'busy-client' })).status)
  t.notOk(statuses.includes(429), `three requests pass across both replicas (${statuses.join(', ')})`)
  const refused = await tokenRequest(b, { clientId: 'busy-client', from: '192.0.2.44' })
  t.equal(refused.status, 429, 'the fourth, on the other replica and from another address, is refused: the count is shared')
  t.match(refused.headers.get('content-type'), /^application\/json/)
  t.same(await refused.json(), { error: 'too_many_requests', error_description: 'too many requests for this client; try again later' })
  t.ok(retryAfter(refused) > 0 && retryAfter(refused) <= 120, `Retry-After ${retryAfter(refused)} is the window's remaining time`)
  t.equal(refused.headers.get('cache-control'), 'no-store')
  t.not((await tokenRequest(a, { clientId: 'other-client' })).status, 429, 'another client id is not affected')

  const basic = await fetch(`${a.origin}/oauth/token`, {
    method: 'POST',
    headers: {
      'content-type': 'application/x-www-form-urlencoded',
      authorization: `Basic ${Buffer.from('busy-client:some-secret').toString('base64')}`,
    },
    body: 'grant_type=refresh_token&refresh_token=x',
  })
  t.equal(basic.status, 429, 'the client id of Basic credentials counts the same as the form parameter')
  t.ok(a.logs.some((l) => l.audit === 'rate_limited' && l.limit === 'token' && l.scope === 'client'), 'the refusal is an audit event')
  t.notMatch(a.logText() + b.logText(), 'some-secret', 'the presented secret is logged nowhere')
})

t.test('token endpoint: the per-address limit is shared by two replicas; IPv6 counts per /64 (SEC-35)', async (t) => {
  const replicas = await twoReplicas(t, limits({ token: { perAddress: { requests: 2, windowSeconds: 60 }, perClient: { requests: 1000 } } }))
  if (!replicas) return
  const [a, b] = replicas
  t.not((await tokenRequest(a, { clientId: 'c1', from: '2001:db8:5:6::1' })).status, 429)
  t.not((await tokenRequest(b, { clientId: 'c2', from: '2001:db8:5:6:aaaa::2' })).status, 429)
  const refused = await tokenRequest(a, { clientId: 'c3', from: '2001:db8:5:6:ffff:1:2:3' })
  t.equal(refused.status, 429, 'a third address of the same /64, with a fresh client id, is refused')
  t.equal(((await refused.json()) as { error_description: string }).error_description, 'too many requests from this address; try again later')
  t.ok(retryAfter(refused) > 0 && retryAfter(refused) <= 60)
  t.not((await tokenRequest(b, { clientId: 'c3', from: '2001:db8:5:7::1' })).status, 429, 'the neighbouring /64 is not affected')
  t.not((await tokenRequest(b, { clientId: 'c3', from: '198.51.100.1' })).status, 429, 'nor an IPv4 address')
})

t.test('authorize: 429 is an HTML page at the gateway, never a redirect to the unverified redirect URI (O21-09, SEC-35)', async (t) => {
  const replicas = await twoReplicas(t, limits({ authorize: { perAddress: { requests: 1000 }, perClient: { requests: 2, windowSeconds: 60 } } }))
  if (!replicas) return
  const [a, b] = replicas
  const url = (gw: TestGateway, clientId: string) =>
    `${gw.origin}/oauth/authorize?` +
    new URLSearchParams({
      client_id: clientId,
      response_type: 'code',
      redirect_uri: 'https://attacker.example/cb',
      code_challenge: 'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM',
      code_challenge_method: 'S256',
      state: 's',
    })
  t.not((await fetch(url(a, 'test-client'), { redirect: 'manual' })).status, 429)
  t.not((await fetch(url(b, 'test-client'), { redirect: 'manual' })).status, 429)
  const refused = await fetch(url(a, 'test-client'), { redirect: 'manual' })
  t.equal(refused.status, 429)
  t.equal(refused.headers.get('location'), null, 'no redirect')
  t.match(refused.headers.get('content-type'), /^text\/html/)
  t.match(refused.headers.get('content-security-policy'), /frame-ancestors 'none'/)
  t.ok(retryAfter(refused) > 0)
  t.match(await refused.text(), /too many requests for this client; try again later/)
  t.not((await fetch(url(b, 'another-client'), { redirect: 'manual' })).status, 429, 'another client id is not affected')
})

t.test('authorize forms count per address (login password guessing) on every replica (SEC-35)', async (t) => {
  const replicas = await twoReplicas(t, limits({ authorize: { perAddress: { requests: 2, windowSeconds: 60 }, perClient: { requests: 1000 } } }))
  if (!replicas) return
  const [a, b] = replicas
  const login = (gw: TestGateway) =>
    fetch(`${gw.origin}/oauth/authorize/login`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', 'x-forwarded-for': '203.0.113.50' },
      body: 'request=unknown&csrf=x&username=alice&password=guess',
      redirect: 'manual',
    })
  t.not((await login(a)).status, 429)
  t.not((await login(b)).status, 429)
  const refused = await login(a)
  t.equal(refused.status, 429)
  t.match(refused.headers.get('content-type'), /^text\/html/)
  t.match(await refused.text(), /too many requests from this address/)
})

t.test('registration: the per-address limit (registration.rateLimit) is shared by two replicas (DCR-05)', async (t) => {
  const replicas = await twoReplicas(t, { registration: { enabled: true, rateLimit: { perAddress: 2, windowSeconds: 600 } } })
  if (!replicas) return
  const [a, b] = replicas
  const register = (gw: TestGateway, from: string) =>
    fetch(`${gw.origin}/oauth/register`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-forwarded-for': from },
      body: JSON.stringify({ redirect_uris: ['http://127.0.0.1/cb'], client_name: `c-${Math.random()}` }),
    })
  t.equal((await register(a, '2001:db8:9::1')).status, 201)
  t.equal((await register(b, '2001:db8:9::2')).status, 201)
  const refused = await register(a, '2001:db8:9::3')
  t.equal(refused.status, 429, 'the third from the same /64 is refused, whichever replica counts it')
  t.equal(((await refused.json()) as { error: string }).error, 'too_many_requests')
  t.ok(retryAfter(refused) > 0 && retryAfter(refused) <= 600)
  t.equal((await register(b, '198.51.100.9')).status, 201, 'another address is not affected')
  t.ok(a.logs.some((l) => l.audit === 'client.registration_refused' && l.reason === 'rate_limited'))
  t.ok(a.logs.some((l) => l.audit === 'rate_limited' && l.limit === 'registration' && l.scope === 'address'))
})

t.test('MCP endpoints: the per-subject limit is shared by two replicas; 429 is a JSON-RPC error with Retry-After', async (t) => {
  const replicas = await twoReplicas(t, limits({ mcp: { perSubject: { requests: 2, windowSeconds: 60 } } }))
  if (!replicas) return
  const [a, b] = replicas
  const call = async (gw: TestGateway, sub: string) =>
    fetch(gw.mcpUrl(), {
      method: 'POST',
      headers: { authorization: `Bearer ${await gw.mint({ sub })}`, 'content-type': 'application/json', accept: 'application/json, text/event-stream' },
      body: '{"jsonrpc":"2.0","id":7,"method":"ping"}',
    })
  t.equal((await call(a, 'heavy-user')).status, 502, 'allowed (and proxied to the deliberately absent upstream)')
  t.equal((await call(b, 'heavy-user')).status, 502)
  const refused = await call(a, 'heavy-user')
  t.equal(refused.status, 429)
  t.ok(retryAfter(refused) > 0 && retryAfter(refused) <= 60)
  t.same(await refused.json(), { jsonrpc: '2.0', id: null, error: { code: -32008, message: 'too many requests for this user; try again later' } })
  t.equal((await call(b, 'light-user')).status, 502, 'another subject is not affected')
  const unauthenticated = await fetch(a.mcpUrl(), { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' })
  t.equal(unauthenticated.status, 401, 'the bearer check comes first: no subject, nothing counted')
  t.ok(a.logs.some((l) => l.audit === 'rate_limited' && l.limit === 'mcp' && l.scope === 'subject'))
})

t.test('rateLimits.enabled: false turns the limits off', async (t) => {
  const replicas = await twoReplicas(t, { rateLimits: { enabled: false, token: { perClient: { requests: 1 } } } })
  if (!replicas) return
  const [a, b] = replicas
  for (const gw of [a, b, a, b]) t.not((await tokenRequest(gw, { clientId: 'any' })).status, 429)
})

t.test('a store outage fails open: MCP calls keep flowing, the limiter says so in the log', async (t) => {
  const server = await redisServerForTests(t)
  if (!server) return
  const gw = await startTestGateway(t, {
    store: { type: 'redis', redis: { url: server.url, connectTimeoutMs: 500, commandTimeoutMs: 500 } },
    resources: [{ upstream: NO_UPSTREAM }],
    config: { keys: [], ...limits({ mcp: { perSubject: { requests: 1, windowSeconds: 60 } } }) },
  })
  const token = await gw.mint({ sub: 'carol' })
  const call = () =>
    fetch(gw.mcpUrl(), {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', accept: 'application/json, text/event-stream' },
      body: '{"jsonrpc":"2.0","id":1,"method":"ping"}',
    })
  t.equal((await call()).status, 502)
  t.equal((await call()).status, 429, 'the limit works while the store answers')
  await server.kill()
  t.equal((await call()).status, 502, 'with the store down the call is not refused by the limiter (no 429, no 503)')
  t.equal((await call()).status, 502, 'and the next one is not held up by it')
  t.ok(gw.logs.some((l) => l.msg === 'rate limits not checked: the store failed; requests pass unlimited for a moment'))
})
