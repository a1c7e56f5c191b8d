/**
 * The account page (issue 17): a person signs in, sees the applications they allowed, and
 * revokes one or all, with effect everywhere at once (§11.4 REV-01: the access token is refused
 * at the MCP endpoint, the refresh token at /token). And the refusals: another person's grant,
 * a form without its CSRF token or from a foreign origin, a sign-in form not shown to this
 * browser, no session (MCPS-02 for the forms' binding).
 */
import t, { type Test } from 'tap'
import { startSdk1Upstream } from '../fixtures/mcp-upstream.js'
import { FormBrowser } from '../helpers/form-browser.js'
import type { TestGateway } from '../helpers/gateway.js'
import { accountGateway, claims, mcpCall, PASSWORD, Person } from './account-harness.js'

t.setTimeout(60_000)
const upstream = await startSdk1Upstream({ stateful: false, jsonResponse: true })
t.teardown(() => upstream.close())
const gateway = (t: Test) => accountGateway(t, upstream.url)

/** The grant ids the account page lists, in order. */
const listed = (html: string) => [...html.matchAll(/data-grant="([^"]+)"/g)].map((m) => m[1]!)
const csrfOf = (html: string) => /name="csrf" value="([^"]+)"/.exec(html)![1]!

function refresh(gw: TestGateway, clientId: string, token: string): Promise<Response> {
  return fetch(`${gw.origin}/oauth/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ grant_type: 'refresh_token', refresh_token: token, client_id: clientId }),
  })
}

t.test('a person sees their own grants, with what was verified, and revokes one: it stops at once; the other goes on', async (t) => {
  const gw = await gateway(t)
  const alice = new Person(gw, 'alice')
  const notes = await alice.connect('notes-app', 'mcp admin')
  const mail = await alice.connect('mail-app')
  const bob = new Person(gw, 'bob')
  const bobs = await bob.connect('notes-app')

  const page = await alice.signIn()
  t.equal(page.status, 200)
  t.match(page.headers.get('content-security-policy'), /default-src 'none'/, 'the strict page CSP')
  t.equal(page.headers.get('cache-control'), 'no-store')
  t.same(listed(page.html).sort(), [claims(notes.access_token).grant_id, claims(mail.access_token).grant_id].sort(), 'both of alice\'s grants, none of bob\'s')
  t.notMatch(page.html, claims(bobs.access_token).grant_id)
  t.match(page.html, /The notes-app[\s\S]*registered by the operator/, 'the client\'s name beside what is verified (SEC-24)')
  t.match(page.html, /<code>mcp<\/code> <code>admin<\/code>/, 'the scopes allowed')
  t.match(page.html, /Last used<\/dt><dd>not refreshed since it was given/)

  const refreshed = await refresh(gw, 'mail-app', mail.refresh_token)
  t.equal(refreshed.status, 200)
  const mailNow = (await refreshed.json()) as { access_token: string; refresh_token: string }
  t.match((await alice.browser.get(`${gw.origin}/account`)).html, /Last used<\/dt><dd>\d{4}-\d\d-\d\d \d\d:\d\d UTC/, 'a refresh counts as use')

  t.equal((await mcpCall(gw, notes.access_token)).status, 200, 'before: the notes token works')
  const revoked = await alice.browser.post('/account/revoke', { csrf: csrfOf(page.html), grant_id: claims(notes.access_token).grant_id }, { origin: gw.origin })
  t.equal(revoked.status, 303)
  t.match(revoked.location, /\/account\?revoked=1$/)
  const refused = await mcpCall(gw, notes.access_token)
  t.equal(refused.status, 401, 'its access token is refused at once (§11.4 REV-01)')
  t.match(refused.headers.get('www-authenticate'), /invalid_token/)
  t.match(await (await refresh(gw, 'notes-app', notes.refresh_token)).json(), { error: 'invalid_grant' }, 'its refresh token too')
  t.equal((await mcpCall(gw, mailNow.access_token)).status, 200, 'the other grant goes on')
  t.equal((await mcpCall(gw, bobs.access_token)).status, 200, 'and bob\'s')
  const after = await alice.browser.get(`${gw.origin}/account?revoked=1`)
  t.same(listed(after.html), [claims(mail.access_token).grant_id])
  t.match(after.html, /Access revoked \(1\)/)
  t.match(
    gw.logs.find((l) => l.audit === 'grant.revoked'),
    { by: 'user', sub: 'static:alice', clientId: 'notes-app', grantId: claims(notes.access_token).grant_id },
    'audited: who, whose, which client',
  )
})

t.test('revoke all ends every grant of the person, and only theirs', async (t) => {
  const gw = await gateway(t)
  const alice = new Person(gw, 'alice')
  const tokens = [await alice.connect('notes-app'), await alice.connect('mail-app')]
  const bob = new Person(gw, 'bob')
  const bobs = await bob.connect('mail-app')
  const page = await alice.signIn()
  const done = await alice.browser.post('/account/revoke', { csrf: csrfOf(page.html), all: 'yes' }, { origin: gw.origin })
  t.match(done.location, /revoked=2$/)
  for (const token of tokens) t.equal((await mcpCall(gw, token.access_token)).status, 401)
  t.equal((await mcpCall(gw, bobs.access_token)).status, 200, 'bob keeps his')
  t.match((await alice.browser.get(`${gw.origin}/account`)).html, /id="no-grants"/)
})

t.test('refused: another person\'s grant, a missing or foreign CSRF token, a foreign origin, no session, a sign-in form not shown to this browser', async (t) => {
  const gw = await gateway(t)
  const alice = new Person(gw, 'alice')
  const notes = await alice.connect('notes-app')
  const aliceGrant = claims(notes.access_token).grant_id
  const alicePage = await alice.signIn()
  const bob = new Person(gw, 'bob')
  await bob.connect('mail-app')
  const bobPage = await bob.signIn()

  const cross = await bob.browser.post('/account/revoke', { csrf: csrfOf(bobPage.html), grant_id: aliceGrant }, { origin: gw.origin })
  t.equal(cross.status, 404, 'bob cannot revoke alice\'s grant: answered as a missing one')
  const unknown = await bob.browser.post('/account/revoke', { csrf: csrfOf(bobPage.html), grant_id: 'no-such-grant' }, { origin: gw.origin })
  t.equal(unknown.status, 404)
  t.equal(cross.html.replace(/[^<]*$/, ''), unknown.html.replace(/[^<]*$/, ''), 'the same page either way')

  t.equal((await alice.browser.post('/account/revoke', { grant_id: aliceGrant }, { origin: gw.origin })).status, 403, 'no CSRF token')
  t.equal((await alice.browser.post('/account/revoke', { csrf: csrfOf(bobPage.html), grant_id: aliceGrant }, { origin: gw.origin })).status, 403, 'another session\'s CSRF token')
  t.equal(
    (await alice.browser.post('/account/revoke', { csrf: csrfOf(alicePage.html), grant_id: aliceGrant }, { origin: 'https://evil.example' })).status,
    403,
    'a foreign Origin, even with the right token',
  )
  const stranger = new FormBrowser(gw.origin)
  t.equal((await stranger.post('/account/revoke', { csrf: csrfOf(alicePage.html), grant_id: aliceGrant })).status, 401, 'no session')
  t.equal((await mcpCall(gw, notes.access_token)).status, 200, 'after all that, alice\'s grant is untouched')

  const loginCsrf = await new FormBrowser(gw.origin).post('/account/login', { csrf: 'x', username: 'alice', password: PASSWORD })
  t.equal(loginCsrf.status, 403, 'a sign-in post without the page\'s cookie (login CSRF)')
  t.notOk(gw.logs.some((l) => l.audit === 'grant.revoked'), 'nothing was revoked')
})

t.test('a wrong password is refused and counted; the page offers no list', async (t) => {
  const gw = await gateway(t)
  const browser = new FormBrowser(gw.origin)
  const page = await browser.get(`${gw.origin}/account`)
  t.match(page.html, /action="\/account\/login"/)
  const wrong = await browser.submit(page, { username: 'alice', password: 'wrong' })
  t.equal(wrong.status, 401)
  t.match(wrong.html, /not right/)
  t.notMatch(wrong.html, /data-grant/)
  t.ok(gw.logs.some((l) => l.audit === 'login.failed'), 'audited as a failed login')
})
