/**
 * Red team, the password form (static users): no username enumeration by message, status or
 * timing; no password in any log line; a huge password is bounded (16 KiB form limit, no scrypt
 * blow-up); login attempts count against the authorization endpoint's per-address limit (SEC-35).
 */
import t, { type Test } from 'tap'
import { hashPassword } from '../../src/login/passwords.js'
import { authorizeUrl as authorizeUrlAt } from '../helpers/authorize-url.js'
import { parseForm } from '../helpers/form-browser.js'
import { startTestGateway } from '../helpers/gateway.js'
import { WebBrowser } from '../helpers/web-browser.js'

t.setTimeout(120_000)
const SECRET = 'Correct-Horse-Battery-Staple-7391'
const users = [{ username: 'alice', passwordHash: await hashPassword(SECRET) }]
const client = { clientId: 'web', name: 'Web app', redirectUris: ['https://app.example.com/cb'] }

async function gateway(t: Test, extra: Record<string, unknown> = {}, logLevel = 'info') {
  return startTestGateway(t, {
    logLevel,
    resources: [{ id: 'files', upstream: 'http://127.0.0.1:9/mcp' }],
    config: { login: { static: { users } }, clients: [client], ...extra },
  })
}

const authorizeUrl = (origin: string, resource: string) => authorizeUrlAt(origin, { resource })

t.test('no username enumeration: the same status and message for an unknown user and a wrong password', async (t) => {
  const gw = await gateway(t)
  const attempt = async (username: string, password: string) => {
    const b = new WebBrowser()
    const page = await b.get(authorizeUrl(gw.origin, gw.mcpUrl()))
    const started = performance.now()
    const res = await b.submit(page, { username, password })
    return { ...res, ms: performance.now() - started }
  }
  const unknown = await attempt('mallory', 'whatever')
  const wrong = await attempt('alice', 'whatever')
  t.equal(unknown.status, 401)
  t.equal(wrong.status, 401)
  const message = (html: string) => /id="login-error"[^>]*>([^<]*)</.exec(html)?.[1]
  t.equal(message(unknown.html), message(wrong.html), 'one message for both')
  t.ok(message(wrong.html), 'a message is shown')
  // Timing: the unknown user pays the same scrypt (a decoy hash). Medians of a few tries.
  const median = (xs: number[]) => xs.sort((a, b) => a - b)[Math.floor(xs.length / 2)]!
  const u: number[] = []
  const w: number[] = []
  for (let i = 0; i < 7; i++) {
    u.push((await attempt(`nobody${i}`, 'x')).ms)
    w.push((await attempt('alice', `x${i}`)).ms)
  }
  const [mu, mw] = [median(u), median(w)]
  t.ok(mu > mw / 3 && mu < mw * 3, `unknown ${mu.toFixed(1)} ms vs wrong password ${mw.toFixed(1)} ms: same order`)
  t.ok(mu > 5, 'an unknown user is not answered without hashing')
  t.notOk(gw.logs.some((l) => l.audit === 'login.failed' && JSON.stringify(l).includes('mallory')), 'the tried username is not in the audit event')
})

t.test('no password in any log line, for failed and successful logins', async (t) => {
  const gw = await gateway(t, {}, 'debug')
  const b = new WebBrowser()
  const page = await b.get(authorizeUrl(gw.origin, gw.mcpUrl()))
  const failed = await b.submit(page, { username: 'alice', password: `${SECRET}-nope` })
  t.equal(failed.status, 401)
  const again = await b.submit(failed, { username: 'alice', password: SECRET })
  t.equal(again.status, 200)
  const consent = await b.submit(again, { decision: 'allow' })
  t.equal(consent.status, 303)
  t.notMatch(gw.logText(), SECRET, 'the password appears in no log line')
  t.notMatch(gw.logText(), /password=/i)
  t.notMatch(failed.html, SECRET, 'the failed page does not echo the password')
  t.notMatch(failed.html, /name="password"[^>]*value="[^"]/, 'the password field is never prefilled')
})

t.test('a huge password is bounded: 16 KiB form limit, refused quickly (scrypt cost does not grow)', async (t) => {
  const gw = await gateway(t)
  const b = new WebBrowser()
  const page = await b.get(authorizeUrl(gw.origin, gw.mcpUrl()))
  let started = performance.now()
  const big = await b.submit(page, { username: 'alice', password: 'p'.repeat(15_000) })
  t.equal(big.status, 401, 'just under the limit: an ordinary wrong password')
  t.ok(performance.now() - started < 2000, 'answered in ordinary time')
  started = performance.now()
  const huge = await b.submit(page, { username: 'alice', password: 'p'.repeat(200_000) })
  t.equal(huge.status, 413, 'over the form limit: 413 page')
  t.match(huge.headers.get('content-type'), /text\/html/)
  t.ok(performance.now() - started < 2000)
  t.equal(gw.logs.filter((l) => l.audit === 'login.failed').length, 1, 'the oversized form never reached the password check')
})

t.test('SEC-35: login attempts count against the per-address limit of the authorization endpoint', async (t) => {
  const gw = await gateway(t, { rateLimits: { authorize: { perAddress: { requests: 6, windowSeconds: 60 } } } })
  const b = new WebBrowser()
  const page = await b.get(authorizeUrl(gw.origin, gw.mcpUrl()))
  const form = parseForm(page.html)
  const statuses: number[] = []
  for (let i = 0; i < 8; i++) {
    const res = await b.post(`${gw.origin}${form.action}`, { ...form.fields, username: 'alice', password: `guess-${i}` })
    statuses.push(res.status)
  }
  t.same(statuses.slice(0, 5), [401, 401, 401, 401, 401], 'guesses within the limit are checked')
  t.same(statuses.slice(5), [429, 429, 429], 'then refused with 429 before any password check')
  t.equal(gw.logs.filter((l) => l.audit === 'login.failed').length, 5, 'only five guesses were checked')
})
