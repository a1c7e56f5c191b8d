/**
 * Upstream IdP failures end in a clear page and, the client being verified, an OAuth error for
 * it (RFC 6749 §4.1.2.1), never a 500: the person cancels, the IdP is down, its answer fails
 * openid-client's checks (RFC 9207 iss mix-up, a code injected from another login).
 */
import t from 'tap'
import { startSdk1Upstream } from '../fixtures/mcp-upstream.js'
import { reservePort } from '../helpers/ports.js'
import type { WebVisit } from '../helpers/web-browser.js'
import { approve, loginSetup, signInAtIdp } from './harness.js'

t.setTimeout(60_000)
const upstream = await startSdk1Upstream({ stateful: false, jsonResponse: true })
t.teardown(() => upstream.close())

function returnLink(page: WebVisit): URL {
  const href = /id="return" href="([^"]+)"/.exec(page.html)?.[1]
  if (!href) throw new Error('no return link')
  return new URL(href.replace(/&#38;/g, '&'))
}

t.test('the person cancels at the IdP: a page, and access_denied for the client', async (t) => {
  const setup = await loginSetup(t, { upstreamUrl: upstream.url })
  const browser = setup.browser()
  const { page, state } = await setup.authorize(browser)
  const toIdp = await approve(browser, page)
  const loginPage = await browser.followWithin(toIdp, setup.idp.issuer)
  const abort = /href="([^"]*\/abort)"/.exec(loginPage.html)![1]!
  const back = await browser.followWithin(await browser.get(new URL(abort, loginPage.url).href), setup.idp.issuer)
  t.match(back.location, /\/oauth\/callback\/corp\?.*error=access_denied/)
  const result = await browser.get(back.location!)
  t.equal(result.status, 403)
  t.match(result.html, /Sign-in cancelled/)
  const link = returnLink(result)
  t.equal(link.searchParams.get('error'), 'access_denied')
  t.equal(link.searchParams.get('state'), state)
  t.equal(link.searchParams.get('iss'), setup.gw.config.issuer)
  t.ok(setup.gw.logs.some((l) => l.msg === 'login failed' && l.failure === 'denied'))
})

t.test('the IdP is down: the gateway starts anyway; approving shows a 502 page and temporarily_unavailable', async (t) => {
  // Reserved and never listened on: connecting is refused, and no other test can open it meanwhile.
  const closed = await reservePort(t)
  const setup = await loginSetup(t, { upstreamUrl: upstream.url, provider: { issuer: `https://127.0.0.1:${closed}` } })
  const browser = setup.browser()
  const { page, state } = await setup.authorize(browser)
  t.equal(page.status, 200, 'the consent page renders without the IdP')
  const failed = await approve(browser, page)
  t.equal(failed.status, 502)
  t.match(failed.html, /Corp SSO cannot be reached/)
  t.notOk(browser.cookies('127.0.0.1').has('gatehouse-oidc-state'), 'no state cookie when the IdP was not reached')
  const link = returnLink(failed)
  t.equal(link.searchParams.get('error'), 'temporarily_unavailable')
  t.equal(link.searchParams.get('state'), state)
  t.notMatch(failed.html, /ECONNREFUSED|127\.0\.0\.1:\d+\/\.well-known/, 'no internal detail on the page (SEC-36)')
  t.ok(setup.gw.logs.some((l) => l.msg === 'upstream login failed' && /ECONNREFUSED/.test(String(l.detail))), 'the cause is logged')
  t.notOk(setup.gw.logs.some((l) => l.level === 50), 'no error-level log: not a 500')
})

t.test('the IdP goes down between approval and callback: 502 page, temporarily_unavailable, nothing issued', async (t) => {
  const setup = await loginSetup(t, { upstreamUrl: upstream.url })
  const browser = setup.browser()
  const { page } = await setup.authorize(browser)
  const { callback } = await signInAtIdp(browser, setup.idp, await approve(browser, page), 'alice')
  await setup.idp.stop()
  const result = await browser.get(callback)
  t.equal(result.status, 502)
  t.equal(returnLink(result).searchParams.get('error'), 'temporarily_unavailable')
  t.equal(setup.gw.logs.filter((l) => l.audit === 'code.issued').length, 0)
})

t.test('RFC 9207: a callback whose iss is not the IdP\'s (mix-up) is refused with server_error', async (t) => {
  const setup = await loginSetup(t, { upstreamUrl: upstream.url })
  const browser = setup.browser()
  const { page } = await setup.authorize(browser)
  const { callback } = await signInAtIdp(browser, setup.idp, await approve(browser, page), 'alice')
  const mixed = new URL(callback)
  mixed.searchParams.set('iss', 'https://attacker.example')
  const result = await browser.get(mixed.href)
  t.equal(result.status, 502)
  t.match(result.html, /sent an answer the gateway cannot accept/)
  t.equal(returnLink(result).searchParams.get('error'), 'server_error')
  t.equal(setup.gw.logs.filter((l) => l.audit === 'code.issued').length, 0)
})

t.test('a code from another login injected into this browser\'s callback is refused (PKCE, nonce)', async (t) => {
  const setup = await loginSetup(t, { upstreamUrl: upstream.url })
  const victim = setup.browser()
  const attacker = setup.browser()
  const v = await setup.authorize(victim)
  const a = await setup.authorize(attacker)
  const victimRedirect = await approve(victim, v.page)
  const { callback: attackerCallback } = await signInAtIdp(attacker, setup.idp, await approve(attacker, a.page), 'mallory')
  const victimState = new URL(victimRedirect.location!).searchParams.get('state')!
  const injected = new URL(attackerCallback)
  injected.searchParams.set('state', victimState)
  const result = await victim.get(injected.href)
  t.equal(result.status, 502, 'the IdP refuses the code: wrong PKCE verifier')
  t.equal(returnLink(result).searchParams.get('error'), 'server_error')
  t.notOk(victim.cookies('127.0.0.1').has('gatehouse-session'), 'no session for the victim')
  t.equal(setup.gw.logs.filter((l) => l.audit === 'code.issued').length, 0)
})
