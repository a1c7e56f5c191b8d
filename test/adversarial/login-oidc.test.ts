/**
 * Red team, upstream OIDC sign-in (MCPA-80, MCPS-01..06, RFC 9207, OIDC Core): a hostile or
 * confused IdP answer, a callback delivered to the wrong browser, replays and mix-ups all end
 * without a code; claims are read strictly (email_verified, email shape, groups shape, size).
 */
import { readFileSync } from 'node:fs'
import t, { type Test } from 'tap'
import { authorizeUrl as authorizeUrlAt, codeOf } from '../helpers/authorize-url.js'
import { startTestGateway } from '../helpers/gateway.js'
import { reservePort } from '../helpers/ports.js'
import { WebBrowser, type WebVisit } from '../helpers/web-browser.js'
import { FAKE_CLIENT_ID, FAKE_CLIENT_SECRET, startFakeIdp, type FakeIdp } from './login-fake-idp.js'

t.setTimeout(120_000)
const corp = await startFakeIdp(t)
const other = await startFakeIdp(t)
const port = await reservePort(t)
const provider = (id: string, idp: FakeIdp) => ({
  id,
  name: id === 'corp' ? 'Corp SSO' : 'Other SSO',
  issuer: idp.issuer,
  clientId: FAKE_CLIENT_ID,
  clientSecret: FAKE_CLIENT_SECRET,
  scopes: ['openid', 'email', 'profile'],
  caFile: idp.caFile,
})
const gw = await startTestGateway(t, {
  port,
  resources: [
    { id: 'domain', upstream: 'http://127.0.0.1:9/mcp', access: { emailDomains: ['example.com'] } },
    { id: 'any', upstream: 'http://127.0.0.1:9/mcp', access: { allowAnyUser: true } },
    { id: 'groups', upstream: 'http://127.0.0.1:9/mcp', access: { groupsAnyOf: ['mcp-users'] } },
  ],
  config: {
    clients: [{ clientId: 'web', name: 'Web app', redirectUris: ['https://app.example.com/cb'] }],
    login: { oidc: [provider('corp', corp), provider('other', other)], session: { maxAgeSeconds: 600 } },
  },
})
const ca = readFileSync(corp.caFile, 'utf8') + readFileSync(other.caFile, 'utf8')
const browser = () => new WebBrowser({ ca })
const HOST = '127.0.0.1'

const authorizeUrl = (resourceId: string, extra: Record<string, string> = {}) =>
  authorizeUrlAt(gw.origin, { state: 'client-state', resource: gw.mcpUrl(resourceId), ...extra })

/** Approves the consent page for `providerId` and lets the IdP answer: the callback URL, not yet visited. */
async function toCallback(b: WebBrowser, resourceId = 'domain', providerId = 'corp'): Promise<string> {
  const page = await b.get(authorizeUrl(resourceId))
  if (page.status !== 200) throw new Error(`authorize: ${page.status}`)
  const toIdp = await b.submit(page, { provider: providerId })
  if (toIdp.status !== 303) throw new Error(`approve: ${toIdp.status} ${toIdp.html.slice(0, 200)}`)
  const atIdp = await b.get(toIdp.location!)
  if (!atIdp.location) throw new Error(`idp: ${atIdp.status}`)
  return atIdp.location
}

const issued = () => gw.logs.filter((l) => l.audit === 'code.issued').length

async function signIn(resourceId = 'domain', providerId = 'corp'): Promise<WebVisit> {
  const b = browser()
  return b.get(await toCallback(b, resourceId, providerId))
}

async function refused(t: Test, what: string, visit: WebVisit, before: number) {
  t.notOk(codeOf(visit), `${what}: no code`)
  t.ok(visit.status >= 400, `${what}: a refusal page (${visit.status})`)
  t.equal(issued(), before, `${what}: nothing issued`)
  t.notMatch(visit.html, /<script/i)
}

t.beforeEach(() => {
  corp.reset()
  other.reset()
})

t.test('baseline: a well-behaved IdP answer gives one code', async (t) => {
  const done = await signIn()
  t.equal(done.status, 303)
  t.ok(codeOf(done))
})

