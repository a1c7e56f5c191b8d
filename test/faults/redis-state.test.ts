/**
 * What survives a Redis restart, and what a lost or half-done piece of state turns into.
 * - Redis persisted (AOF, fsync always) and SIGKILLed: grants, refresh tokens, codes, login
 *   sessions and MCP session bindings all work after the restart.
 * - An authorization caught mid-way by an outage or a FLUSHALL is refused cleanly (an HTML page
 *   at the browser routes, OAuth JSON at the token endpoint), never half-issued.
 * - A gateway started while Redis is down or hung starts (with configured keys), is not ready,
 *   and becomes ready by itself; closing it while Redis hangs is bounded.
 */
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { exportPKCS8, generateKeyPair } from 'jose'
import t, { type Test } from 'tap'
import { connectSdk1Client, postJsonRpc } from '../fixtures/mcp-clients.js'
import { startSdk1Upstream } from '../fixtures/mcp-upstream.js'
import { FormBrowser } from '../helpers/form-browser.js'
import { redisServerForTests, type TestRedisServer } from '../helpers/redis.js'
import { watchStrayErrors } from '../helpers/stray-errors.js'
import {
  BOUNDED_MS,
  codeOf,
  exchangeCode,
  faultGateway,
  faultSetup,
  loginAndConsent,
  readyAgain,
  startAuthorization,
  timed,
  tokenRequest,
  USER,
  storeReportedDown,
} from './fault-kit.js'

const upstream = await startSdk1Upstream({ stateful: true, jsonResponse: true })
t.teardown(() => upstream.close())

async function restart(redis: TestRedisServer): Promise<void> {
  await redis.kill()
  await redis.start()
}

t.test('Redis persisted, killed and restarted: tokens, codes, logins and sessions all still work', async (t) => {
  t.setTimeout(30_000)
  const setup = await faultSetup(t, upstream.url, { persist: true })
  if (!setup) return
  const { redis, gw, noStrayErrors } = setup

  // A complete flow (for a refresh token), a code not yet exchanged, a login session, an MCP session.
  const browser = new FormBrowser(gw.origin)
  const first = await startAuthorization(browser, gw.origin, gw.mcpUrl())
  const code1 = codeOf(await loginAndConsent(browser, first.page))!
  const issued = await exchangeCode(gw.origin, code1, first.verifier)
  t.equal(issued.status, 200)
  const second = await startAuthorization(browser, gw.origin, gw.mcpUrl())
  t.ok(second.page.location, 'the logged-in browser with consent goes straight back with a code')
  const code2 = codeOf(second.page)!
  const token = await gw.mint()
  const client = await connectSdk1Client(gw.mcpUrl(), { token })
  t.teardown(() => client.close().catch(() => {}))
  await client.listTools()
  const sessionId = upstream.sessionIds().at(-1)!

  await restart(redis)
  t.ok(await readyAgain(gw), 'ready again')

  const refreshed = await tokenRequest(gw.origin, { grant_type: 'refresh_token', refresh_token: issued.body.refresh_token })
  t.equal(refreshed.status, 200, 'the refresh token works after the restart')
  t.ok(refreshed.body.refresh_token && refreshed.body.refresh_token !== issued.body.refresh_token, 'and rotates')
  const exchanged = await exchangeCode(gw.origin, code2, second.verifier)
  t.equal(exchanged.status, 200, 'the pending code is exchanged after the restart')
  const replay = await exchangeCode(gw.origin, code1, first.verifier)
  t.equal(replay.status, 400, 'a code redeemed before the restart is still single use')
  t.equal(replay.body.error, 'invalid_grant')
  const third = await startAuthorization(browser, gw.origin, gw.mcpUrl())
  t.ok(codeOf(third.page), 'the login session survived: no login page')
  const call = await postJsonRpc(gw.mcpUrl(), { jsonrpc: '2.0', id: 3, method: 'tools/list' }, {
    authorization: `Bearer ${token}`,
    'mcp-session-id': sessionId,
    'mcp-protocol-version': '2025-11-25',
  })
  t.equal(call.status, 200, 'the MCP session binding survived')
  noStrayErrors()
})

t.test('an authorization caught by an outage between login and consent is refused cleanly, never half-issued', async (t) => {
  t.setTimeout(30_000)
  const setup = await faultSetup(t, upstream.url)
  if (!setup) return
  const { redis, gw, noStrayErrors } = setup
  const browser = new FormBrowser(gw.origin)
  const { page } = await startAuthorization(browser, gw.origin, gw.mcpUrl())
  const consent = await browser.submit(page, USER)
  t.equal(consent.status, 200, 'logged in; the consent page is shown')
  t.match(consent.html, /decision/)

  await redis.kill()
  const down = await timed(() => browser.submit(consent, { decision: 'allow' }))
  t.equal(down.value.status, 503, 'consent while Redis is down: 503')
  t.match(down.value.headers.get('content-type'), /^text\/html/, 'as an HTML page')
  t.equal(down.value.location, undefined, 'nothing is sent to the client')
  t.ok(down.ms < BOUNDED_MS, `answered in ${down.ms} ms`)

  await redis.start()
  t.ok(await readyAgain(gw), 'ready again')
  const after = await browser.submit(consent, { decision: 'allow' })
  t.equal(after.status, 400, 'the same consent after an empty restart: the request is gone, 400')
  t.match(after.headers.get('content-type'), /^text\/html/, 'as an HTML page')
  t.equal(after.location, undefined, 'no code, no redirect')
  const fresh = await startAuthorization(browser, gw.origin, gw.mcpUrl())
  t.equal(fresh.page.status, 200, 'starting over works')
  t.ok(codeOf(await loginAndConsent(browser, fresh.page)), 'and ends with a code')
  noStrayErrors()
})

