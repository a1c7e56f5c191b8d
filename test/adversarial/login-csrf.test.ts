/**
 * Red team, person-facing authorization pages: every POST (login, consent, upstream approval,
 * logout) refuses a form that did not come from the page the gateway showed this browser
 * (MCPS-02), and the consent POST decides with the session and access rules as they are now.
 */
import { randomBytes } from 'node:crypto'
import t from 'tap'
import { testPasswordHash } from '../helpers/passwords.js'
import { authorizeUrl as authorizeUrlAt, codeOf } from '../helpers/authorize-url.js'
import { parseForm } from '../helpers/form-browser.js'
import { startTestGateway } from '../helpers/gateway.js'
import { WebBrowser, type WebVisit } from '../helpers/web-browser.js'

t.setTimeout(60_000)
const gw = await startTestGateway(t, {
  resources: [
    { id: 'open', upstream: 'http://127.0.0.1:9/mcp', access: { allowAnyUser: true } },
    { id: 'secret', upstream: 'http://127.0.0.1:9/mcp', access: { subjects: ['static:alice'] } },
  ],
  config: {
    login: {
      static: {
        users: [
          { username: 'alice', passwordHash: await testPasswordHash('alice-password') },
          { username: 'bob', passwordHash: await testPasswordHash('bob-password') },
        ],
      },
    },
    clients: [{ clientId: 'web', name: 'Web app', redirectUris: ['https://app.example.com/cb'] }],
  },
})
const HOST = '127.0.0.1'
const BINDING = 'gatehouse-authz'
const SESSION = 'gatehouse-session'

const authorizeUrl = (resourceId: string, extra: Record<string, string> = {}) =>
  authorizeUrlAt(gw.origin, { state: 'st', resource: gw.mcpUrl(resourceId), ...extra })

async function signedIn(who: 'alice' | 'bob', resourceId = 'open'): Promise<{ browser: WebBrowser; consent: WebVisit }> {
  const browser = new WebBrowser()
  const login = await browser.get(authorizeUrl(resourceId))
  const consent = await browser.submit(login, { username: who, password: `${who}-password` })
  return { browser, consent }
}

t.test('MCPS-02: the login POST needs the page\'s CSRF token and this browser\'s binding cookie', async (t) => {
  const browser = new WebBrowser()
  const page = await browser.get(authorizeUrl('open'))
  const form = parseForm(page.html)
  const good: Record<string, string> = { ...form.fields, username: 'alice', password: 'alice-password' }
  const post = (fields: Record<string, string>, cookie?: string) =>
    fetch(`${gw.origin}${form.action}`, {
      method: 'POST',
      redirect: 'manual',
      headers: { 'content-type': 'application/x-www-form-urlencoded', ...(cookie !== undefined && { cookie }) },
      body: new URLSearchParams(fields),
    })
  const binding = browser.cookies(HOST).get(BINDING)!
  const { csrf: _c, ...noCsrf } = good
  const cases: [string, Record<string, string>, string | undefined][] = [
    ['no csrf field', noCsrf, `${BINDING}=${binding}`],
    ['wrong csrf', { ...good, csrf: 'forged' }, `${BINDING}=${binding}`],
    ['empty csrf', { ...good, csrf: '' }, `${BINDING}=${binding}`],
    ['no binding cookie (another browser / cross-site form)', good, undefined],
    ['wrong binding cookie', good, `${BINDING}=${randomBytes(24).toString('base64url')}`],
    ['binding cookie of another request', good, `${BINDING}=${await otherBinding()}`],
  ]
  for (const [what, fields, cookie] of cases) {
    const res = await post(fields, cookie)
    t.equal(res.status, 403, `${what}: 403`)
    t.equal(res.headers.get('location'), null, `${what}: no redirect`)
    t.notOk(res.headers.getSetCookie().some((c) => c.startsWith(`${SESSION}=`) && !/Max-Age=0/.test(c)), `${what}: no session cookie`)
    t.match(await res.text(), /not sent from the page the gateway showed you/)
  }
  t.equal(gw.logs.filter((l) => l.audit === 'login.succeeded').length, 0, 'no login happened')
  // The genuine form still works after all that.
  const ok = await browser.submit(page, { username: 'alice', password: 'alice-password' })
  t.equal(ok.status, 200, 'the page\'s own form signs in')
  t.match(ok.html, /Allow/)
})

async function otherBinding(): Promise<string> {
  const other = new WebBrowser()
  await other.get(authorizeUrl('open'))
  return other.cookies(HOST).get(BINDING)!
}

t.test('MCPS-02: the consent POST refuses a missing/wrong csrf, a foreign binding cookie, and another request\'s form', async (t) => {
  const { browser, consent } = await signedIn('alice')
  const form = parseForm(consent.html)
  t.equal(form.action, '/oauth/authorize/consent')
  const wrong = await browser.post(`${gw.origin}/oauth/authorize/consent`, { ...form.fields, csrf: 'forged', decision: 'allow' })
  t.equal(wrong.status, 403, 'wrong csrf')
  const { csrf: _c, ...noCsrf } = form.fields
  t.equal((await browser.post(`${gw.origin}/oauth/authorize/consent`, { ...noCsrf, decision: 'allow' })).status, 403, 'no csrf')
  // A second pending request in another tab: its csrf does not fit this request id.
  const second = await browser.get(authorizeUrl('open', { scope: 'admin' }))
  const secondForm = parseForm(second.html)
  const mixed = await browser.post(`${gw.origin}/oauth/authorize/consent`, { request_id: form.fields.request_id!, csrf: secondForm.fields.csrf!, decision: 'allow' })
  t.equal(mixed.status, 403, 'csrf of another pending request')
  // A cross-site form post: the browser carries no binding cookie of this request (SameSite=Lax holds it back).
  const attacker = new WebBrowser()
  attacker.cookies(HOST).set(SESSION, browser.cookies(HOST).get(SESSION)!)
  const crossSite = await attacker.post(`${gw.origin}/oauth/authorize/consent`, { ...secondForm.fields, decision: 'allow' }, { origin: 'https://evil.example' })
  t.equal(crossSite.status, 403, 'no binding cookie: 403')
  t.notOk(codeOf(crossSite))
  t.equal(gw.logs.filter((l) => l.audit === 'code.issued').length, 0, 'nothing issued')
})

