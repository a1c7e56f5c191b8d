/**
 * Token revocation (RFC 7009) and introspection (RFC 7662): revoking a refresh token ends its
 * grant; a client can revoke only its own tokens; introspection is for confidential clients and
 * tells nothing about dead or foreign-signed tokens.
 */
import { generateKeyPair, SignJWT } from 'jose'
import { randomBytes } from 'node:crypto'
import t, { type Test } from 'tap'
import { USER, PUBLIC, OTHER_PUBLIC, BASIC, POST, NO_REFRESH, startHarness, basicAuth, claims, type Client } from '../helpers/token-harness.js'

const h = await startHarness(t)

async function expectDead(t: Test, client: Client, refreshToken: string, what: string) {
  const res = await h.refresh(t, client, refreshToken)
  t.equal(res.status, 400, `${what}: refused`)
  t.equal(res.body.error, 'invalid_grant', `${what}: invalid_grant`)
}

async function expectInactive(t: Test, token: string, what: string, extra: Record<string, string> = {}) {
  const res = await h.introspect(t, BASIC, token, extra)
  t.equal(res.status, 200, what)
  t.same(res.body, { active: false }, `${what}: just {"active": false} (INT-02)`)
}

// ── Revocation ──

t.test('REV-01 REV-02: revoking a refresh token answers 200 and ends every refresh token of its grant', async (t) => {
  const first = await h.tokens(t, PUBLIC)
  const second = await h.refresh(t, PUBLIC, first.refresh_token!)
  t.equal(second.status, 200)
  const res = await h.revoke(t, PUBLIC, second.body.refresh_token, { token_type_hint: 'refresh_token' })
  t.equal(res.status, 200)
  t.equal(res.body, undefined, 'an empty body')
  await expectDead(t, PUBLIC, second.body.refresh_token, 'the revoked token')
  await expectDead(t, PUBLIC, first.refresh_token!, 'its rotated predecessor')
  await expectInactive(t, second.body.refresh_token, 'the revoked token')
  const again = await h.revoke(t, PUBLIC, second.body.refresh_token)
  t.equal(again.status, 200, 'revoking it again is still 200 (REV-02)')
})

t.test('REV-01: confidential clients authenticate to revoke, each with its own method', async (t) => {
  for (const client of [BASIC, POST]) {
    const tokens = await h.tokens(t, client)
    const anonymous = await h.revoke(t, undefined, tokens.refresh_token!, { client_id: client.id })
    t.equal(anonymous.status, 401, `${client.id} without its secret`)
    t.equal(anonymous.body.error, 'invalid_client')
    const ok = await h.refresh(t, client, tokens.refresh_token!)
    t.equal(ok.status, 200, 'the refused revocation left the token alone')
    const revoked = await h.revoke(t, client, ok.body.refresh_token)
    t.equal(revoked.status, 200)
    await expectDead(t, client, ok.body.refresh_token, `${client.id}'s revoked token`)
  }
})

t.test('REV-01 REV-02: revoking another client\'s refresh token does nothing, and answers 200', async (t) => {
  const tokens = await h.tokens(t, PUBLIC)
  for (const other of [OTHER_PUBLIC, BASIC, POST]) {
    const res = await h.revoke(t, other, tokens.refresh_token!)
    t.equal(res.status, 200, other.id)
  }
  const res = await h.refresh(t, PUBLIC, tokens.refresh_token!)
  t.equal(res.status, 200, 'the owner\'s token still works')
})

t.test('REV-02: unknown tokens answer 200, whatever the hint', async (t) => {
  const tokens = await h.tokens(t, PUBLIC)
  for (const [what, token] of [
    ['garbage', 'garbage'],
    ['a random refresh-token-shaped value', randomBytes(32).toString('base64url')],
  ]) {
    for (const hint of [undefined, 'refresh_token', 'access_token']) {
      const res = await h.revoke(t, PUBLIC, token!, { token_type_hint: hint })
      t.equal(res.status, 200, `${what}, hint ${hint}`)
    }
  }
  const res = await h.refresh(t, PUBLIC, tokens.refresh_token!)
  t.equal(res.status, 200, 'the grant lives on')
})

t.test('REV-02, REV-03, §11.4 REV-01: revoking an access token (any hint) answers 200 and ends its grant', async (t) => {
  for (const hint of [undefined, 'refresh_token', 'access_token']) {
    const tokens = await h.tokens(t, PUBLIC)
    t.equal((await h.introspect(t, BASIC, tokens.access_token)).body.active, true, `hint ${hint}: active before`)
    const res = await h.revoke(t, PUBLIC, tokens.access_token, { token_type_hint: hint })
    t.equal(res.status, 200, `hint ${hint}`)
    await expectDead(t, PUBLIC, tokens.refresh_token!, `hint ${hint}: the grant's refresh token`)
    await expectInactive(t, tokens.access_token, `hint ${hint}: the access token itself`)
  }
  const other = await h.tokens(t, PUBLIC)
  const foreign = await h.revoke(t, OTHER_PUBLIC, other.access_token)
  t.equal(foreign.status, 200, "another client's access token: 200")
  const res = await h.refresh(t, PUBLIC, other.refresh_token!)
  t.equal(res.status, 200, '… and nothing revoked')
})

