/**
 * The operator console's door (issue 17): off by default; an operator enters as a person named
 * by admin.access (signed in at /account, `next=/admin`) or with the admin token. Refused, and
 * audited: anonymous visitors, a signed-in person who is not an operator (403, nothing shown), a
 * wrong token, forms without their CSRF token or from a foreign origin. The sign-in's `next` is
 * never an open redirect. Revoking a grant works as `gatehouse grants revoke` and names the admin.
 */
import { createHash } from 'node:crypto'
import t, { type Test } from 'tap'
import { loadConfigObject } from '../../src/config/load.js'
import { startSdk1Upstream } from '../fixtures/mcp-upstream.js'
import { FormBrowser } from '../helpers/form-browser.js'
import { startTestGateway, type TestGateway } from '../helpers/gateway.js'
import { redisForTests } from '../helpers/redis.js'
import { claims, mcpCall, Person } from '../login/account-harness.js'
import { ADMIN_TOKEN, consoleGateway, csrfOf, signInForConsole, signInWithToken } from './harness.js'

t.setTimeout(90_000)
const upstream = await startSdk1Upstream({ stateful: false, jsonResponse: true })
t.teardown(() => upstream.close())
const gateway = (t: Test) => consoleGateway(t, upstream.url)
const audits = (gw: TestGateway, type: string) => gw.logs.filter((l) => l.audit === type)

t.test('off by default: /admin does not exist', async (t) => {
  const gw = await startTestGateway(t, { resources: [{ upstream: upstream.url }] })
  t.equal((await fetch(`${gw.origin}/admin`)).status, 404)
  t.equal((await fetch(`${gw.origin}/admin/grants`)).status, 404)
})

t.test('configuration: an enabled console must name who enters; an empty rule is refused', async (t) => {
  const base = { publicUrl: 'http://127.0.0.1:8080', resources: [{ id: 'r', name: 'R', path: '/mcp', upstream: 'http://127.0.0.1:9/mcp' }] }
  const problems = (admin: unknown, extra: object = {}) => {
    try {
      loadConfigObject({ ...base, ...extra, admin }, 'test', {})
      return ''
    } catch (err) {
      return (err as Error).message
    }
  }
  t.match(problems({ enabled: true }), /admin: an enabled console needs access/)
  t.match(problems({ enabled: true, access: {} }), /admin\.access: give at least one condition/)
  t.match(problems({ enabled: true, tokenSha256: 'not-hex' }), /admin\.tokenSha256/)
  t.match(problems({ enabled: true, access: { groupsAnyOf: ['ops'] } }), /no login .* lets anyone sign in/)
  t.equal(problems({ enabled: true, tokenSha256: 'a'.repeat(64) }), '', 'a token alone is enough')
  t.equal(problems({ enabled: false }), '')
  t.match(problems({ enabled: true, tokenSha256: 'a'.repeat(64) }, { resources: [{ ...base.resources[0], path: '/admin' }] }), /reserved/, 'a resource cannot take /admin')
})

t.test('anonymous: the sign-in page (401) and nothing else; forms refused', async (t) => {
  const gw = await gateway(t)
  const alice = new Person(gw, 'alice')
  const grant = claims((await alice.connect('notes-app')).access_token).grant_id
  for (const path of ['/admin', '/admin/grants', '/admin/grants?user=alice']) {
    const res = await fetch(`${gw.origin}${path}`)
    const html = await res.text()
    t.equal(res.status, 401, path)
    t.match(res.headers.get('content-security-policy'), /default-src 'none'/)
    t.match(html, /action="\/admin\/login"/, 'the token form')
    t.match(html, /href="\/account\?next=\/admin"/, 'the way in for a person')
    t.notMatch(html, /static:alice|notes-app|<nav/, 'no console data, no navigation')
  }
  const stranger = new FormBrowser(gw.origin)
  t.equal((await stranger.post('/admin/grants/revoke', { grant_id: grant, csrf: 'x' }, { origin: gw.origin })).status, 401)
  t.equal((await mcpCall(gw, (await alice.connect('mail-app')).access_token)).status, 200)
  t.notOk(audits(gw, 'grant.revoked').length)
})

