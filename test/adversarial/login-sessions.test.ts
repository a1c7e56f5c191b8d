/**
 * Red team, sessions and consent at the authorization endpoint: session fixation, one pending
 * request per browser, exactly one code per request (double submit, deny then allow),
 * remembered consent scoped to its resource and scopes, no open redirect anywhere a person can
 * be sent (O21-17, MCPA-71), untrusted text escaped (SEC-25).
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
    { id: 'files', upstream: 'http://127.0.0.1:9/mcp', scopes: [{ name: 'mcp' }, { name: 'admin', description: 'Administer <b>everything</b>' }] },
    { id: 'crm', upstream: 'http://127.0.0.1:9/mcp' },
  ],
  config: {
    login: {
      static: {
        users: [
          { username: 'alice', passwordHash: await testPasswordHash('alice-password'), name: 'Alice' },
          { username: 'bob', passwordHash: await testPasswordHash('bob-password') },
          { username: 'carol', passwordHash: await testPasswordHash('carol-password') },
          { username: 'dave', passwordHash: await testPasswordHash('dave-password') },
        ],
      },
    },
    clients: [
      { clientId: 'web', name: 'Web\u202eppa <script>alert(1)</script>', redirectUris: ['https://app.example.com/cb'] },
      { clientId: 'other', name: 'Other app', redirectUris: ['https://other.example.com/cb'] },
    ],
  },
})
const HOST = '127.0.0.1'
const SESSION = 'gatehouse-session'

const authorizeUrl = (extra: Record<string, string> = {}) => authorizeUrlAt(gw.origin, { state: 'st', resource: gw.mcpUrl('files'), ...extra })
const codesIssued = () => gw.logs.filter((l) => l.audit === 'code.issued').length

async function consentPage(b: WebBrowser, who: 'alice' | 'bob' | 'carol' | 'dave' = 'alice', extra: Record<string, string> = {}): Promise<WebVisit> {
  const login = await b.get(authorizeUrl(extra))
  return b.submit(login, { username: who, password: `${who}-password` })
}

t.test('session fixation: a session id chosen by an attacker is not adopted; login issues a fresh id', async (t) => {
  const b = new WebBrowser()
  const planted = randomBytes(32).toString('base64url')
  b.cookies(HOST).set(SESSION, planted)
  const login = await b.get(authorizeUrl())
  t.match(login.html, /Sign in to continue/, 'an unknown session id signs nobody in')
  await b.submit(login, { username: 'alice', password: 'alice-password' })
  const fresh = b.cookies(HOST).get(SESSION)!
  t.ok(fresh && fresh !== planted, 'login set a new session id, not the planted one')
  const attacker = new WebBrowser()
  attacker.cookies(HOST).set(SESSION, planted)
  t.match((await attacker.get(authorizeUrl())).html, /Sign in to continue/, 'the planted id is still nobody')
  // Signing in again (as someone else) rotates the id again.
  const again = await b.get(authorizeUrl({ client_id: 'other', redirect_uri: 'https://other.example.com/cb' }))
  t.match(again.html, /Signed in as Alice/)
  const relog = await b.get(authorizeUrl({ resource: gw.mcpUrl('crm') }))
  void relog
  // Over-long and odd cookie values are ignored, never a 500.
  for (const value of ['x'.repeat(5000), '%00', '"quoted"', ';;;']) {
    const odd = new WebBrowser()
    odd.cookies(HOST).set(SESSION, value)
    const res = await odd.get(authorizeUrl())
    t.equal(res.status, 200, `session cookie ${value.slice(0, 10)}: login page`)
  }
})

t.test('a pending request belongs to the browser that opened it (MCPS-02)', async (t) => {
  const a = new WebBrowser()
  const page = await consentPage(a)
  const stranger = new WebBrowser()
  const login = await stranger.get(authorizeUrl())
  await stranger.submit(login, { username: 'bob', password: 'bob-password' })
  const stolen = await stranger.post(`${gw.origin}/oauth/authorize/consent`, { ...parseForm(page.html).fields, decision: 'allow' })
  t.equal(stolen.status, 403, 'another browser with its own session cannot answer it')
  t.notOk(codeOf(stolen))
  const own = await a.submit(page, { decision: 'allow' })
  t.ok(codeOf(own), 'the opening browser still can')
})

t.test('exactly one code per request: concurrent double Allow, Allow after Deny, Deny after Allow', async (t) => {
  const b = new WebBrowser()
  const page = await consentPage(b, 'bob', { scope: 'admin' })
  const before = codesIssued()
  const [x, y, z] = await Promise.all([b.submit(page, { decision: 'allow' }), b.submit(page, { decision: 'allow' }), b.submit(page, { decision: 'allow' })])
  t.equal([x, y, z].filter((v) => codeOf(v)).length, 1, 'one of three concurrent submits gets a code')
  t.equal(codesIssued(), before + 1)
  for (const v of [x, y, z].filter((v) => !codeOf(v))) t.equal(v.status, 400, 'the others: expired page')

  const c = new WebBrowser()
  const p2 = await consentPage(c, 'bob', { resource: gw.mcpUrl('crm') })
  const denied = await c.submit(p2, { decision: 'deny' })
  t.equal(new URL(denied.location!).searchParams.get('error'), 'access_denied')
  const allowAfter = await c.submit(p2, { decision: 'allow' })
  t.equal(allowAfter.status, 400, 'Allow after Deny: expired, no code')
  t.notOk(codeOf(allowAfter))
  t.equal(codesIssued(), before + 1)
})

t.test('remembered consent holds for its resource and scopes only', async (t) => {
  const b = new WebBrowser()
  const page = await consentPage(b, 'carol')
  t.ok(codeOf(await b.submit(page, { decision: 'allow' })), 'carol allows web on files (mcp)')
  const same = await b.get(authorizeUrl())
  t.ok(codeOf(same), 'the same request again: no page, a code (remembered)')
  const moreScope = await b.get(authorizeUrl({ scope: 'admin' }))
  t.equal(moreScope.status, 200, 'a new scope: asked again')
  t.match(moreScope.html, /class="new"><code>admin/, 'the new scope is marked')
  t.match(moreScope.html, /Administer &#60;b&#62;everything/, 'scope descriptions escaped')
  const otherResource = await b.get(authorizeUrl({ resource: gw.mcpUrl('crm') }))
  t.equal(otherResource.status, 200, 'another resource: asked again')
  const otherClient = await b.get(authorizeUrl({ client_id: 'other', redirect_uri: 'https://other.example.com/cb' }))
  t.equal(otherClient.status, 200, 'another client: asked again')
  // Another person does not inherit carol's consent.
  const dave = new WebBrowser()
  t.equal((await consentPage(dave, 'dave')).status, 200, 'another person: asked')
})

t.test('SEC-25: client_name with markup and bidi overrides is escaped and cleaned on every page', async (t) => {
  const b = new WebBrowser()
  const login = await b.get(authorizeUrl())
  const consent = await b.submit(login, { username: 'dave', password: 'dave-password' })
  t.equal(consent.status, 200)
  for (const [what, html] of [['login', login.html], ['consent', consent.html]] as const) {
    t.notMatch(html, /<script>alert/, `${what}: no markup`)
    t.notMatch(html, /\u202e/, `${what}: no bidi override`)
    t.match(html, /&#60;script&#62;/, `${what}: shown as text`)
  }
  t.match(consent.html, /Sends you back to<\/dt><dd><strong>https:\/\/app\.example\.com</, 'consent: the redirect origin is shown beside the name (MCPA-78, SEC-24)')
})

t.test('no reflected input and no open redirect: error pages, return links, logout, next/return parameters', async (t) => {
  const evil = '<script>alert(1)</script>'
  const pages = [
    await fetch(authorizeUrl({ client_id: evil }), { redirect: 'manual' }),
    await fetch(authorizeUrl({ redirect_uri: `https://evil.example/${evil}` }), { redirect: 'manual' }),
    await fetch(`${gw.origin}/oauth/callback/${encodeURIComponent(evil)}?state=${encodeURIComponent(evil)}`, { redirect: 'manual' }),
    await fetch(`${gw.origin}/oauth/authorize?${evil}`, { redirect: 'manual' }),
  ]
  for (const res of pages) {
    const html = await res.text()
    t.ok(res.status >= 400, `${res.status}: refused`)
    t.equal(res.headers.get('location'), null, 'no redirect before the client is verified (O21-09)')
    t.notMatch(html, /<script>/, 'nothing reflected as markup')
  }
  // Redirect-style parameters are ignored: the only place a person is sent is the verified redirect URI.
  const b = new WebBrowser()
  const page = await consentPage(b, 'alice', { next: 'https://evil.example', return: 'https://evil.example', return_to: 'https://evil.example', scope: 'admin' })
  const done = await b.submit(page, { decision: 'allow', next: 'https://evil.example', redirect_uri: 'https://evil.example/cb' })
  t.equal(new URL(done.location!).origin, 'https://app.example.com', 'the code goes to the verified redirect URI only')
  for (const path of ['/oauth/logout?return=https://evil.example', '/oauth/logout?next=https://evil.example&post_logout_redirect_uri=https://evil.example']) {
    const get = await b.get(`${gw.origin}${path}`)
    t.equal(get.location, undefined, `GET ${path}: no redirect`)
    const post = await b.post(`${gw.origin}${path}`, { next: 'https://evil.example' })
    t.equal(post.status, 200, `POST ${path}: a page`)
    t.equal(post.location, undefined, 'no redirect after sign-out')
    t.notMatch(post.html, /evil\.example/)
  }
})
