/**
 * A hung Redis (SIGSTOP: connections open, nothing answered), a slow one (DEBUG SLEEP) and a
 * dead one (SIGKILL) under a running gateway: every route that needs the store answers in its
 * own protocol's error form with 503 + Retry-After within a few command timeouts (never a hang,
 * never a 500), liveness and metrics keep answering, readiness fails and recovers by itself,
 * and nothing the store held is lost when Redis only froze.
 */
import t, { type Test } from 'tap'
import { postJsonRpc, connectSdk1Client } from '../fixtures/mcp-clients.js'
import { startSdk1Upstream } from '../fixtures/mcp-upstream.js'
import { FormBrowser } from '../helpers/form-browser.js'
import type { TestGateway } from '../helpers/gateway.js'
import {
  BOUNDED_MS,
  codeOf,
  exchangeCode,
  faultSetup,
  loginAndConsent,
  readyAgain,
  startAuthorization,
  timed,
  tokenRequest,
  storeReportedDown,
} from './fault-kit.js'

const upstream = await startSdk1Upstream({ stateful: true, jsonResponse: true })
t.teardown(() => upstream.close())

/** A live MCP session through the gateway, and a raw call on it. */
async function sessionCall(t: Test, gw: TestGateway) {
  const token = await gw.mint()
  const client = await connectSdk1Client(gw.mcpUrl(), { token })
  t.teardown(() => client.close().catch(() => {}))
  await client.listTools()
  const sessionId = upstream.sessionIds().at(-1)!
  return () =>
    postJsonRpc(gw.mcpUrl(), { jsonrpc: '2.0', id: 7, method: 'tools/list' }, {
      authorization: `Bearer ${token}`,
      'mcp-session-id': sessionId,
      'mcp-protocol-version': '2025-11-25',
    })
}

/** Tokens through the full browser flow, while Redis is up. */
async function tokens(gw: TestGateway) {
  const browser = new FormBrowser(gw.origin)
  const { verifier, page } = await startAuthorization(browser, gw.origin, gw.mcpUrl())
  const code = codeOf(await loginAndConsent(browser, page))
  if (!code) throw new Error('no code')
  const res = await exchangeCode(gw.origin, code, verifier)
  if (res.status !== 200) throw new Error(`exchange failed: ${res.status} ${JSON.stringify(res.body)}`)
  return res.body as { access_token: string; refresh_token: string }
}

/** Every store-backed route, answered while the store cannot answer. */
async function assertStoreDownAnswers(t: Test, gw: TestGateway, call: () => ReturnType<typeof postJsonRpc>, refreshToken: string, what: string) {
  const mcp = await timed(call)
  t.equal(mcp.value.status, 503, `${what}: MCP call on a session: 503`)
  t.equal(mcp.value.headers.get('retry-after'), '5', `${what}: MCP call: Retry-After`)
  t.match(JSON.parse(mcp.value.text), { jsonrpc: '2.0', error: { code: Number, message: /try again/ } }, `${what}: a JSON-RPC error`)
  t.ok(mcp.ms < BOUNDED_MS, `${what}: MCP call answered in ${mcp.ms} ms`)

  const refresh = await timed(() => tokenRequest(gw.origin, { grant_type: 'refresh_token', refresh_token: refreshToken }))
  t.equal(refresh.value.status, 503, `${what}: token endpoint: 503`)
  t.equal(refresh.value.headers.get('retry-after'), '5', `${what}: token endpoint: Retry-After`)
  t.same(Object.keys(refresh.value.body).sort(), ['error', 'error_description'], `${what}: token endpoint: OAuth error JSON`)
  t.equal(refresh.value.body.error, 'temporarily_unavailable')
  t.ok(refresh.ms < BOUNDED_MS, `${what}: token endpoint answered in ${refresh.ms} ms`)

  const browser = new FormBrowser(gw.origin)
  const authorize = await timed(() => startAuthorization(browser, gw.origin, gw.mcpUrl()))
  t.equal(authorize.value.page.status, 503, `${what}: authorization endpoint: 503`)
  t.match(authorize.value.page.headers.get('content-type'), /^text\/html/, `${what}: authorization endpoint: an HTML page`)
  t.equal(authorize.value.page.location, undefined, `${what}: no redirect to the client`)
  t.ok(authorize.ms < BOUNDED_MS, `${what}: authorization endpoint answered in ${authorize.ms} ms`)

  const ready = await timed(() => fetch(`${gw.origin}/readyz`))
  t.equal(ready.value.status, 200, `${what}: still ready: the outage is every replica's, not this one's`)
  t.ok(ready.ms < 200, `${what}: readiness does not wait for the store (${ready.ms} ms)`)
  t.ok(await storeReportedDown(gw), `${what}: /healthz reports the store down`)

  const live = await timed(() => fetch(`${gw.origin}/healthz`))
  t.equal(live.value.status, 200, `${what}: still alive`)
  t.ok(live.ms < 200, `${what}: liveness does not wait for the store (${live.ms} ms)`)
  const metrics = await timed(() => fetch(`${gw.gateway.metricsAddress}/metrics`))
  t.equal(metrics.value.status, 200, `${what}: metrics still answer`)
  t.ok(metrics.ms < 500, `${what}: metrics answered in ${metrics.ms} ms`)
  t.match(await metrics.value.text(), /outcome="error"/, `${what}: store errors are counted`)
}

