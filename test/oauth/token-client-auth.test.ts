/**
 * Client authentication at the token endpoint (RFC 6749 §2.3, §5.2; OAuth 2.1 §2.4): each
 * client exactly the way it registered, one method per request, no downgrade to `none`, and
 * 401 + WWW-Authenticate: Basic when a Basic attempt fails.
 */
import t, { type Test } from 'tap'
import { PUBLIC, BASIC, POST, SPECIAL, startHarness, basicAuth, formEncode, claims, type Answer, type Code } from '../helpers/token-harness.js'

const h = await startHarness(t)

/** The code exchange with a hand-made Authorization header instead of the client's own credentials. */
function exchangeWithHeader(t: Test, c: Code, authorization: string): Promise<Answer> {
  const fields = { grant_type: 'authorization_code', code: c.code, code_verifier: c.verifier, redirect_uri: c.redirectUri }
  return h.post(t, '/oauth/token', fields, undefined, { authorization })
}

function expectInvalidClient(t: Test, res: Answer, what: string, basicAttempted: boolean) {
  t.equal(res.status, 401, `${what}: 401`)
  t.equal(res.body?.error, 'invalid_client', `${what}: invalid_client`)
  t.notOk(res.body?.access_token, `${what}: no token`)
  if (basicAttempted) {
    t.match(res.headers.get('www-authenticate'), /^Basic realm="[^"]+"/, `${what}: WWW-Authenticate: Basic (RFC 6749 §5.2)`)
  }
}

t.test('RFC 6749 §2.3.1: client_secret_basic and client_secret_post clients redeem their codes', async (t) => {
  for (const client of [BASIC, POST]) {
    const res = await h.exchange(t, client, await h.code(client))
    t.equal(res.status, 200, client.id)
    t.equal(claims(res.body.access_token).client_id, client.id)
    t.ok(res.body.refresh_token)
  }
})

t.test('RFC 6749 §5.2: a wrong secret over Basic is 401 invalid_client with WWW-Authenticate: Basic; the code survives', async (t) => {
  const c = await h.code(BASIC)
  for (const [what, authorization] of [
    ['wrong secret', basicAuth(BASIC.id, 'not-the-secret-0123456789abcdefghijkl')],
    ['secret with one character more', basicAuth(BASIC.id, `${BASIC.secret}x`)],
    ['secret truncated', basicAuth(BASIC.id, BASIC.secret!.slice(0, -1))],
    ['empty secret', basicAuth(BASIC.id, '')],
    ['another client\'s secret', basicAuth(BASIC.id, POST.secret!)],
    ['unknown client id', basicAuth('nobody', BASIC.secret!)],
  ]) {
    const res = await exchangeWithHeader(t, c, authorization!)
    expectInvalidClient(t, res, what!, true)
  }
  const res = await h.exchange(t, BASIC, c)
  t.equal(res.status, 200, 'failed client authentication did not spend the code')
})

t.test('SEC-30 OAuth 2.1 §2.4: a confidential client sending only its client_id (downgrade to none) is invalid_client', async (t) => {
  for (const client of [BASIC, POST]) {
    const c = await h.code(client)
    const res = await h.exchange(t, undefined, c, { client_id: client.id })
    expectInvalidClient(t, res, client.id, false)
    const ok = await h.exchange(t, client, c)
    t.equal(ok.status, 200, `${client.id}: the code still works with real authentication`)
  }
})

t.test('SEC-30: a confidential client refreshing without its secret is invalid_client, and its refresh token survives', async (t) => {
  const tokens = await h.tokens(t, BASIC)
  const res = await h.refresh(t, undefined, tokens.refresh_token!, { client_id: BASIC.id })
  expectInvalidClient(t, res, 'refresh with client_id only', false)
  const ok = await h.refresh(t, BASIC, tokens.refresh_token!)
  t.equal(ok.status, 200)
})

t.test('OAuth 2.1 §2.4: a confidential client using the other secret method is invalid_client', async (t) => {
  const asPost = { client_id: BASIC.id, client_secret: BASIC.secret }
  const basicAsPost = await h.exchange(t, undefined, await h.code(BASIC), asPost)
  expectInvalidClient(t, basicAsPost, 'client_secret_basic client using client_secret_post', false)
  const c = await h.code(POST)
  const postAsBasic = await exchangeWithHeader(t, c, basicAuth(POST.id, POST.secret!))
  expectInvalidClient(t, postAsBasic, 'client_secret_post client using Basic', true)
})