t.test('MCPA-80 / access rules: the consent POST re-checks who is signed in now, not who saw the page', async (t) => {
  // bob may use "open" but not "secret". He starts a request for "secret" (no session: login
  // page), keeps its form and binding cookie, signs in through a request for "open", then posts
  // Allow for the "secret" request with his new session.
  const bob = new WebBrowser()
  const secretPage = await bob.get(authorizeUrl('secret'))
  const secretForm = parseForm(secretPage.html)
  const secretBinding = bob.cookies(HOST).get(BINDING)!
  const openPage = await bob.get(authorizeUrl('open'))
  const openConsent = await bob.submit(openPage, { username: 'bob', password: 'bob-password' })
  t.equal(openConsent.status, 200, 'bob signed in (open resource consent)')
  t.ok(bob.cookies(HOST).get(SESSION), 'bob has a session')
  bob.cookies(HOST).set(BINDING, secretBinding)
  const forged = await bob.post(`${gw.origin}/oauth/authorize/consent`, { ...secretForm.fields, decision: 'allow' })
  t.not(forged.status, 303, 'no redirect with a code')
  t.notOk(codeOf(forged), 'bob gets no code for a resource his access rules refuse')
  t.equal(forged.status, 403, 'the access-refused page')
  t.notOk(gw.logs.some((l) => l.audit === 'code.issued' && l.sub === 'static:bob' && l.resource === 'secret'), 'no code for bob on secret')
  t.notOk(gw.logs.some((l) => l.audit === 'consent.granted' && l.sub === 'static:bob' && l.resource === 'secret'), 'no consent remembered')
})

t.test('logout POST: refused without the gateway\'s own Origin (cross-site, missing, null)', async (t) => {
  const { browser } = await signedIn('alice')
  const session = browser.cookies(HOST).get(SESSION)!
  for (const origin of ['https://evil.example', 'null', undefined, `${gw.origin}.evil.example`, gw.origin.replace('127.0.0.1', 'localhost')]) {
    const res = await fetch(`${gw.origin}/oauth/logout`, {
      method: 'POST',
      redirect: 'manual',
      headers: { cookie: `${SESSION}=${session}`, 'content-type': 'application/x-www-form-urlencoded', ...(origin !== undefined && { origin }) },
      body: '',
    })
    t.equal(res.status, 403, `origin ${origin}: 403`)
    t.notOk(res.headers.getSetCookie().length, `origin ${origin}: no cookie cleared`)
    await res.text()
  }
  // The session survived every forged logout.
  const still = await browser.get(authorizeUrl('open', { scope: 'admin' }))
  t.match(still.html, /Signed in as/, 'still signed in')
  const out = await browser.post(`${gw.origin}/oauth/logout`, {})
  t.equal(out.status, 200, 'the gateway\'s own page signs out')
  const after = await new WebBrowser().get(`${gw.origin}/oauth/logout`)
  t.equal(after.status, 200)
  // The old session id is dead in the store, not only in this browser.
  const replay = new WebBrowser()
  replay.cookies(HOST).set(SESSION, session)
  const page = await replay.get(authorizeUrl('open'))
  t.match(page.html, /Sign in to continue/, 'the ended session id no longer signs anyone in')
})

// Last: it issues a code and leaves a remembered consent, which the tests above must not see.
// (A POST without Origin is no browser's form: the CSRF checks above decide for it.)
t.test('login and consent POSTs: a foreign or null Origin is refused even with the right token and cookies (issue 21, beside MCPS-02)', async (t) => {
  const origins = ['https://evil.example', 'null', `${gw.origin}.evil.example`]
  for (const origin of origins) {
    const browser = new WebBrowser()
    const page = await browser.get(authorizeUrl('open'))
    const form = parseForm(page.html)
    const login = await browser.post(`${gw.origin}${form.action}`, { ...form.fields, username: 'alice', password: 'alice-password' }, { origin })
    t.equal(login.status, 403, `login from ${origin}: 403`)
    t.match(login.html, /can only be sent from the gateway/, 'saying why')
    t.notOk(browser.cookies(HOST).get(SESSION), `login from ${origin}: no session`)
  }
  const browser = new WebBrowser()
  const page = await browser.get(authorizeUrl('open', { scope: 'admin' }))
  const consent = await browser.submit(page, { username: 'bob', password: 'bob-password' })
  t.equal(consent.status, 200, "the same form from the gateway's own page signs in")
  const consentForm = parseForm(consent.html)
  for (const origin of origins) {
    const forged = await browser.post(`${gw.origin}${consentForm.action}`, { ...consentForm.fields, decision: 'allow' }, { origin })
    t.equal(forged.status, 403, `consent from ${origin}: 403`)
    t.notOk(codeOf(forged), 'no code')
  }
  const own = await browser.post(`${gw.origin}${consentForm.action}`, { ...consentForm.fields, decision: 'allow' })
  t.ok(codeOf(own), "the consent from the gateway's own page issues the code: the refusals consumed nothing")
})
