/**
 * The token endpoint, refresh_token grant (OAuth 2.1 §4.3): rotation with reuse detection and
 * a grace window (MCPA-64, OQ-11, O21-10, REF-01, REF-03, REF-04; the rest of REF-* in
 * refresh-grace.test.ts), scope narrowing only, client binding, the resource
 * binding (RI-07), and clients that may not refresh at all.
 */
import { setTimeout as sleep } from 'node:timers/promises'
import { randomBytes } from 'node:crypto'
import t, { type Test } from 'tap'
import { USER, PUBLIC, OTHER_PUBLIC, BASIC, POST, NO_REFRESH, startHarness, claims, advanceStoreClock, type Client } from '../helpers/token-harness.js'

const h = await startHarness(t)

async function expectDead(t: Test, client: Client, refreshToken: string, what: string) {
  const res = await h.refresh(t, client, refreshToken)
  t.equal(res.status, 400, `${what}: refused`)
  t.equal(res.body.error, 'invalid_grant', `${what}: invalid_grant`)
  t.notOk(res.body.access_token)
}

t.test('MCPA-64 O21-10 REF-04: each refresh rotates the (public client\'s) refresh token; the access token keeps sub, client, aud and scope', async (t) => {
  const first = await h.tokens(t, PUBLIC, { resource: h.resource(1), scope: 'mcp admin' })
  let refreshToken = first.refresh_token!
  for (let round = 1; round <= 3; round++) {
    const res = await h.refresh(t, PUBLIC, refreshToken)
    t.equal(res.status, 200, `round ${round}`)
    t.equal(res.headers.get('pragma'), 'no-cache')
    t.match(res.body, {
      token_type: 'Bearer',
      expires_in: 300,
      scope: 'mcp admin',
      access_token: String,
      refresh_token: String,
    })
    t.not(res.body.refresh_token, refreshToken, 'a new refresh token')
    t.not(res.body.access_token, first.access_token, 'a new access token')
    t.match(claims(res.body.access_token), { sub: USER.sub, client_id: PUBLIC.id, aud: h.resource(1), scope: 'mcp admin' })
    refreshToken = res.body.refresh_token
  }
})

t.test('O21-10 RFC 6749 §6: a refresh may narrow the scope; that access token carries the narrowed set', async (t) => {
  const first = await h.tokens(t, PUBLIC, { scope: 'mcp admin' })
  const res = await h.refresh(t, PUBLIC, first.refresh_token!, { scope: 'mcp' })
  t.equal(res.status, 200)
  t.equal(res.body.scope, 'mcp')
  t.equal(claims(res.body.access_token).scope, 'mcp')
  t.equal(claims(res.body.access_token).aud, h.resource(0))
})

t.test('O21-10 OAuth 2.1 §4.3.3: the refresh token from a narrowing refresh keeps the original scope', async (t) => {
  const first = await h.tokens(t, PUBLIC, { scope: 'mcp admin' })
  const narrowed = await h.refresh(t, PUBLIC, first.refresh_token!, { scope: 'mcp' })
  t.equal(narrowed.status, 200)
  const seen = await h.introspect(t, BASIC, narrowed.body.refresh_token)
  t.equal(seen.body.scope, 'mcp admin', 'the new refresh token has the scope of the one presented')
  const next = await h.refresh(t, PUBLIC, narrowed.body.refresh_token)
  t.equal(next.status, 200)
  t.equal(next.body.scope, 'mcp admin', 'scope omitted → the originally granted scope (RFC 6749 §6)')
})

t.test('O21-10 RFC 6749 §6: widening the scope is invalid_scope, and the presented token still works', async (t) => {
  const first = await h.tokens(t, PUBLIC, { scope: 'mcp' })
  t.equal(first.scope, 'mcp')
  for (const scope of ['mcp admin', 'admin', 'mcp unknown-scope', 'offline_access mcp admin']) {
    const res = await h.refresh(t, PUBLIC, first.refresh_token!, { scope })
    t.equal(res.status, 400, scope)
    t.equal(res.body.error, 'invalid_scope', scope)
    t.notOk(res.body.access_token)
  }
  const res = await h.refresh(t, PUBLIC, first.refresh_token!)
  t.equal(res.status, 200, 'the refused widenings did not consume the token')
  t.equal(res.body.scope, 'mcp')
})

t.test('REF-01 MCPA-64 OQ-11: a rotated token reused within the grace window gets the newest token, and the grant lives on', async (t) => {
  const first = await h.tokens(t, PUBLIC)
  const second = await h.refresh(t, PUBLIC, first.refresh_token!)
  t.equal(second.status, 200)
  const retry = await h.refresh(t, PUBLIC, first.refresh_token!)
  t.equal(retry.status, 200, 'the rotated token within the grace window is answered')
  t.equal(retry.body.refresh_token, second.body.refresh_token, 'with the grant\'s current refresh token, not a new one')
  t.not(retry.body.access_token, second.body.access_token, 'and a fresh access token')
  const third = await h.refresh(t, PUBLIC, second.body.refresh_token)
  t.equal(third.status, 200, 'the grant survives a reuse inside the grace window')
})

t.test('MCPA-64 OQ-11 O21-10: a rotated token reused after the grace window revokes the whole grant', async (t) => {
  const first = await h.tokens(t, PUBLIC)
  const second = await h.refresh(t, PUBLIC, first.refresh_token!)
  t.equal(second.status, 200)
  await sleep(1_100) // refreshReuseGraceSeconds: 1
  await expectDead(t, PUBLIC, first.refresh_token!, 'the rotated token after the grace window')
  await expectDead(t, PUBLIC, second.body.refresh_token, 'the newest token of the grant')
  const seen = await h.introspect(t, BASIC, second.body.refresh_token)
  t.same(seen.body, { active: false })
})