t.test('MCPS-05 login CSRF: an attacker\'s own callback URL delivered to the victim\'s browser is refused', async (t) => {
  const attacker = browser()
  const attackersCallback = await toCallback(attacker)
  const before = issued()
  const victim = browser()
  await refused(t, 'victim with no state cookie', await victim.get(attackersCallback), before)
  // A victim in the middle of their own login (their own state cookie).
  await toCallback(victim)
  await refused(t, 'victim with their own state cookie', await victim.get(attackersCallback), before)
  t.notOk(victim.cookies(HOST).has('gatehouse-session'), 'the victim is not signed in as the attacker')
  // The attacker's login was not burned by the failed attempts (and is the attacker's own).
  const own = await attacker.get(attackersCallback)
  t.equal(own.status, 303)
})

t.test('MCPS-05: state replay, state of another provider (mix-up), state with a different callback path', async (t) => {
  const b = browser()
  const callback = await toCallback(b)
  const first = await b.get(callback)
  t.ok(codeOf(first))
  const before = issued()
  await refused(t, 'replayed callback', await b.get(callback), before)
  // The same browser approves at corp; the answer is delivered to other's callback (mix-up).
  const b2 = browser()
  const c2 = await toCallback(b2)
  const moved = new URL(c2)
  moved.pathname = '/oauth/callback/other'
  await refused(t, 'corp state at the other callback', await b2.get(moved.href), before)
  t.equal((await b2.get(c2)).status, 303, 'still completes at its own callback')
})

t.test('RFC 9207 (ISS-02): a wrong iss, a missing iss when advertised, the other IdP\'s iss: refused', async (t) => {
  const before = issued()
  corp.behaviour.callback = (req, code) => ({ code, state: req.state, iss: other.issuer })
  await refused(t, 'iss of the other IdP (mix-up)', await signIn(), before)
  corp.behaviour.callback = (req, code) => ({ code, state: req.state, iss: `${corp.issuer}/` })
  await refused(t, 'iss with a trailing slash', await signIn(), before)
  corp.behaviour.callback = (req, code) => ({ code, state: req.state })
  await refused(t, 'no iss although advertised', await signIn(), before)
  corp.behaviour.callback = (req, code, iss) => ({ code, state: req.state, iss, error: 'access_denied' })
  const both = await signIn()
  await refused(t, 'both code and error', both, before)
  corp.behaviour.callback = (req, code, iss) => ({ code, state: req.state, iss, state2: 'x' })
  t.equal((await signIn()).status, 303, 'an unknown extra parameter is harmless')
})

t.test('OIDC Core 3.1.3.7: ID tokens with alg none, HS256 with the client secret, a foreign nonce, a wrong audience or issuer: refused', async (t) => {
  const before = issued()
  corp.behaviour.alg = 'none'
  await refused(t, 'alg none', await signIn(), before)
  corp.behaviour.alg = 'HS256'
  await refused(t, 'HS256 keyed with the client secret', await signIn(), before)
  corp.reset()
  corp.behaviour.nonce = corp.requests[0]!.nonce
  await refused(t, 'nonce of an earlier login (replayed ID token)', await signIn(), before)
  corp.reset()
  corp.behaviour.claims = { ...corp.behaviour.claims, aud: 'someone-else' }
  await refused(t, 'audience of another client', await signIn(), before)
  corp.behaviour.claims = { sub: 'alice', email: 'alice@example.com', email_verified: true, iss: other.issuer }
  await refused(t, 'ID token of the other issuer', await signIn(), before)
  t.notMatch(gw.logText(), new RegExp(FAKE_CLIENT_SECRET), 'the client secret is never logged')
})

t.test('max_age (login.session.maxAgeSeconds) is sent and auth_time enforced', async (t) => {
  const before = issued()
  const ok = await signIn()
  t.ok(codeOf(ok))
  t.equal(corp.requests.at(-1)!.max_age, '600', 'max_age sent to the IdP')
  corp.behaviour.claims = { ...corp.behaviour.claims, auth_time: Math.floor(Date.now() / 1000) - 3600 }
  await refused(t, 'auth_time an hour ago', await signIn(), before + 1)
  corp.behaviour.claims = { ...corp.behaviour.claims, auth_time: undefined }
  await refused(t, 'no auth_time although max_age was asked', await signIn(), before + 1)
})

