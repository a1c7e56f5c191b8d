/**
 * The token endpoint, authorization_code grant (OAuth 2.1 §4.1.3): PKCE, the code's bindings
 * (client, redirect_uri, resource), single use with replay revocation, expiry, and the
 * request-level refusals (repeated parameters, unsupported grant types).
 */
import { randomBytes } from 'node:crypto'
import t from 'tap'
import { USER, REGISTERED_REDIRECT, REDIRECT, PUBLIC, OTHER_PUBLIC, BASIC, POST, startHarness, pkceVerifier, claims, advanceStoreClock } from '../helpers/token-harness.js'

const h = await startHarness(t)

t.test('O21-07 MCPA-67 RI-05: a code with its verifier yields tokens bound to user, client, resource and scope', async (t) => {
  const c = await h.code(PUBLIC, { resource: h.resource(1), scope: 'mcp admin' })
  // O21-11: unknown parameters are ignored.
  const res = await h.exchange(t, PUBLIC, c, { unknown_parameter: 'ignored' })
  t.equal(res.status, 200)
  t.equal(res.headers.get('pragma'), 'no-cache')
  t.match(res.headers.get('content-type'), /^application\/json/)
  t.match(res.body, {
    token_type: 'Bearer',
    expires_in: 300,
    scope: 'mcp admin',
    access_token: String,
    refresh_token: String,
  })
  const header = JSON.parse(Buffer.from(res.body.access_token.split('.')[0], 'base64url').toString())
  t.equal(header.typ, 'at+jwt')
  t.match(claims(res.body.access_token), {
    iss: h.gw.config.issuer,
    sub: USER.sub,
    aud: h.resource(1),
    client_id: PUBLIC.id,
    scope: 'mcp admin',
  })
})

t.test('O21-07 BCP-03: a wrong code_verifier is invalid_grant, and the code is burned', async (t) => {
  const c = await h.code(PUBLIC)
  const wrong = await h.exchange(t, PUBLIC, c, { code_verifier: pkceVerifier() })
  t.equal(wrong.status, 400)
  t.equal(wrong.body.error, 'invalid_grant')
  const retry = await h.exchange(t, PUBLIC, c)
  t.equal(retry.status, 400, 'the right verifier no longer helps')
  t.equal(retry.body.error, 'invalid_grant')
})

t.test('O21-07 RFC 7636 §4.1: a verifier shorter than 43 characters is refused even when it matches the challenge', async (t) => {
  const short = randomBytes(32).toString('base64url').slice(0, 42)
  const c = await h.code(PUBLIC, { verifier: short })
  const res = await h.exchange(t, PUBLIC, c)
  t.equal(res.status, 400)
  t.equal(res.body.error, 'invalid_grant')
})

t.test('O21-07 O21-11: a missing or empty code_verifier is invalid_request', async (t) => {
  const c = await h.code(PUBLIC)
  for (const verifier of [undefined, '']) {
    const res = await h.exchange(t, PUBLIC, c, { code_verifier: verifier })
    t.equal(res.status, 400)
    t.equal(res.body.error, 'invalid_request', `code_verifier ${verifier === undefined ? 'absent' : 'empty'}`)
    t.notOk(res.body.access_token)
  }
})

t.test('O21-12: a redirect_uri other than the authorization request\'s is invalid_grant', async (t) => {
  for (const other of [
    'http://127.0.0.1:43211/callback',
    'http://127.0.0.1:43210/callback/',
    'http://localhost:43210/callback',
    REGISTERED_REDIRECT,
  ]) {
    const c = await h.code(PUBLIC)
    const res = await h.exchange(t, PUBLIC, c, { redirect_uri: other })
    t.equal(res.status, 400, other)
    t.equal(res.body.error, 'invalid_grant', other)
  }
})

t.test('O21-12 RFC 6749 §4.1.3: redirect_uri missing although the authorization request carried one is invalid_grant', async (t) => {
  const c = await h.code(PUBLIC)
  const res = await h.exchange(t, PUBLIC, c, { redirect_uri: undefined })
  t.equal(res.status, 400)
  t.equal(res.body.error, 'invalid_grant')
})