async function assertRecovered(t: Test, gw: TestGateway, call: () => ReturnType<typeof postJsonRpc>) {
  t.ok(await readyAgain(gw), 'ready again by itself once Redis answers')
  t.equal((await call()).status, 200, 'the MCP session survived: nothing the store held was lost')
  const browser = new FormBrowser(gw.origin)
  const { page } = await startAuthorization(browser, gw.origin, gw.mcpUrl())
  t.equal(page.status, 200, 'a new authorization starts')
}

/** A private Redis and a gateway on it (metrics on), with a live MCP session and a refresh token. */
async function storeInUse(t: Test) {
  const setup = await faultSetup(t, upstream.url, { config: { metrics: { enabled: true, listen: { host: '127.0.0.1', port: 0 } } } })
  if (!setup) return undefined
  const call = await sessionCall(t, setup.gw)
  const { refresh_token } = await tokens(setup.gw)
  return { ...setup, call, refresh_token }
}

t.test('a hung Redis (SIGSTOP): bounded 503s in every protocol, then recovery with state intact', async (t) => {
  t.setTimeout(30_000)
  const setup = await storeInUse(t)
  if (!setup) return
  const { redis, gw, call, refresh_token, noStrayErrors } = setup

  redis.pause()
  t.teardown(() => redis.resume())
  await assertStoreDownAnswers(t, gw, call, refresh_token, 'hung')

  // Many requests at once on a hung store: each still bounded (no queue builds up behind it).
  const burst = await timed(() => Promise.all(Array.from({ length: 20 }, () => call())))
  t.same([...new Set(burst.value.map((r) => r.status))], [503], 'a burst: every call 503')
  t.ok(burst.ms < BOUNDED_MS * 2, `a burst of 20 answered in ${burst.ms} ms`)

  redis.resume()
  await assertRecovered(t, gw, call)
  const refreshed = await tokenRequest(gw.origin, { grant_type: 'refresh_token', refresh_token })
  // The refresh attempted during the hang reached Redis only as a read (GET) that timed out; the token is intact.
  t.equal(refreshed.status, 200, 'the refresh token refused during the hang still works')
  noStrayErrors()
})

t.test('a slow Redis (DEBUG SLEEP longer than commandTimeoutMs): 503s, then normal service', async (t) => {
  t.setTimeout(30_000)
  const setup = await storeInUse(t)
  if (!setup) return
  const { redis, gw, call, refresh_token, noStrayErrors } = setup

  const admin = redis.admin()
  const sleeping = admin.call('DEBUG', 'SLEEP', '3').catch(() => undefined)
  await new Promise((r) => setTimeout(r, 50))
  await assertStoreDownAnswers(t, gw, call, refresh_token, 'slow')
  await sleeping
  await assertRecovered(t, gw, call)
  noStrayErrors()
})

t.test('a dead Redis (SIGKILL) during use: fast 503s; restarted empty: clean refusals, not 500s', async (t) => {
  t.setTimeout(30_000)
  const setup = await storeInUse(t)
  if (!setup) return
  const { redis, gw, call, refresh_token, noStrayErrors } = setup

  await redis.kill()
  await assertStoreDownAnswers(t, gw, call, refresh_token, 'dead')
  await redis.start()
  t.ok(await readyAgain(gw), 'ready again')
  // Without persistence everything is gone: each piece of lost state is refused in its own protocol.
  t.equal((await call()).status, 404, 'the lost session binding: 404, so the client starts a new session')
  const refresh = await tokenRequest(gw.origin, { grant_type: 'refresh_token', refresh_token })
  t.equal(refresh.status, 400)
  t.equal(refresh.body.error, 'invalid_grant', 'the lost refresh token: invalid_grant, so the client authorizes again')
  const again = await tokens(gw)
  t.ok(again.access_token, 'a complete new authorization works')
  t.notOk(gw.logs.some((l) => l.level === 50 && l.msg === 'unexpected error'), 'no unexpected errors logged')
  noStrayErrors()
})