t.test('access rules read only verified, well-formed emails (emailDomains example.com)', async (t) => {
  const cases: [string, Record<string, unknown>, boolean][] = [
    ['verified example.com', { email: 'alice@example.com', email_verified: true }, true],
    ['mixed case Alice@Example.COM', { email: 'Alice@Example.COM', email_verified: true }, true],
    ['email_verified false', { email: 'alice@example.com', email_verified: false }, false],
    ['email_verified the string "true"', { email: 'alice@example.com', email_verified: 'true' }, false],
    ['email_verified absent', { email: 'alice@example.com' }, false],
    ['suffix domain example.com.evil.test', { email: 'alice@example.com.evil.test', email_verified: true }, false],
    ['subdomain sub.example.com', { email: 'alice@sub.example.com', email_verified: true }, false],
    ['trailing dot', { email: 'alice@example.com.', email_verified: true }, false],
    ['Cyrillic а homoglyph', { email: 'alice@exаmple.com', email_verified: true }, false],
    ['punycode of another domain', { email: 'alice@xn--exmple-cua.com', email_verified: true }, false],
    ['CR/LF in the address', { email: 'x\r\nX-Injected: 1@example.com', email_verified: true }, false],
    ['a space in the address', { email: 'alice @example.com', email_verified: true }, false],
    ['a comma in the address', { email: 'alice@evil.test,bob@example.com', email_verified: true }, false],
    ['not a string', { email: ['alice@example.com'], email_verified: true }, false],
    ['over-long address', { email: `${'a'.repeat(300)}@example.com`, email_verified: true }, false],
  ]
  for (const [what, claims, allowed] of cases) {
    corp.behaviour.claims = { sub: `user-${what.length}`, ...claims }
    const before = issued()
    const visit = await signIn('domain')
    if (allowed) t.ok(codeOf(visit), `${what}: allowed`)
    else await refused(t, what, visit, before)
  }
})

t.test('email and email_verified come from one source: an unverified ID token email is not verified by UserInfo', async (t) => {
  corp.behaviour.claims = { sub: 'mixer', email: 'mixer@example.com' }
  corp.behaviour.userinfo = { email: 'someone@other.test', email_verified: true }
  await refused(t, 'ID token email with UserInfo\'s email_verified', await signIn('domain'), issued())
  corp.behaviour.claims = { sub: 'plain' }
  corp.behaviour.userinfo = { email: 'plain@example.com', email_verified: true }
  t.ok(codeOf(await signIn('domain')), 'an email verified at UserInfo alone counts')
})

t.test('groups claim: array, single string, object, non-strings, huge; access groupsAnyOf mcp-users', async (t) => {
  const cases: [string, unknown, boolean][] = [
    ['array', ['a', 'mcp-users'], true],
    ['single string', 'mcp-users', true],
    ['comma-joined string is one group', 'x,mcp-users', false],
    ['object', { 'mcp-users': true }, false],
    ['array of non-strings', [{ name: 'mcp-users' }, 1, null], false],
    ['huge array: the group past the cap does not count', [...Array.from({ length: 5000 }, (_, i) => `g${i}`), 'mcp-users'], false],
  ]
  for (const [what, groups, allowed] of cases) {
    corp.behaviour.claims = { sub: 'grouper', email: 'g@example.com', email_verified: true, groups }
    const before = issued()
    const visit = await signIn('groups')
    if (allowed) t.ok(codeOf(visit), `${what}: allowed`)
    else await refused(t, what, visit, before)
  }
})

t.test('SEC-25: IdP-provided name and email reach pages escaped and cleaned; huge claims are bounded', async (t) => {
  const evilName = '<img src=x onerror=alert(1)>\u202eevil\u202c' + 'N'.repeat(5000)
  corp.behaviour.claims = { sub: 'xss', name: evilName, groups: Array.from({ length: 50 }, () => 'G'.repeat(100_000)) }
  const b = browser()
  const first = await b.get(await toCallback(b, 'any'))
  t.equal(first.status, 303, 'signed in')
  // A second request asking for a new scope shows the consent page with "Signed in as".
  const consent = await b.get(authorizeUrl('any', { scope: 'admin' }))
  t.equal(consent.status, 200)
  t.notMatch(consent.html, /<img/, 'no markup from the IdP')
  t.notMatch(consent.html, /\u202e/, 'no bidi override')
  t.ok(consent.html.length < 20_000, `the page is bounded (${consent.html.length})`)
  const line = /Signed in as ([^<]*)</.exec(consent.html)![1]!
  t.ok(line.length < 300, 'the name shown is bounded')
  const code = codeOf(first)!
  t.ok(code)
  t.ok(gw.logText().length < 2_000_000, 'the huge claims did not flood the log')
})