t.test('a signed-in person who is not an operator is refused (403) and sees nothing; audited', async (t) => {
  const gw = await gateway(t)
  const alice = new Person(gw, 'alice')
  const grant = claims((await alice.connect('notes-app')).access_token).grant_id
  const bob = new FormBrowser(gw.origin)
  const signedIn = await signInForConsole(bob, 'bob')
  t.equal(signedIn.status, 303)
  t.equal(new URL(signedIn.location!).pathname, '/admin', 'the sign-in returns to the console')
  for (const path of ['/admin', '/admin/grants']) {
    const page = await bob.get(`${gw.origin}${path}`)
    t.equal(page.status, 403, path)
    t.match(page.html, /Not an operator/)
    t.notMatch(page.html, /static:alice|notes-app|data-grant|<nav/, 'nothing of the console')
  }
  const refused = audits(gw, 'admin.refused')
  t.match(refused, [{ reason: 'not_admin', sub: 'static:bob', path: '/admin' }, { reason: 'not_admin', sub: 'static:bob', path: '/admin/grants' }])
  // Whatever token he sends: his session names no operator.
  const post = await bob.post('/admin/grants/revoke', { grant_id: grant, csrf: 'x'.repeat(43) }, { origin: gw.origin })
  t.equal(post.status, 403)
  t.equal(audits(gw, 'grant.revoked').length, 0)
})

t.test('the admin token: a wrong one is refused and audited (never logged); the right one opens the console', async (t) => {
  const gw = await gateway(t)
  const browser = new FormBrowser(gw.origin)
  const wrong = await signInWithToken(browser, 'not-the-token')
  t.equal(wrong.status, 401)
  t.match(wrong.html, /not the admin token/)
  t.match(audits(gw, 'admin.refused'), [{ reason: 'bad_token' }])
  t.equal((await browser.get(`${gw.origin}/admin/grants`)).status, 401, 'still outside')
  const unbound = await new FormBrowser(gw.origin).post('/admin/login', { csrf: 'x', token: ADMIN_TOKEN }, { origin: gw.origin })
  t.equal(unbound.status, 403, 'a token form this browser was not shown (login CSRF)')
  const foreign = await new FormBrowser(gw.origin).post('/admin/login', { token: ADMIN_TOKEN }, { origin: 'https://evil.example' })
  t.equal(foreign.status, 403, 'a foreign Origin')

  const right = await signInWithToken(browser, ADMIN_TOKEN)
  t.equal(right.status, 303)
  t.match(audits(gw, 'admin.signed_in'), [{ actor: 'admin-token', method: 'token' }])
  const console = await browser.get(`${gw.origin}/admin`)
  t.equal(console.status, 200)
  t.match(console.html, /Signed in as the admin token/)
  t.notOk(JSON.stringify(gw.logs).includes(ADMIN_TOKEN) || JSON.stringify(gw.logs).includes('not-the-token'), 'no token in any log line')

  const out = await browser.post('/admin/logout', { csrf: csrfOf(console.html) }, { origin: gw.origin })
  t.equal(out.status, 303)
  t.equal((await browser.get(`${gw.origin}/admin`)).status, 401, 'signed out')
  t.match(audits(gw, 'admin.signed_out'), [{ actor: 'admin-token' }])
})

t.test('an operator finds grants by person or client and revokes one: it stops at once; audited with the admin', async (t) => {
  const gw = await gateway(t)
  const bobPerson = new Person(gw, 'bob')
  const bobsNotes = await bobPerson.connect('notes-app')
  const bobsMail = await bobPerson.connect('mail-app')
  const alice = new FormBrowser(gw.origin)
  const signedIn = await signInForConsole(alice, 'alice', '/admin/grants')
  t.equal(new URL(signedIn.location!).pathname, '/admin/grants')

  const all = await alice.get(`${gw.origin}/admin/grants`)
  t.equal(all.status, 200)
  const listed = (html: string) => [...html.matchAll(/data-grant="([^"]+)"/g)].map((m) => m[1]!)
  t.same(listed(all.html).sort(), [claims(bobsNotes.access_token).grant_id, claims(bobsMail.access_token).grant_id].sort())
  t.same(listed((await alice.get(`${gw.origin}/admin/grants?client=mail`)).html), [claims(bobsMail.access_token).grant_id], 'by client')
  t.same(listed((await alice.get(`${gw.origin}/admin/grants?user=nobody`)).html), [], 'by person')
  t.equal(listed((await alice.get(`${gw.origin}/admin/grants?user=STATIC:BOB`)).html).length, 2, 'case-insensitive')
  t.match(audits(gw, 'admin.viewed'), [{ actor: 'static:alice', path: '/admin/grants' }])

  const grantId = claims(bobsNotes.access_token).grant_id
  const csrf = csrfOf(all.html)
  t.equal((await alice.post('/admin/grants/revoke', { grant_id: grantId }, { origin: gw.origin })).status, 403, 'no CSRF token')
  const bob = new FormBrowser(gw.origin)
  await signInForConsole(bob, 'bob')
  const bobsCsrf = csrfOf((await bob.get(`${gw.origin}/account`)).html)
  t.equal((await alice.post('/admin/grants/revoke', { grant_id: grantId, csrf: bobsCsrf }, { origin: gw.origin })).status, 403, 'another session\'s token')
  t.equal((await alice.post('/admin/grants/revoke', { grant_id: grantId, csrf }, { origin: 'https://evil.example' })).status, 403, 'a foreign Origin')
  t.equal((await mcpCall(gw, bobsNotes.access_token)).status, 200, 'untouched so far')
  t.ok(audits(gw, 'admin.refused').some((e) => e.reason === 'csrf' && e.sub === 'static:alice'), 'the refused form is audited')

  const done = await alice.post('/admin/grants/revoke', { grant_id: grantId, csrf, client: 'notes' }, { origin: gw.origin })
  t.equal(done.status, 303)
  t.match(done.location, /\/admin\/grants\?revoked=.*client=notes/, 'back to the same search')
  t.equal((await mcpCall(gw, bobsNotes.access_token)).status, 401, 'refused at once (§11.4 REV-01)')
  t.equal((await mcpCall(gw, bobsMail.access_token)).status, 200, 'the other grant goes on')
  t.match(audits(gw, 'grant.revoked'), [{ grantId, by: 'operator', actor: 'static:alice', sub: 'static:bob', clientId: 'notes-app' }])
  t.equal((await alice.post('/admin/grants/revoke', { grant_id: grantId, csrf }, { origin: gw.origin })).status, 404, 'already revoked')
})

