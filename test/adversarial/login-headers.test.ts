/**
 * Red team: every page a person can reach at the authorization server is unframeable (BCP-14,
 * MCPS-02: CSP frame-ancestors 'none' and X-Frame-Options DENY), error pages included, and
 * every cookie it sets or clears has the MCPS-03 attributes: `__Host-` prefix, Secure,
 * HttpOnly, SameSite=Lax, Path=/, no Domain.
 */
import t, { type Test } from 'tap'
import { testPasswordHash } from '../helpers/passwords.js'
import { authorizeQuery as authorizeQueryFor } from '../helpers/authorize-url.js'
import { parseForm } from '../helpers/form-browser.js'
import { startTestGateway } from '../helpers/gateway.js'
import { reservePort } from '../helpers/ports.js'

t.setTimeout(60_000)
// Behind a TLS-terminating proxy: publicUrl is https, the test talks to the plain listener.
const port = await reservePort(t)
const gw = await startTestGateway(t, {
  port,
  resources: [{ id: 'files', upstream: 'http://127.0.0.1:9/mcp', access: { allowAnyUser: true } }],
  config: {
    publicUrl: `https://localhost:${port}`,
    login: { static: { users: [{ username: 'alice', passwordHash: await testPasswordHash('alice-password') }] } },
    clients: [{ clientId: 'web', name: 'Web app', redirectUris: ['https://app.example.com/cb'] }],
  },
})
const origin = `http://127.0.0.1:${port}`
const publicOrigin = `https://localhost:${port}`

const authorizeQuery = (extra: Record<string, string> = {}) => authorizeQueryFor({ state: 'st', resource: gw.mcpUrl(), ...extra })

const jar = new Map<string, string>()
const setCookies: string[] = []
async function visit(path: string, init: { method?: string; form?: Record<string, string>; origin?: string } = {}) {
  const headers: Record<string, string> = {}
  if (jar.size) headers.cookie = [...jar].map(([k, v]) => `${k}=${v}`).join('; ')
  if (init.form) headers['content-type'] = 'application/x-www-form-urlencoded'
  if (init.origin) headers.origin = init.origin
  const res = await fetch(`${origin}${path}`, {
    method: init.method ?? 'GET',
    headers,
    redirect: 'manual',
    ...(init.form && { body: new URLSearchParams(init.form) }),
  })
  for (const line of res.headers.getSetCookie()) {
    setCookies.push(line)
    const [pair] = line.split(';')
    const [name, value] = [pair!.slice(0, pair!.indexOf('=')), pair!.slice(pair!.indexOf('=') + 1)]
    if (value === '' || /Max-Age=0/.test(line)) jar.delete(name)
    else jar.set(name, value)
  }
  return { status: res.status, headers: res.headers, html: await res.text() }
}

function unframeable(t: Test, what: string, res: { headers: Headers }) {
  t.match(res.headers.get('content-security-policy'), /frame-ancestors 'none'/, `${what}: CSP frame-ancestors 'none' (BCP-14)`)
  t.equal(res.headers.get('x-frame-options'), 'DENY', `${what}: X-Frame-Options DENY (BCP-14)`)
  t.equal(res.headers.get('x-content-type-options'), 'nosniff', `${what}: nosniff`)
  t.equal(res.headers.get('referrer-policy'), 'same-origin', `${what}: no referrer to other sites (BCP-16)`)
}

t.test('BCP-14 / MCPS-02: login, consent, logout, refusal and error pages are all unframeable', async (t) => {
  const login = await visit(`/oauth/authorize?${authorizeQuery()}`)
  t.equal(login.status, 200)
  unframeable(t, 'login page', login)
  const form = parseForm(login.html)
  const bad = await visit(form.action, { method: 'POST', form: { ...form.fields, password: 'wrong', username: 'alice' } })
  t.equal(bad.status, 401)
  unframeable(t, 'login page with an error', bad)
  const consent = await visit(form.action, { method: 'POST', form: { ...form.fields, username: 'alice', password: 'alice-password' } })
  t.equal(consent.status, 200)
  unframeable(t, 'consent page', consent)
  t.match(consent.headers.get('cache-control'), /no-store/, 'consent page: no-store')
  const csrf = await visit('/oauth/authorize/consent', { method: 'POST', form: { ...parseForm(consent.html).fields, csrf: 'x', decision: 'allow' } })
  t.equal(csrf.status, 403)
  unframeable(t, 'CSRF refusal page', csrf)
  for (const [what, path] of [
    ['unknown client page', `/oauth/authorize?${authorizeQuery({ client_id: 'nobody' })}`],
    ['unregistered redirect page', `/oauth/authorize?${authorizeQuery({ redirect_uri: 'https://evil.example/cb' })}`],
    ['expired request page', '/oauth/authorize/consent'],
    ['bad callback page', '/oauth/callback/corp?state=x&code=y'],
    ['logout page', '/oauth/logout'],
    ['not found', '/oauth/nowhere'],
  ] as const) {
    const res = await visit(path, path === '/oauth/authorize/consent' ? { method: 'POST', form: { request_id: 'nope' } } : {})
    unframeable(t, what, res)
  }
  const out = await visit('/oauth/logout', { method: 'POST', form: {}, origin: publicOrigin })
  t.equal(out.status, 200)
  unframeable(t, 'signed-out page', out)
  const refusedLogout = await visit('/oauth/logout', { method: 'POST', form: {}, origin: 'https://evil.example' })
  t.equal(refusedLogout.status, 403)
  unframeable(t, 'refused logout page', refusedLogout)
})

t.test('MCPS-03: every cookie set or cleared is __Host-, Secure, HttpOnly, SameSite=Lax, Path=/, no Domain', async (t) => {
  // Drive a full flow: binding cookie, session cookie, binding cleared, session cleared.
  const page = await visit(`/oauth/authorize?${authorizeQuery()}`)
  const form = parseForm(page.html)
  const consent = await visit(form.action, { method: 'POST', form: { ...form.fields, username: 'alice', password: 'alice-password' } })
  const done = await visit('/oauth/authorize/consent', { method: 'POST', form: { ...parseForm(consent.html).fields, decision: 'allow' } })
  t.equal(done.status, 303)
  await visit('/oauth/logout', { method: 'POST', form: {}, origin: publicOrigin })
  t.ok(setCookies.length >= 4, `cookies seen: ${setCookies.length}`)
  const names = new Set(setCookies.map((c) => c.slice(0, c.indexOf('='))))
  t.ok(names.has('__Host-gatehouse-authz') && names.has('__Host-gatehouse-session'), 'binding and session cookies seen')
  t.ok(setCookies.some((c) => /Max-Age=0/.test(c)), 'clear forms seen too')
  for (const c of setCookies) {
    const attrs = c.split(';').map((a) => a.trim().toLowerCase())
    t.match(c, /^__Host-gatehouse-/, `${c.slice(0, 30)}: __Host- prefix`)
    t.ok(attrs.includes('secure'), 'Secure')
    t.ok(attrs.includes('httponly'), 'HttpOnly')
    t.ok(attrs.includes('samesite=lax'), 'SameSite=Lax')
    t.ok(attrs.includes('path=/'), 'Path=/')
    t.notOk(attrs.some((a) => a.startsWith('domain')), 'no Domain')
  }
})
