/**
 * An operator signs in to the console at the company's IdP (a real oidc-provider): the console's
 * link leads to /account?next=/admin, the provider button carries `next`, and the IdP's callback
 * returns to the console. admin.access names a group: alice (engineering) enters, bob (sales) is
 * refused. A `next` that is not a console path, even planted in the form, returns to /account.
 */
import t from 'tap'
import { startSdk1Upstream } from '../fixtures/mcp-upstream.js'
import { loginSetup, signInAtIdp, type LoginSetup } from '../login/harness.js'

t.setTimeout(60_000)
const upstream = await startSdk1Upstream({ stateful: false, jsonResponse: true })
t.teardown(() => upstream.close())

async function viaIdp(setup: LoginSetup, username: string, next: string) {
  const browser = setup.browser()
  const page = await browser.get(`${setup.gw.origin}/account?next=${encodeURIComponent('/admin')}`)
  const toIdp = await browser.submit(page, { provider: 'corp', next })
  const { callback } = await signInAtIdp(browser, setup.idp, toIdp, username)
  const landed = await browser.get(callback)
  return { browser, landed: new URL(landed.location!, setup.gw.origin) }
}

t.test('through the IdP and back to the console; only the group admin.access names enters', async (t) => {
  const setup = await loginSetup(t, { upstreamUrl: upstream.url, config: { admin: { enabled: true, access: { groupsAnyOf: ['engineering'] } } } })
  const alice = await viaIdp(setup, 'alice', '/admin/grants')
  t.equal(alice.landed.pathname, '/admin/grants', 'the callback returns to the console')
  const page = await alice.browser.get(alice.landed.href)
  t.equal(page.status, 200)
  t.match(page.html, /Signed in as alice@example\.com/)

  const bob = await viaIdp(setup, 'bob', '/admin')
  t.equal(bob.landed.pathname, '/admin')
  const refused = await bob.browser.get(bob.landed.href)
  t.equal(refused.status, 403)
  t.notMatch(refused.html, /<nav/)
  t.match(setup.gw.logs.filter((l) => l.audit === 'admin.refused'), [{ reason: 'not_admin', sub: 'corp:bob' }])

  const planted = await viaIdp(setup, 'alice', 'https://evil.example/admin')
  t.equal(planted.landed.href, `${setup.gw.origin}/account`, 'a planted URL is not followed')
})