t.test('O21-12 RFC 6749 §4.1.3: no redirect_uri at /authorize (one registered URI) → none needed at the token endpoint', async (t) => {
  const c = await h.code(PUBLIC, { redirectUri: null })
  t.equal(c.redirectUri, undefined)
  const res = await h.exchange(t, PUBLIC, c)
  t.same(
    { status: res.status, error: res.body.error },
    { status: 200, error: undefined },
    'the code is redeemed without redirect_uri'
  )
})

t.test('O21-06 O21-07: a code issued to one client and redeemed by another is invalid_grant, and burned', async (t) => {
  for (const thief of [OTHER_PUBLIC, BASIC]) {
    const c = await h.code(PUBLIC)
    const stolen = await h.exchange(t, thief, c)
    t.equal(stolen.status, 400, thief.id)
    t.equal(stolen.body.error, 'invalid_grant', thief.id)
    t.notOk(stolen.body.access_token)
    const owner = await h.exchange(t, PUBLIC, c)
    t.equal(owner.body.error, 'invalid_grant', 'the code is spent once presented, even by the wrong client')
  }
  // And the other way round: a confidential client's code is useless to a public client.
  const c = await h.code(POST)
  const res = await h.exchange(t, PUBLIC, c)
  t.equal(res.body.error, 'invalid_grant')
})

t.test('O21-08: a replayed code is invalid_grant and revokes the grant it created', async (t) => {
  const c = await h.code(PUBLIC)
  const first = await h.exchange(t, PUBLIC, c)
  t.equal(first.status, 200)
  const replay = await h.exchange(t, PUBLIC, c)
  t.equal(replay.status, 400)
  t.equal(replay.body.error, 'invalid_grant')
  t.notOk(replay.body.access_token)
  const refreshed = await h.refresh(t, PUBLIC, first.body.refresh_token)
  t.equal(refreshed.status, 400, 'the refresh token of the first redemption is dead')
  t.equal(refreshed.body.error, 'invalid_grant')
  const seen = await h.introspect(t, BASIC, first.body.refresh_token)
  t.same(seen.body, { active: false })
})

t.test('O21-08: a replay by another client without the verifier does not revoke the grant', async (t) => {
  const c = await h.code(PUBLIC)
  const first = await h.exchange(t, PUBLIC, c)
  t.equal(first.status, 200)
  for (const [who, client, verifier] of [
    ['another client', OTHER_PUBLIC, pkceVerifier()],
    ['the client itself with a wrong verifier', PUBLIC, pkceVerifier()],
  ] as const) {
    const replay = await h.exchange(t, client, { ...c, verifier })
    t.equal(replay.body.error, 'invalid_grant', who)
  }
  const refreshed = await h.refresh(t, PUBLIC, first.body.refresh_token)
  t.same(
    { status: refreshed.status, error: refreshed.body.error },
    { status: 200, error: undefined },
    'invalid replays leave the legitimate grant alone'
  )
})

t.test('RI-07 RI-04: a resource at the token endpoint naming another resource is invalid_target', async (t) => {
  for (const resource of [
    h.resource(1),
    `${h.gw.config.publicUrl}/other`,
    'https://elsewhere.example/mcp',
    `${h.resource(0)}#frag`,
    'not a uri',
  ]) {
    const c = await h.code(PUBLIC, { resource: h.resource(0) })
    const res = await h.exchange(t, PUBLIC, c, { resource })
    t.equal(res.status, 400, resource)
    t.equal(res.body.error, 'invalid_target', resource)
    t.notOk(res.body.access_token)
    const retry = await h.exchange(t, PUBLIC, c, { resource: h.resource(0) })
    t.equal(retry.status, 200, `${resource}: the refused request did not burn the code`)
  }
})

