/**
 * The confused-deputy rules for the upstream login (MCPA-80, MCPS-01..06): nothing upstream
 * before the consent is approved; upstream state random, single use, bound to the approving
 * browser and checked exactly; a bad callback issues nothing.
 */
import t from 'tap'
import { startSdk1Upstream } from '../fixtures/mcp-upstream.js'
import { redisForTests } from '../helpers/redis.js'
import { approve, loginSetup, signInAtIdp } from './harness.js'

t.setTimeout(60_000)
const upstream = await startSdk1Upstream({ stateful: false, jsonResponse: true })
t.teardown(() => upstream.close())

t.test('MCPS-06: no state cookie and no state record before the approval POST; MCPS-05: both after it', async (t) => {
  const redis = await redisForTests(t)
  if (!redis) return
  const setup = await loginSetup(t, { upstreamUrl: upstream.url, store: { type: 'redis', redis: redis.storeConfig() } })
  const browser = setup.browser()
  const { page } = await setup.authorize(browser)
  t.equal(page.status, 200)
  const cookieNames = () => [...browser.cookies('127.0.0.1').keys()]
  t.same(cookieNames(), ['gatehouse-authz'], 'only the request-binding cookie: no consent or state cookie (MCPS-06)')
  t.same(await redis.raw.keys(`${redis.keyPrefix}oidc-state:*`), [], 'no upstream state stored before approval (MCPS-06)')
  t.same(await redis.raw.keys(`${redis.keyPrefix}consent:*`), [], 'no consent remembered before approval')

  const toIdp = await approve(browser, page)
  t.equal(toIdp.status, 303)
  t.ok(cookieNames().includes('gatehouse-oidc-state'), 'the state cookie is set with the redirect to the IdP')
  const setCookie = toIdp.headers.getSetCookie().find((c) => c.startsWith('gatehouse-oidc-state='))!
  t.match(setCookie, /HttpOnly/)
  t.match(setCookie, /SameSite=Lax/)
  t.match(setCookie, /Max-Age=600/, 'short-lived: ten minutes (MCPS-05)')
  const states = await redis.raw.keys(`${redis.keyPrefix}oidc-state:*`)
  t.equal(states.length, 1, 'one state record, stored after approval')
  const ttl = await redis.raw.pttl(states[0]!)
  t.ok(ttl > 590_000 && ttl <= 600_000, 'the state record lives ten minutes')
  const state = new URL(toIdp.location!).searchParams.get('state')!
  t.ok(state.length >= 32, 'the upstream state is long and random')
  t.notOk(states[0]!.includes(state), 'stored by hash, not by value')
})

t.test('MCPS-05: a tampered state, a replayed callback, a missing state cookie and another browser\'s cookie issue nothing', async (t) => {
  const setup = await loginSetup(t, { upstreamUrl: upstream.url })
  const browser = setup.browser()
  const { page } = await setup.authorize(browser)
  const toIdp = await approve(browser, page)
  const { callback } = await signInAtIdp(browser, setup.idp, toIdp, 'alice')

  // Tampered state: one character changed.
  const tampered = new URL(callback)
  const state = tampered.searchParams.get('state')!
  tampered.searchParams.set('state', state.slice(0, -1) + (state.endsWith('A') ? 'B' : 'A'))
  const bad = await browser.get(tampered.href)
  t.equal(bad.status, 400, 'tampered state: 400 page')
  t.notOk(bad.location, 'no redirect, no code')
  t.match(bad.html, /cannot be continued/)

  // No state at all.
  const none = new URL(callback)
  none.searchParams.delete('state')
  t.equal((await setup.browser().get(none.href)).status, 400, 'no state: 400')

  // Another browser with its own state cookie (MCPS-05: bound to the approving browser).
  const other = setup.browser()
  const { page: otherPage } = await setup.authorize(other)
  await approve(other, otherPage)
  const foreign = await other.get(callback)
  t.equal(foreign.status, 400, 'the state cookie of another browser: 400')
  t.notOk(foreign.location)

  // A browser with no state cookie at all.
  const bare = setup.browser()
  const noCookie = await bare.get(callback)
  t.equal(noCookie.status, 400, 'missing state cookie: 400')

  // The right browser still completes: failed attempts did not burn its login.
  const good = await browser.get(callback)
  t.equal(good.status, 303, 'the approving browser completes')
  t.ok(new URL(good.location!).searchParams.get('code'))

  // Replay of the same callback, even from the same browser: the state was single use.
  const replay = await browser.get(callback)
  t.equal(replay.status, 400, 'replayed callback: 400')
  t.notOk(replay.location)
  const codes = setup.gw.logs.filter((l) => l.audit === 'code.issued')
  t.equal(codes.length, 1, 'exactly one code issued')
})

t.test('MCPS-05: a callback to another provider\'s URL is refused', async (t) => {
  const setup = await loginSetup(t, { upstreamUrl: upstream.url })
  const browser = setup.browser()
  const { page } = await setup.authorize(browser)
  const toIdp = await approve(browser, page)
  const { callback } = await signInAtIdp(browser, setup.idp, toIdp, 'alice')
  const moved = new URL(callback)
  moved.pathname = '/oauth/callback/other'
  t.equal((await browser.get(moved.href)).status, 400)
})

t.test('MCPS-02: the approval POST needs the page\'s CSRF token and the binding cookie', async (t) => {
  const setup = await loginSetup(t, { upstreamUrl: upstream.url })
  const browser = setup.browser()
  const { page } = await setup.authorize(browser)
  const wrongCsrf = await browser.submit(page, { provider: 'corp', csrf: 'forged' })
  t.equal(wrongCsrf.status, 403)
  const stranger = setup.browser()
  const noBinding = await stranger.submit(page, { provider: 'corp' })
  t.equal(noBinding.status, 403, 'another browser cannot approve this request')
  t.notOk(stranger.cookies('127.0.0.1').has('gatehouse-oidc-state'), 'and gets no state cookie')
  const unknown = await browser.submit(page, { provider: 'nope' })
  t.equal(unknown.status, 400, 'an unknown provider is refused')
})

t.test('Deny on the consent page: access_denied to the client, the IdP never reached', async (t) => {
  const setup = await loginSetup(t, { upstreamUrl: upstream.url })
  const browser = setup.browser()
  const { page, state } = await setup.authorize(browser)
  const denied = await browser.submit(page, { decision: 'deny' })
  t.equal(denied.status, 303)
  const back = new URL(denied.location!)
  t.equal(back.origin, 'http://127.0.0.1:43210')
  t.equal(back.searchParams.get('error'), 'access_denied')
  t.equal(back.searchParams.get('state'), state)
  t.equal(back.searchParams.get('iss'), setup.gw.config.issuer)
  t.notOk(browser.cookies('127.0.0.1').has('gatehouse-oidc-state'), 'no state cookie after a denial')
  t.ok(setup.gw.logs.some((l) => l.audit === 'consent.denied'))
})
