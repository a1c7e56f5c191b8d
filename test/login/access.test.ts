/**
 * Access rules per resource, with people from a real IdP: allowed and refused users (email
 * domain, groups), an unverified email, the refusal page and the client's access_denied, the
 * re-check at refresh, and an MCP policy rule reading the same groups.
 */
import t from 'tap'
import { startSdk1Upstream } from '../fixtures/mcp-upstream.js'
import { redisForTests } from '../helpers/redis.js'
import { approveAndSignIn, CLIENT_ID, loginSetup, redeem } from './harness.js'

t.setTimeout(60_000)
const upstream = await startSdk1Upstream({ stateful: false, jsonResponse: true })
t.teardown(() => upstream.close())

t.test('access by email domain and group: alice allowed; bob (group) and mallory (domain) refused with access_denied', async (t) => {
  const setup = await loginSetup(t, { upstreamUrl: upstream.url, access: { emailDomains: ['example.com'], groupsAnyOf: ['mcp-users'] } })
  const allowed = setup.browser()
  const a = await setup.authorize(allowed)
  const ok = await approveAndSignIn(setup, allowed, a.page, 'alice')
  t.equal(ok.status, 303)
  t.ok(new URL(ok.location!).searchParams.get('code'), 'alice gets a code')

  for (const [login, why] of [['bob', 'not in mcp-users'], ['mallory', 'not an example.com address'], ['eve', 'email not verified']] as const) {
    const browser = setup.browser()
    const { page, state } = await setup.authorize(browser)
    const refused = await approveAndSignIn(setup, browser, page, login)
    t.equal(refused.status, 403, `${login} (${why}): a 403 page`)
    t.notOk(refused.location, `${login}: no redirect, no code`)
    t.match(refused.html, /Your account is not allowed to use Resource 0/)
    t.notMatch(refused.html, /mcp-users|example\.com/, 'the page names no rule details')
    const link = /id="return" href="([^"]+)"/.exec(refused.html)![1]!.replace(/&#38;/g, '&')
    const back = new URL(link)
    t.equal(back.origin + back.pathname, 'http://127.0.0.1:43210/callback', 'the link goes to the verified redirect URI')
    t.equal(back.searchParams.get('error'), 'access_denied')
    t.equal(back.searchParams.get('state'), state)
    t.equal(back.searchParams.get('iss'), setup.gw.config.issuer)
    t.notOk(browser.cookies('127.0.0.1').has('gatehouse-session'), `${login}: no session for a refused user`)
  }
  const refusals = setup.gw.logs.filter((l) => l.audit === 'access.refused')
  t.same(refusals.map((l) => l.sub), ['corp:bob', 'corp:mallory', 'corp:eve'])
  t.equal(setup.gw.logs.filter((l) => l.audit === 'code.issued').length, 1, 'one code, alice\'s')
})

t.test('an unverified email is not used (requireVerifiedEmail), unless the operator turns that off', async (t) => {
  const setup = await loginSetup(t, { upstreamUrl: upstream.url, access: { emails: ['eve@example.com'] }, provider: { requireVerifiedEmail: false } })
  const browser = setup.browser()
  const { page, verifier } = await setup.authorize(browser)
  const back = await approveAndSignIn(setup, browser, page, 'eve')
  t.equal(back.status, 303)
  const { body } = await redeem(setup.gw, new URL(back.location!).searchParams.get('code')!, verifier)
  t.ok(body.access_token)
  t.ok(setup.gw.config.warnings.some((w) => w.includes('requireVerifiedEmail')), 'turning it off is warned at startup')
})

t.test('refresh re-checks access with the login\'s email and groups: a tightened rule ends the grant', async (t) => {
  const redis = await redisForTests(t)
  if (!redis) return
  const store = { type: 'redis', redis: redis.storeConfig() }
  const first = await loginSetup(t, { upstreamUrl: upstream.url, access: { groupsAnyOf: ['mcp-users'] }, store })
  const browser = first.browser()
  const { page, verifier } = await first.authorize(browser)
  const back = await approveAndSignIn(first, browser, page, 'alice')
  const { body } = await redeem(first.gw, new URL(back.location!).searchParams.get('code')!, verifier)
  t.ok(body.refresh_token)
  const refresh = (origin: string, token: string) =>
    fetch(`${origin}/oauth/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ grant_type: 'refresh_token', refresh_token: token, client_id: CLIENT_ID }),
    })
  const res = await refresh(first.gw.origin, body.refresh_token)
  t.equal(res.status, 200, 'still allowed: refreshed')
  const next = ((await res.json()) as { refresh_token: string }).refresh_token

  // Another replica on the same store whose rule no longer admits alice's groups.
  const tightened = await loginSetup(t, { upstreamUrl: upstream.url, access: { groupsAnyOf: ['admins'] }, store, idp: first.idp })
  const refused = await refresh(tightened.gw.origin, next)
  t.equal(refused.status, 400)
  t.match(await refused.json(), { error: 'invalid_grant', error_description: /no longer allowed/ })
  t.ok(tightened.gw.logs.some((l) => l.audit === 'grant.revoked' && l.by === 'access_rules'), 'the refusal is an audit event')
  t.same(await redis.raw.keys(`${redis.keyPrefix}grant:*`), [], 'the grant is revoked')
})

t.test('an MCP policy rule reads the same groups from the token', async (t) => {
  const setup = await loginSetup(t, {
    upstreamUrl: upstream.url,
    access: { allowAnyUser: true },
    resource: { policy: { rules: [{ id: 'engineers-echo', method: 'tools/call', name: 'echo', users: { groupsAnyOf: ['engineering'] } }] } },
  })
  const call = async (login: string) => {
    const browser = setup.browser()
    const { page, verifier } = await setup.authorize(browser)
    const back = await approveAndSignIn(setup, browser, page, login)
    const { body } = await redeem(setup.gw, new URL(back.location!).searchParams.get('code')!, verifier)
    const res = await fetch(setup.gw.mcpUrl(), {
      method: 'POST',
      headers: {
        authorization: `Bearer ${body.access_token}`,
        'content-type': 'application/json',
        accept: 'application/json, text/event-stream',
        'mcp-protocol-version': '2025-11-25',
      },
      body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'echo', arguments: { text: 'hi' } } }),
    })
    return { status: res.status, text: await res.text() }
  }
  const alice = await call('alice')
  t.equal(alice.status, 200)
  t.notMatch(alice.text, /-32006/, 'alice (engineering) passes the rule')
  const bob = await call('bob')
  t.equal(bob.status, 200, 'answered: the session goes on')
  t.match(JSON.parse(bob.text), { error: { code: -32006, message: /engineers-echo/ } }, 'bob (sales) is denied by the rule')
})