t.test('the sign-in\'s next is never an open redirect', async (t) => {
  const gw = await gateway(t)
  for (const next of ['https://evil.example/admin', '//evil.example/admin', '/\\evil.example', '/admin/../account', '/admin@evil.example', '/administrator', '/admin?x=1', '/%61dmin']) {
    const browser = new FormBrowser(gw.origin)
    const page = await browser.get(`${gw.origin}/account?next=${encodeURIComponent(next)}`)
    t.notMatch(page.html, /name="next"/, `${next}: not carried by the form`)
    const answer = await browser.post('/account/login', { csrf: csrfOf(page.html), next, username: 'alice', password: 'correct horse battery staple' }, { origin: gw.origin })
    t.equal(answer.status, 303)
    t.equal(answer.location, `${gw.origin}/account`, `${next}: back to the account page`)
  }
})

t.test('guessing the token slows down per address (as wrong passwords do)', async (t) => {
  const gw = await gateway(t)
  const browser = new FormBrowser(gw.origin)
  const statuses: number[] = []
  for (let i = 0; i < 8; i++) statuses.push((await signInWithToken(browser, `guess-${i}`)).status)
  t.equal(statuses[0], 401)
  t.ok(statuses.includes(429), `held back after a few wrong tokens (${statuses.join(' ')})`)
  const blocked = await signInWithToken(browser, ADMIN_TOKEN)
  t.equal(blocked.status, 429, 'even the right token waits: a guesser learns nothing while held back')
  t.ok(blocked.headers.get('retry-after'))
})

t.test('a token session continues at every replica, and ends everywhere when the token changes', async (t) => {
  const redis = await redisForTests(t)
  if (!redis) return
  const store = { type: 'redis', redis: redis.storeConfig() }
  const first = await consoleGateway(t, upstream.url, {}, store)
  const browser = new FormBrowser(first.origin)
  t.equal((await signInWithToken(browser, ADMIN_TOKEN)).status, 303)
  const cookie = `gatehouse-admin-session=${browser.cookie('gatehouse-admin-session')}`
  const sameToken = await consoleGateway(t, upstream.url, {}, store)
  t.equal((await fetch(`${sameToken.origin}/admin`, { headers: { cookie } })).status, 200, 'another replica continues the session')
  const otherToken = createHash('sha256').update('a-new-admin-token').digest('hex')
  const rotated = await consoleGateway(t, upstream.url, { admin: { enabled: true, access: { subjects: ['static:alice'] }, tokenSha256: otherToken } }, store)
  t.equal((await fetch(`${rotated.origin}/admin`, { headers: { cookie } })).status, 401, 'a replica with a new token: the old session no longer counts')
  const noToken = await consoleGateway(t, upstream.url, { admin: { enabled: true, access: { subjects: ['static:alice'] } } }, store)
  t.equal((await fetch(`${noToken.origin}/admin`, { headers: { cookie } })).status, 401, 'nor with token sign-in removed')
})

t.test('console requests count against the per-address limit of the sign-in pages', async (t) => {
  const gw = await consoleGateway(t, upstream.url, { rateLimits: { authorize: { perAddress: { requests: 3, windowSeconds: 60 } } } })
  const statuses: number[] = []
  for (let i = 0; i < 4; i++) statuses.push((await fetch(`${gw.origin}/admin/grants`)).status)
  t.same(statuses, [401, 401, 401, 429])
  t.match(audits(gw, 'rate_limited'), [{ limit: 'authorize', scope: 'address' }])
})
