/**
 * SEC-35: failed password sign-ins are limited per username, across replicas, so guesses
 * spread over many addresses are bounded too. Only failures count; above the limit the name is
 * refused before any password hash is computed, with 429 and Retry-After, until the window ends.
 */
import { createHash, randomBytes } from 'node:crypto'
import t, { type Test } from 'tap'
import type { AuditEvent } from '../../src/audit/events.js'
import { testPasswordHash } from '../helpers/passwords.js'
import { startTestGateway, type TestGateway } from '../helpers/gateway.js'
import { redisForTests } from '../helpers/redis.js'
import { parseForm } from '../helpers/form-browser.js'
import { WebBrowser } from '../helpers/web-browser.js'

const SECRET = 'alice-password'
const users = [
  { username: 'alice', passwordHash: await testPasswordHash(SECRET) },
  { username: 'bob', passwordHash: await testPasswordHash('bob-password') },
]
const client = { clientId: 'web', name: 'Web app', redirectUris: ['https://app.example.com/cb'] }

function gateway(t: Test, extra: Record<string, unknown> = {}, store?: Record<string, unknown>): Promise<TestGateway> {
  return startTestGateway(t, {
    ...(store && { store }),
    resources: [{ id: 'files', upstream: 'http://127.0.0.1:9/mcp' }],
    config: {
      login: { static: { users } },
      clients: [client],
      rateLimits: { passwordLogin: { perUsername: { requests: 3, windowSeconds: 120 } } },
      ...extra,
    },
  })
}

function authorizeUrl(gw: TestGateway): string {
  const q = new URLSearchParams({
    response_type: 'code',
    client_id: 'web',
    redirect_uri: 'https://app.example.com/cb',
    code_challenge: createHash('sha256').update(randomBytes(32)).digest('base64url'),
    code_challenge_method: 'S256',
  })
  return `${gw.origin}/oauth/authorize?${q}`
}

/** One sign-in attempt from a fresh browser (as from a fresh address, as far as cookies go). */
async function attempt(gw: TestGateway, username: string, password: string) {
  const browser = new WebBrowser()
  const page = await browser.get(authorizeUrl(gw))
  return browser.submit(page, { username, password })
}

t.test('SEC-35: after 3 failures the name is refused, even with the right password; other names are not', async (t) => {
  const gw = await gateway(t)
  const events: AuditEvent[] = []
  gw.gateway.audit.onEvent((e) => events.push(e))
  for (let i = 0; i < 3; i++) t.equal((await attempt(gw, 'alice', `guess-${i}`)).status, 401, `failure ${i + 1}`)
  const refused = await attempt(gw, 'alice', SECRET)
  t.equal(refused.status, 429, 'the right password is refused while the name is blocked')
  t.equal(refused.headers.get('retry-after'), '120')
  t.match(refused.html, /Too many failed sign-ins for this name/)
  t.notOk(refused.headers.getSetCookie().some((c) => /session=/.test(c)), 'no session')
  t.match(events.at(-1), { type: 'rate_limited', limit: 'password', scope: 'subject' })
  t.equal(events.filter((e) => e.type === 'login.failed').length, 3, 'the blocked attempt did not reach the password check')
  const bob = await attempt(gw, 'bob', 'bob-password')
  t.equal(bob.status, 200, 'another name signs in')
  t.match(bob.html, /name="decision"/, 'and sees the consent page')
})

t.test('successful sign-ins do not count', async (t) => {
  const gw = await gateway(t)
  for (let i = 0; i < 5; i++) t.equal((await attempt(gw, 'alice', SECRET)).status, 200, `sign-in ${i + 1}`)
})

t.test('rateLimits.passwordLogin.perUsername.requests 0 turns it off', async (t) => {
  const gw = await gateway(t, { rateLimits: { passwordLogin: { perUsername: { requests: 0 } } } })
  for (let i = 0; i < 4; i++) await attempt(gw, 'alice', `guess-${i}`)
  t.equal((await attempt(gw, 'alice', SECRET)).status, 200)
})

t.test('SEC-35: failures on one replica count on the other (Redis)', async (t) => {
  const redis = await redisForTests(t)
  if (!redis) return
  const store = { type: 'redis', redis: redis.storeConfig() }
  const a = await gateway(t, {}, store)
  const b = await gateway(t, {}, store)
  for (let i = 0; i < 3; i++) await attempt(i % 2 === 0 ? a : b, 'alice', `guess-${i}`)
  t.equal((await attempt(b, 'alice', SECRET)).status, 429, 'replica b refuses after failures on both')
  t.equal((await attempt(a, 'alice', SECRET)).status, 429, 'and so does replica a')
})

/** One attempt from `address` (the gateway trusts X-Forwarded-For here, as behind its ingress). */
async function attemptFrom(gw: TestGateway, address: string, username: string, password: string) {
  const browser = new WebBrowser()
  const headers = { 'x-forwarded-for': address }
  const page = await browser.get(authorizeUrl(gw), headers)
  const form = parseForm(page.html)
  return browser.post(`${gw.origin}${form.action}`, { ...form.fields, username, password }, headers)
}

t.test('per name and address: growing waits for the guesser; the person at another address is not slowed (issue 21)', async (t) => {
  const gw = await gateway(t, {
    trustProxy: true,
    rateLimits: { passwordLogin: { perUsernameAndAddress: { requests: 2, windowSeconds: 900 }, perUsername: { requests: 50, windowSeconds: 900 } } },
  })
  const stranger = '203.0.113.9'
  for (let i = 0; i < 2; i++) t.equal((await attemptFrom(gw, stranger, 'alice', `guess-${i}`)).status, 401, `free failure ${i + 1}`)
  t.equal((await attemptFrom(gw, stranger, 'alice', 'guess-2')).status, 401, 'the third failure is counted…')
  const held = await attemptFrom(gw, stranger, 'alice', SECRET)
  t.equal(held.status, 429, '…and then that name waits at that address, even with the right password')
  t.equal(held.headers.get('retry-after'), '2', 'for 2 s after the first failure over the limit')
  t.match(held.html, /Try again in 2 seconds/)
  await new Promise((r) => setTimeout(r, 2100))
  t.equal((await attemptFrom(gw, stranger, 'alice', 'guess-3')).status, 401, 'after the wait, one more guess')
  t.equal((await attemptFrom(gw, stranger, 'alice', 'guess-4')).headers.get('retry-after'), '4', 'and the wait doubles')
  const alice = await attemptFrom(gw, '198.51.100.7', 'alice', SECRET)
  t.equal(alice.status, 200, 'alice at her own address signs in: the stranger cannot keep her out')
  t.match(alice.html, /name="decision"/)
  t.equal((await attemptFrom(gw, stranger, 'bob', 'bob-password')).status, 200, 'another name from the stranger\'s address is not held')
})