t.test('REV-01: a revocation without token is invalid_request; without client, invalid_client', async (t) => {
  const noToken = await h.post(t, '/oauth/revoke', {}, PUBLIC)
  t.equal(noToken.status, 400)
  t.equal(noToken.body.error, 'invalid_request')
  const noClient = await h.revoke(t, undefined, 'whatever')
  t.equal(noClient.status, 401)
  t.equal(noClient.body.error, 'invalid_client')
})

// ── Introspection ──

t.test('INT-01 INT-02: a confidential client introspects a valid access token', async (t) => {
  const tokens = await h.tokens(t, PUBLIC, { resource: h.resource(1), scope: 'mcp admin' })
  const exp = claims(tokens.access_token).exp
  for (const client of [BASIC, POST]) {
    const res = await h.introspect(t, client, tokens.access_token)
    t.equal(res.status, 200, client.id)
    t.match(res.body, {
      active: true,
      sub: USER.sub,
      scope: 'mcp admin',
      client_id: PUBLIC.id,
      iss: h.gw.config.issuer,
      exp,
      token_type: 'Bearer',
    })
    t.same([res.body.aud].flat(), [h.resource(1)], 'aud is the resource')
  }
})

t.test('INT-02: a confidential client introspects a refresh token', async (t) => {
  const tokens = await h.tokens(t, POST, { resource: h.resource(0), scope: 'mcp admin' })
  for (const hint of [undefined, 'refresh_token', 'access_token']) {
    const res = await h.introspect(t, BASIC, tokens.refresh_token!, { token_type_hint: hint })
    t.equal(res.status, 200)
    t.match(res.body, { active: true, sub: USER.sub, scope: 'mcp admin', client_id: POST.id }, `hint ${hint}`)
    t.same([res.body.aud].flat(), [h.resource(0)])
  }
})

t.test('RFC 7662 §2.1: a wrong token_type_hint does not hide an access token', async (t) => {
  const tokens = await h.tokens(t, PUBLIC)
  const res = await h.introspect(t, BASIC, tokens.access_token, { token_type_hint: 'refresh_token' })
  t.equal(res.status, 200)
  t.equal(res.body.active, true, 'the search extends past the hint')
})

t.test('INT-02: garbage, revoked, rotated, expired and foreign-signed tokens are inactive', async (t) => {
  await expectInactive(t, 'garbage', 'garbage')
  await expectInactive(t, randomBytes(32).toString('base64url'), 'a random refresh-token-shaped value')

  const revoked = await h.tokens(t, PUBLIC)
  t.equal((await h.revoke(t, PUBLIC, revoked.refresh_token!)).status, 200)
  await expectInactive(t, revoked.refresh_token!, 'a revoked refresh token')

  const rotated = await h.tokens(t, PUBLIC)
  t.equal((await h.refresh(t, PUBLIC, rotated.refresh_token!)).status, 200)
  await expectInactive(t, rotated.refresh_token!, 'a rotated refresh token')

  await expectInactive(t, await h.gw.mint({ ttlSeconds: -60 }), 'an expired access token')

  const attacker = await generateKeyPair('ES256')
  const forged = await new SignJWT({ client_id: PUBLIC.id, scope: 'mcp admin' })
    .setProtectedHeader({ alg: 'ES256', typ: 'at+jwt', kid: h.gw.gateway.keystore!.active.kid })
    .setIssuer(h.gw.config.issuer)
    .setSubject(USER.sub)
    .setAudience(h.resource(0))
    .setIssuedAt()
    .setJti(randomBytes(8).toString('hex'))
    .setExpirationTime('5m')
    .sign(attacker.privateKey)
  await expectInactive(t, forged, 'an access token signed by another key')
})

t.test('INT-01: public, unauthenticated and wrongly authenticated callers are refused with invalid_client', async (t) => {
  const tokens = await h.tokens(t, PUBLIC)
  for (const client of [PUBLIC, OTHER_PUBLIC, NO_REFRESH]) {
    const res = await h.introspect(t, client, tokens.access_token)
    t.equal(res.status, 401, client.id)
    t.equal(res.body.error, 'invalid_client', client.id)
    t.notOk('active' in res.body, 'nothing about the token')
  }
  const anonymous = await h.introspect(t, undefined, tokens.access_token)
  t.equal(anonymous.body.error, 'invalid_client')
  const wrongSecret = { authorization: basicAuth(BASIC.id, POST.secret!) }
  const wrong = await h.post(t, '/oauth/introspect', { token: tokens.access_token }, undefined, wrongSecret)
  t.equal(wrong.status, 401)
  t.equal(wrong.body.error, 'invalid_client')
  t.match(wrong.headers.get('www-authenticate'), /^Basic /)
  const downgrade = await h.introspect(t, undefined, tokens.access_token, { client_id: BASIC.id })
  t.equal(downgrade.body.error, 'invalid_client', 'a confidential client id without its secret')
})

t.test('INT-01: an introspection without token is invalid_request', async (t) => {
  const res = await h.post(t, '/oauth/introspect', {}, BASIC)
  t.equal(res.status, 400)
  t.equal(res.body.error, 'invalid_request')
})

t.test('MCPA-62: no code, verifier, token or secret in the log', async (t) => {
  h.checkLog(t)
})