t.test('FLUSHALL mid-flow: each lost record is refused in its protocol, and the next flow works', async (t) => {
  t.setTimeout(30_000)
  const setup = await faultSetup(t, upstream.url)
  if (!setup) return
  const { redis, gw, noStrayErrors } = setup
  const browser = new FormBrowser(gw.origin)
  const done = await startAuthorization(browser, gw.origin, gw.mcpUrl())
  const issued = await exchangeCode(gw.origin, codeOf(await loginAndConsent(browser, done.page))!, done.verifier)
  const pending = await startAuthorization(browser, gw.origin, gw.mcpUrl())
  const code = codeOf(pending.page)!
  const other = new FormBrowser(gw.origin)
  const half = await startAuthorization(other, gw.origin, gw.mcpUrl())

  await redis.admin().flushall()

  const login = await other.submit(half.page, USER)
  t.equal(login.status, 400, 'a login form whose request was flushed: 400')
  t.match(login.headers.get('content-type'), /^text\/html/, 'an HTML page')
  t.equal(login.location, undefined)
  const exchange = await exchangeCode(gw.origin, code, pending.verifier)
  t.equal(exchange.status, 400)
  t.equal(exchange.body.error, 'invalid_grant', 'a flushed code: invalid_grant')
  const refresh = await tokenRequest(gw.origin, { grant_type: 'refresh_token', refresh_token: issued.body.refresh_token })
  t.equal(refresh.body.error, 'invalid_grant', 'a flushed refresh token: invalid_grant')
  const restart = await startAuthorization(browser, gw.origin, gw.mcpUrl())
  t.equal(restart.page.status, 200, 'the flushed login session: the login page again')
  t.ok(codeOf(await loginAndConsent(browser, restart.page)), 'and the flow completes')
  t.notOk(gw.logs.some((l) => l.msg === 'unexpected error'), 'no unexpected errors')
  noStrayErrors()
})

async function configuredKey(t: Test): Promise<Record<string, unknown>> {
  const { privateKey } = await generateKeyPair('ES256', { extractable: true })
  const dir = t.testdir({})
  const file = join(dir, 'signing.pem')
  await writeFile(file, await exportPKCS8(privateKey))
  return { keys: [{ file, alg: 'ES256', kid: 'fault-key' }] }
}

for (const fault of ['down', 'hung'] as const) {
  t.test(`a gateway started while Redis is ${fault}: starts, not ready, then ready by itself`, async (t) => {
    t.setTimeout(30_000)
    const redis = await redisServerForTests(t)
    if (!redis) return
    const noStrayErrors = watchStrayErrors(t)
    if (fault === 'down') await redis.kill()
    else redis.pause()
    t.teardown(() => redis.resume())
    const started = await timed(async () => faultGateway(t, redis, upstream.url, await configuredKey(t)))
    const gw = started.value
    t.ok(started.ms < 3000, `started in ${started.ms} ms`)
    const ready = await timed(() => fetch(`${gw.origin}/readyz`))
    t.equal(ready.value.status, 200, 'ready: the outage is not this replica\'s')
    t.ok(ready.ms < BOUNDED_MS, `readiness answered in ${ready.ms} ms`)
    t.ok(await storeReportedDown(gw), '/healthz reports the store down')
    const mcp = await postJsonRpc(gw.mcpUrl(), { jsonrpc: '2.0', id: 1, method: 'tools/list' }, {
      authorization: `Bearer ${await gw.mint()}`,
      'mcp-session-id': 'some-session',
    })
    t.equal(mcp.status, 503, 'a session call: 503')
    if (fault === 'down') await redis.start()
    else redis.resume()
    t.ok(await readyAgain(gw), 'ready once Redis answers')
    const browser = new FormBrowser(gw.origin)
    const flow = await startAuthorization(browser, gw.origin, gw.mcpUrl())
    const code = codeOf(await loginAndConsent(browser, flow.page))
    t.ok(code, 'an authorization completes')
    t.equal((await exchangeCode(gw.origin, code!, flow.verifier)).status, 200, 'and its code is exchanged')
    noStrayErrors()
  })
}

t.test('graceful close while Redis hangs is bounded', async (t) => {
  t.setTimeout(30_000)
  const redis = await redisServerForTests(t)
  if (!redis) return
  const gw = await faultGateway(t, redis, upstream.url)
  t.equal((await fetch(`${gw.origin}/readyz`)).status, 200)
  redis.pause()
  t.teardown(() => redis.resume())
  const closed = await timed(() => gw.close())
  t.ok(closed.ms < 3000, `closed in ${closed.ms} ms (the store's QUIT times out, the rest does not wait)`)
})
