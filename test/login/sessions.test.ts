/**
 * The gateway session after an upstream login: reused by the next authorization in the same
 * browser (no IdP round trip), limited by login.session.maxAgeSeconds (max_age sent to the IdP),
 * ended by logout, kept in the store so another replica continues a login the first started.
 */
import t from 'tap'
import { testPasswordHash } from '../helpers/passwords.js'
import { startSdk1Upstream } from '../fixtures/mcp-upstream.js'
import { reservePort } from '../helpers/ports.js'
import { redisForTests } from '../helpers/redis.js'
import { approve, approveAndSignIn, claimsOf, loginSetup, redeem, signInAtIdp } from './harness.js'
import { startTestIdp } from './idp.js'

t.setTimeout(60_000)
const upstream = await startSdk1Upstream({ stateful: false, jsonResponse: true })
t.teardown(() => upstream.close())

t.test('a second authorization in the same browser skips the IdP; logout ends the session', async (t) => {
  const setup = await loginSetup(t, { upstreamUrl: upstream.url })
  const browser = setup.browser()
  const first = await setup.authorize(browser)
  t.equal((await approveAndSignIn(setup, browser, first.page, 'alice')).status, 303)
  t.ok(browser.cookies('127.0.0.1').has('gatehouse-session'), 'a session cookie after the login')

  const again = await setup.authorize(browser)
  t.equal(again.page.status, 302, 'signed in and consented: straight back to the client, no IdP')
  const code = new URL(again.page.location!).searchParams.get('code')!
  const { body } = await redeem(setup.gw, code, again.verifier)
  t.equal(claimsOf(body.access_token).sub, 'corp:alice')

  const confirm = await browser.get(`${setup.gw.origin}/oauth/logout`)
  t.equal(confirm.status, 200)
  t.match(confirm.html, /Sign out of the gateway\?/)
  const crossSite = await browser.post(`${setup.gw.origin}/oauth/logout`, {}, { origin: 'https://evil.example' })
  t.equal(crossSite.status, 403, 'a logout POST from another origin is refused (CSRF)')
  t.ok(browser.cookies('127.0.0.1').has('gatehouse-session'), 'and the session lives on')
  const out = await browser.submit(confirm)
  t.equal(out.status, 200)
  t.match(out.html, /You are signed out/)
  t.notOk(browser.cookies('127.0.0.1').has('gatehouse-session'), 'the cookie is cleared')
  t.ok(setup.gw.logs.some((l) => l.msg === 'logout' && l.sub === 'corp:alice'))

  const afterLogout = await setup.authorize(browser)
  t.equal(afterLogout.page.status, 200, 'after logout: the consent-before-login page again')
  t.match(afterLogout.page.html, /Allow and continue with Corp SSO/)
})

t.test('login.session.maxAgeSeconds: an older login is not reused and max_age makes the IdP ask again', async (t) => {
  const setup = await loginSetup(t, { upstreamUrl: upstream.url, login: { session: { maxAgeSeconds: 0 } } })
  const browser = setup.browser()
  const first = await setup.authorize(browser)
  const toIdp = await approve(browser, first.page)
  t.equal(new URL(toIdp.location!).searchParams.get('max_age'), '0', 'max_age sent to the IdP')
  const signIn = await signInAtIdp(browser, setup.idp, toIdp, 'alice')
  t.equal((await browser.get(signIn.callback)).status, 303)

  await new Promise((r) => setTimeout(r, 1100))
  const second = await setup.authorize(browser)
  t.equal(second.page.status, 200, 'the session is too old: consent page again, not a code')
  const again = await signInAtIdp(browser, setup.idp, await approve(browser, second.page), 'alice')
  t.ok(again.sawLoginForm, 'the IdP asked for the login again, despite its own session')
  t.equal((await browser.get(again.callback)).status, 303)
})

t.test('without maxAgeSeconds, an IdP session is reused after a gateway logout (no IdP login form)', async (t) => {
  const setup = await loginSetup(t, { upstreamUrl: upstream.url })
  const browser = setup.browser()
  const first = await setup.authorize(browser)
  await approveAndSignIn(setup, browser, first.page, 'alice')
  await browser.post(`${setup.gw.origin}/oauth/logout`, {})
  const second = await setup.authorize(browser)
  const again = await signInAtIdp(browser, setup.idp, await approve(browser, second.page), 'alice')
  t.notOk(again.sawLoginForm, 'single sign-on at the IdP')
  t.equal((await browser.get(again.callback)).status, 303)
})

t.test('a second replica on the same Redis continues a login the first started', async (t) => {
  const redis = await redisForTests(t)
  if (!redis) return
  const store = { type: 'redis', redis: redis.storeConfig() }
  const portA = await reservePort(t)
  const idp = await startTestIdp(t, { redirectUris: [`http://127.0.0.1:${portA}/oauth/callback/corp`] })
  const a = await loginSetup(t, { upstreamUrl: upstream.url, store, idp, port: portA })
  // Replica B serves the same public URL (behind one load balancer) from another port.
  const b = await loginSetup(t, { upstreamUrl: upstream.url, store, idp, config: { publicUrl: a.gw.origin } })
  const browser = a.browser()
  const { page, verifier } = await a.authorize(browser)
  const { callback } = await signInAtIdp(browser, idp, await approve(browser, page), 'alice')
  const onB = new URL(callback)
  onB.port = new URL(b.gw.origin).port
  const back = await browser.get(onB.href)
  t.equal(back.status, 303, 'replica B finished the login replica A started')
  const code = new URL(back.location!).searchParams.get('code')!
  const { body } = await redeem(a.gw, code, verifier)
  t.equal(claimsOf(body.access_token).sub, 'corp:alice', 'and replica A redeems the code')
  t.ok(b.gw.logs.some((l) => l.audit === 'login.succeeded'))
  t.same(await redis.raw.keys(`${redis.keyPrefix}oidc-state:*`), [], 'the state record is gone (taken)')
})

t.test('static users beside an IdP: the page offers both; a password user gets the normal consent page', async (t) => {
  const passwordHash = await testPasswordHash('carol-password')
  const setup = await loginSetup(t, {
    upstreamUrl: upstream.url,
    access: { subjects: ['static:carol', 'corp:alice'] },
    login: { static: { users: [{ username: 'carol', passwordHash }] } },
  })
  const browser = setup.browser()
  const { page } = await setup.authorize(browser)
  t.match(page.html, /Allow and continue with Corp SSO/)
  t.match(page.html, /name="password"/, 'the password form is there too')
  const fields = Object.fromEntries([...page.html.matchAll(/<input type="hidden" name="([^"]+)" value="([^"]*)">/g)].map((m) => [m[1]!, m[2]!]))
  const consent = await browser.post(`${setup.gw.origin}/oauth/authorize/login`, { ...fields, username: 'carol', password: 'carol-password' })
  t.equal(consent.status, 200)
  t.match(consent.html, /Signed in as static:carol/)
  const back = await browser.submit(consent, { decision: 'allow' })
  t.equal(back.status, 303)
  t.ok(new URL(back.location!).searchParams.get('code'))
})
