/**
 * Signing in to the account page at the company's IdP (a real oidc-provider): the page offers
 * the provider, its POST starts the upstream login with single-use state bound to this browser
 * (MCPS-05), and the callback, finding no authorization request in the state, starts the
 * session and returns to /account, where the grants given through that IdP are listed. A
 * callback replayed or brought by another browser is refused and signs nobody in.
 */
import t from 'tap'
import { startSdk1Upstream } from '../fixtures/mcp-upstream.js'
import { approveAndSignIn, claimsOf, loginSetup, redeem, signInAtIdp } from './harness.js'

t.setTimeout(60_000)
const upstream = await startSdk1Upstream({ stateful: false, jsonResponse: true })
t.teardown(() => upstream.close())

t.test('sign in at the IdP from /account: back on the page, with the grants given through that IdP', async (t) => {
  const setup = await loginSetup(t, { upstreamUrl: upstream.url })
  // A grant alice gave in another browser, through the usual authorization flow.
  const elsewhere = setup.browser()
  const { page: consent, verifier } = await setup.authorize(elsewhere)
  const back = await approveAndSignIn(setup, elsewhere, consent, 'alice')
  const { body } = await redeem(setup.gw, new URL(back.location!).searchParams.get('code')!, verifier)
  const grantId = claimsOf(body.access_token).grant_id as string

  const browser = setup.browser()
  const page = await browser.get(`${setup.gw.origin}/account`)
  t.equal(page.status, 200)
  t.match(page.html, /Sign in with Corp SSO/)
  t.match(page.headers.get('content-security-policy'), new RegExp(`form-action 'self' ${setup.idp.issuer.replace(/[.*+?^${}()|[\]\\]/g, '\\$&').replace(/\/$/, '')}`), 'the CSP lets the form go on to the IdP')
  const toIdp = await browser.submit(page, { provider: 'corp' })
  t.equal(toIdp.status, 303)
  t.ok(toIdp.location!.startsWith(setup.idp.issuer), 'off to the IdP')
  const { callback } = await signInAtIdp(browser, setup.idp, toIdp, 'alice')

  const stranger = setup.browser()
  const stolen = await stranger.get(callback)
  t.equal(stolen.status, 400, 'the callback in another browser (no state cookie) is refused (MCPS-05)')

  const landed = await browser.get(callback)
  t.equal(landed.status, 303)
  t.equal(new URL(landed.location!, setup.gw.origin).pathname, '/account', 'back to the account page')
  const account = await browser.get(new URL(landed.location!, setup.gw.origin).href)
  t.match(account.html, new RegExp(`data-grant="${grantId}"`), 'the grant alice gave is listed')
  t.match(account.html, /Signed in as alice@example\.com/)
  t.equal((await browser.get(callback)).status, 400, 'the callback replayed: refused, state is single use')
  t.match(setup.gw.logs.filter((l) => l.audit === 'login.succeeded').map((l) => l.sub), ['corp:alice', 'corp:alice'], 'each sign-in audited')
})