t.test('OAuth 2.1 §2.4: a public client presenting a secret is invalid_client', async (t) => {
  const c = await h.code(PUBLIC)
  const secret = 'a-secret-a-public-client-does-not-have'
  const viaPost = await h.exchange(t, undefined, c, { client_id: PUBLIC.id, client_secret: secret })
  expectInvalidClient(t, viaPost, 'client_secret in the body', false)
  const viaBasic = await exchangeWithHeader(t, c, basicAuth(PUBLIC.id, secret))
  expectInvalidClient(t, viaBasic, 'Basic', true)
  const ok = await h.exchange(t, PUBLIC, c)
  t.equal(ok.status, 200, 'the public client, authenticating as registered, still redeems the code')
})

t.test('RFC 6749 §2.3: Basic and client_secret_post together (or Basic with a different body client_id) is invalid_request', async (t) => {
  const c = await h.code(BASIC)
  const both = await h.exchange(t, BASIC, c, { client_secret: BASIC.secret })
  t.equal(both.status, 400)
  t.equal(both.body.error, 'invalid_request')
  const mismatch = await h.exchange(t, BASIC, c, { client_id: POST.id })
  t.equal(mismatch.status, 400)
  t.equal(mismatch.body.error, 'invalid_request')
  const sameId = await h.exchange(t, BASIC, c, { client_id: BASIC.id })
  t.equal(sameId.status, 200, 'Basic with the same client_id repeated in the body is one method, and accepted')
})

t.test('RFC 6749 §2.3: no client identification at all, or an unknown client_id, is invalid_client', async (t) => {
  const c = await h.code(PUBLIC)
  expectInvalidClient(t, await h.exchange(t, undefined, c), 'no client_id', false)
  expectInvalidClient(t, await h.exchange(t, undefined, c, { client_id: 'nobody' }), 'unknown client_id', false)
  const withSecret = await h.exchange(t, undefined, c, { client_id: 'nobody', client_secret: POST.secret })
  expectInvalidClient(t, withSecret, 'unknown client_id with a secret', false)
})

t.test('RFC 6749 §2.3.1: a Basic secret with special characters works when form-urlencoded (and with %20 for space)', async (t) => {
  const encoders: [string, (s: string) => string][] = [
    ['application/x-www-form-urlencoded (space as +)', formEncode],
    ['percent-encoding (space as %20)', encodeURIComponent],
  ]
  for (const [how, encode] of encoders) {
    const c = await h.code(SPECIAL)
    const res = await exchangeWithHeader(t, c, basicAuth(SPECIAL.id, SPECIAL.secret!, encode))
    t.equal(res.status, 200, how)
    t.equal(claims(res.body.access_token).client_id, SPECIAL.id)
  }
  // Encoded, a '+' in the secret is %2B; left raw, it would decode as a space and fail.
  const c = await h.code(SPECIAL)
  const plusAsSpace = basicAuth(SPECIAL.id, SPECIAL.secret!, (s) => formEncode(s).replace(/%2B/g, '+'))
  expectInvalidClient(t, await exchangeWithHeader(t, c, plusAsSpace), '+ left unencoded', true)
})

t.test('RFC 6749 §5.2: malformed Basic credentials are 401 invalid_client with WWW-Authenticate: Basic', async (t) => {
  const c = await h.code(BASIC)
  for (const [what, authorization] of [
    ['no colon', `Basic ${Buffer.from(BASIC.id).toString('base64')}`],
    ['bad percent-encoding (a raw %)', basicAuth(SPECIAL.id, SPECIAL.secret!, (s) => s)],
  ] as const) {
    const res = await exchangeWithHeader(t, c, authorization)
    t.equal(res.status, 401, what)
    t.equal(res.body.error, 'invalid_client', what)
    t.match(res.headers.get('www-authenticate'), /^Basic /, `${what}: WWW-Authenticate: Basic`)
  }
})

t.test('MCPA-62: no code, verifier, token or secret in the log', async (t) => {
  h.checkLog(t)
})