t.test('REF-03 OQ-11: of concurrent refreshes with one token every one gets the same working pair, and the grant survives', async (t) => {
  const first = await h.tokens(t, PUBLIC)
  const answers = await Promise.all(Array.from({ length: 4 }, () => h.refresh(t, PUBLIC, first.refresh_token!)))
  t.same(answers.map((a) => a.status), [200, 200, 200, 200], 'one rotation, three grace answers')
  t.equal(new Set(answers.map((a) => a.body.refresh_token)).size, 1, 'all hold the one current refresh token')
  const next = await h.refresh(t, PUBLIC, answers[0]!.body.refresh_token)
  t.equal(next.status, 200, 'which works: a race inside the grace window is not a theft')
})

t.test('OQ-12 REF-04: a client without refresh_token in grantTypes gets no refresh token and cannot use the grant', async (t) => {
  const tokens = await h.tokens(t, NO_REFRESH, { scope: 'mcp admin offline_access' })
  t.notOk('refresh_token' in tokens, 'no refresh_token, even with offline_access asked for')
  t.equal(tokens.scope, 'mcp admin')
  const someoneElses = await h.tokens(t, PUBLIC)
  for (const token of ['anything', someoneElses.refresh_token!]) {
    const res = await h.refresh(t, NO_REFRESH, token)
    t.equal(res.status, 400)
    t.equal(res.body.error, 'unauthorized_client')
  }
})

t.test('O21-10 BCP-06: a refresh token presented by another client is refused and its grant revoked', async (t) => {
  for (const [owner, thief] of [
    [PUBLIC, OTHER_PUBLIC],
    [POST, BASIC],
    [BASIC, PUBLIC],
  ] as const) {
    const tokens = await h.tokens(t, owner)
    const stolen = await h.refresh(t, thief, tokens.refresh_token!)
    t.equal(stolen.status, 400, `${thief.id} with ${owner.id}'s token`)
    t.equal(stolen.body.error, 'invalid_grant')
    t.notOk(stolen.body.access_token)
    await expectDead(t, owner, tokens.refresh_token!, `${owner.id}'s own token afterwards`)
  }
})

t.test('RI-07: a refresh naming the grant\'s resource (any case, trailing slash) is accepted; another is invalid_target', async (t) => {
  const tokens = await h.tokens(t, PUBLIC, { resource: h.resource(1) })
  let refreshToken = tokens.refresh_token!
  for (const resource of [h.resource(1), h.resource(1).replace('localhost', 'LOCALHOST'), `${h.resource(1)}/`]) {
    const res = await h.refresh(t, PUBLIC, refreshToken, { resource })
    t.equal(res.status, 200, resource)
    t.equal(claims(res.body.access_token).aud, h.resource(1))
    refreshToken = res.body.refresh_token
  }
  const other = await h.refresh(t, PUBLIC, refreshToken, { resource: h.resource(0) })
  t.equal(other.status, 400)
  t.equal(other.body.error, 'invalid_target')
  t.notOk(other.body.access_token)
})

t.test('RI-07: a refresh refused with invalid_target leaves the presented token working', async (t) => {
  for (const resource of [`${h.gw.config.publicUrl}/r1/mcp`, 'https://elsewhere.example/mcp']) {
    const tokens = await h.tokens(t, PUBLIC, { resource: h.resource(0) })
    const refused = await h.refresh(t, PUBLIC, tokens.refresh_token!, { resource })
    t.equal(refused.body.error, 'invalid_target', resource)
    const retry = await h.refresh(t, PUBLIC, tokens.refresh_token!)
    t.equal(retry.status, 200, `${resource}: the token still works`)
  }
  // After the grace window the lost rotation even reads as theft and revokes the grant.
  const tokens = await h.tokens(t, PUBLIC, { resource: h.resource(0) })
  await h.refresh(t, PUBLIC, tokens.refresh_token!, { resource: h.resource(1) })
  await sleep(1_100)
  const late = await h.refresh(t, PUBLIC, tokens.refresh_token!)
  t.equal(late.status, 200, 'a refused request never revokes the grant')
})

t.test('RFC 6749 §6: a missing refresh_token is invalid_request, an unknown one invalid_grant', async (t) => {
  const missing = await h.token(t, { grant_type: 'refresh_token' }, PUBLIC)
  t.equal(missing.status, 400)
  t.equal(missing.body.error, 'invalid_request')
  for (const token of ['garbage', randomBytes(32).toString('base64url'), (await h.tokens(t, PUBLIC)).access_token]) {
    const res = await h.refresh(t, PUBLIC, token)
    t.equal(res.status, 400)
    t.equal(res.body.error, 'invalid_grant', 'garbage, a random token or an access token')
  }
})

t.test('a refresh token lives refreshTokenTtlSeconds from its own issue, not from the grant\'s start', async (t) => {
  const short = await startHarness(t, { refreshTokenTtlSeconds: 60 })
  const first = await short.tokens(t, PUBLIC)
  advanceStoreClock(40_000)
  const second = await short.refresh(t, PUBLIC, first.refresh_token!)
  t.equal(second.status, 200, '40 s in: rotated')
  advanceStoreClock(30_000)
  // The token presented is 30 s old, its TTL 60 s; only the grant (stored once, never extended) is 70 s old.
  const third = await short.refresh(t, PUBLIC, second.body.refresh_token)
  t.equal(third.status, 200, 'a 30 s old refresh token with a 60 s lifetime works')
  short.checkLog(t)
})

t.test('MCPA-62: no code, verifier, token or secret in the log', async (t) => {
  h.checkLog(t)
})