t.test('RI-07 MCPA-49 MCPA-50: the same resource with upper-case scheme and host or a trailing slash is accepted', async (t) => {
  const canonical = h.resource(1)
  const url = new URL(canonical)
  const variants = [
    canonical,
    canonical.replace('http://localhost', 'http://LOCALHOST'),
    canonical.replace('http://localhost', 'HTTP://LocalHost'),
    `${canonical}/`,
    `${url.protocol.toUpperCase()}//${url.host.toUpperCase()}${url.pathname}/`,
  ]
  for (const resource of variants) {
    const c = await h.code(PUBLIC, { resource: h.resource(1) })
    const res = await h.exchange(t, PUBLIC, c, { resource })
    t.equal(res.status, 200, resource)
    t.equal(claims(res.body.access_token).aud, canonical, `${resource}: aud is the canonical URI`)
  }
})

t.test('O21-11: a repeated parameter is invalid_request, refused before the code is touched', async (t) => {
  const c = await h.code(PUBLIC)
  const base: [string, string][] = [
    ['grant_type', 'authorization_code'],
    ['code_verifier', c.verifier],
    ['redirect_uri', REDIRECT],
  ]
  for (const repeated of [
    [...base, ['code', c.code], ['code', c.code], ['client_id', PUBLIC.id]],
    [...base, ['code', c.code], ['client_id', PUBLIC.id], ['client_id', PUBLIC.id]],
    [...base, ['code', c.code], ['client_id', PUBLIC.id], ['grant_type', 'authorization_code']],
  ] as [string, string][][]) {
    const res = await h.token(t, repeated)
    t.equal(res.status, 400)
    t.equal(res.body.error, 'invalid_request')
  }
  const res = await h.exchange(t, PUBLIC, c)
  t.equal(res.status, 200, 'the malformed requests did not spend the code')
})

t.test('O21-11: an unknown grant_type is unsupported_grant_type; none at all is invalid_request', async (t) => {
  for (const grantType of [
    'implicit',
    'token',
    'urn:ietf:params:oauth:grant-type:device_code',
    'urn:ietf:params:oauth:grant-type:jwt-bearer',
    'AUTHORIZATION_CODE',
  ]) {
    const res = await h.token(t, { grant_type: grantType }, PUBLIC)
    t.equal(res.status, 400, grantType)
    t.equal(res.body.error, 'unsupported_grant_type', grantType)
  }
  const res = await h.token(t, { code: 'x' }, PUBLIC)
  t.equal(res.status, 400)
  t.equal(res.body.error, 'invalid_request')
  // Supported, but never for a public client (CC-01, RFC 6749 §5.2 unauthorized_client).
  for (const client of [PUBLIC, BASIC]) {
    const machine = await h.token(t, { grant_type: 'client_credentials' }, client)
    t.equal(machine.status, 400, `client_credentials for ${client.id}`)
    t.equal(machine.body.error, 'unauthorized_client', `client_credentials for ${client.id}: not registered for it`)
  }
})

t.test('BCP-09 O21-13: the password grant is unsupported_grant_type, for public and confidential clients', async (t) => {
  for (const client of [PUBLIC, BASIC, POST]) {
    const fields = { grant_type: 'password', username: USER.username, password: USER.password, scope: 'mcp' }
    const res = await h.token(t, fields, client)
    t.equal(res.status, 400, client.id)
    t.equal(res.body.error, 'unsupported_grant_type', client.id)
    t.notOk(res.body.access_token)
  }
})

t.test('O21-11: the token endpoint answers POST only', async (t) => {
  const res = await fetch(`${h.gw.origin}/oauth/token?grant_type=authorization_code`)
  t.not(res.status, 200)
  t.notMatch(await res.text(), /access_token/)
})

t.test('O21-06: a code expires after codeTtlSeconds (10 s here)', async (t) => {
  const early = await h.code(PUBLIC)
  const late = await h.code(PUBLIC)
  advanceStoreClock(9_000)
  const ok = await h.exchange(t, PUBLIC, early)
  t.equal(ok.status, 200, '9 s old: still valid')
  advanceStoreClock(2_000)
  const expired = await h.exchange(t, PUBLIC, late)
  t.equal(expired.status, 400, '11 s old: expired')
  t.equal(expired.body.error, 'invalid_grant')
})

t.test('MCPA-62: no code, verifier, token or secret in the log', async (t) => {
  h.checkLog(t)
})
