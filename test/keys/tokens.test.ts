/**
 * Access token verification against every forgery we could think of (JWT-03, MCPA-52,
 * MCPA-54, MCPA-57, RI-08). Each must be refused; only the genuine token passes.
 */
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { createHmac, createPublicKey, randomUUID } from 'node:crypto'
import { exportJWK, generateKeyPair, SignJWT, type CryptoKey, type JWK } from 'jose'
import t, { type Test } from 'tap'
import { loadKeystore } from '../../src/keys/keystore.js'
import { AccessTokenVerifier, mintAccessToken, TokenRejectedError } from '../../src/keys/tokens.js'
import { MemoryStore } from '../../src/store/memory.js'
import { rsaKeyPair } from '../fixtures/rsa-keys.js'

const ISSUER = 'https://gw.example.com'
const AUD = 'https://gw.example.com/mcp'

const store = new MemoryStore()
t.teardown(() => store.close())
const keystore = await loadKeystore([], store)
const verifier = AccessTokenVerifier.forKeystore(keystore, ISSUER, 5)
const claims = { sub: 'alice', clientId: 'client-1', audience: AUD, scopes: ['files:read'] }
const b64 = (v: object | string) => Buffer.from(typeof v === 'string' ? v : JSON.stringify(v)).toString('base64url')
const now = () => Math.floor(Date.now() / 1000)
const validPayload = () => ({
  iss: ISSUER,
  sub: 'alice',
  aud: AUD,
  client_id: 'client-1',
  scope: 'files:read',
  iat: now(),
  exp: now() + 300,
  jti: randomUUID(),
})
const signWith = (payload: object, header: object = { alg: 'ES256', typ: 'at+jwt', kid: keystore.active.kid }) =>
  new SignJWT(payload as Record<string, unknown>).setProtectedHeader(header as { alg: string }).sign(keystore.active.privateKey)

async function refusedFor(t: Test, verification: Promise<unknown>, reason: TokenRejectedError['reason'], what: string) {
  const err = await verification.then(() => undefined, (e: unknown) => e)
  t.ok(err instanceof TokenRejectedError, `${what}: refused`)
  t.equal((err as TokenRejectedError).reason, reason, `${what}: because ${reason}`)
}
const refused = (t: Test, token: string, reason: TokenRejectedError['reason'], what: string) =>
  refusedFor(t, verifier.verify(token), reason, what)

t.test('a genuine token verifies and exposes its claims', async (t) => {
  const token = await mintAccessToken(keystore, ISSUER, claims, 300)
  const v = await verifier.verify(token)
  t.equal(v.sub, 'alice')
  t.equal(v.clientId, 'client-1')
  t.same(v.audiences, [AUD])
  t.same([...v.scopes], ['files:read'])
  t.type(v.jti, 'string')
  t.same(keystore.jwks.keys.map((k) => k.d), [undefined], 'the JWKS holds no private part')
})

t.test('alg none is refused (JWT-03)', async (t) => {
  const token = `${b64({ alg: 'none', typ: 'at+jwt' })}.${b64(validPayload())}.`
  await refused(t, token, 'malformed', 'unsigned token')
})

t.test('a token signed by another key is refused', async (t) => {
  const other = await generateKeyPair('ES256')
  const token = await new SignJWT(validPayload())
    .setProtectedHeader({ alg: 'ES256', typ: 'at+jwt', kid: keystore.active.kid })
    .sign(other.privateKey)
  await refused(t, token, 'signature', 'foreign key with our kid')
})

t.test('HS256 signed with the public key as the secret is refused (key confusion)', async (t) => {
  const spki = createPublicKey({ key: keystore.active.publicJwk as never, format: 'jwk' }).export({ type: 'spki', format: 'pem' }) as string
  const head = b64({ alg: 'HS256', typ: 'at+jwt', kid: keystore.active.kid })
  const body = b64(validPayload())
  for (const secret of [spki, JSON.stringify(keystore.active.publicJwk)]) {
    const sig = createHmac('sha256', secret).update(`${head}.${body}`).digest('base64url')
    await refused(t, `${head}.${body}.${sig}`, 'malformed', 'HS256 forgery')
  }
})

t.test('an embedded jwk header cannot bring its own key', async (t) => {
  const attacker = await generateKeyPair('ES256')
  const jwk: JWK = await exportJWK(attacker.publicKey)
  const token = await new SignJWT(validPayload()).setProtectedHeader({ alg: 'ES256', typ: 'at+jwt', jwk }).sign(attacker.privateKey)
  await t.rejects(verifier.verify(token), TokenRejectedError)
})

t.test('time claims: expired and not-yet-valid tokens are refused (MCPA-54)', async (t) => {
  await refused(t, await signWith({ ...validPayload(), exp: now() - 60 }), 'expired', 'expired a minute ago')
  await refused(t, await signWith({ ...validPayload(), nbf: now() + 120 }), 'claims', 'not valid for two minutes')
  const withinLeeway = await signWith({ ...validPayload(), exp: now() - 2 })
  await t.resolves(verifier.verify(withinLeeway), 'a two-second-old expiry is within the five-second leeway')
})

t.test('wrong issuer is refused, compared exactly', async (t) => {
  await refused(t, await signWith({ ...validPayload(), iss: 'https://evil.example.com' }), 'claims', 'other issuer')
  await refused(t, await signWith({ ...validPayload(), iss: `${ISSUER}/` }), 'claims', 'trailing slash variant')
})

t.test('missing claims are refused', async (t) => {
  for (const claim of ['sub', 'exp', 'aud', 'iat', 'jti', 'client_id', 'iss']) {
    const p: Record<string, unknown> = validPayload()
    delete p[claim]
    await t.rejects(verifier.verify(await signWith(p)), TokenRejectedError, `without ${claim}`)
  }
  await refused(t, await signWith({ ...validPayload(), sub: '' }), 'claims', 'empty sub')
  await refused(t, await signWith({ ...validPayload(), client_id: 42 }), 'claims', 'numeric client_id')
})

t.test('typ confusion: an ID token or untyped JWT signed by the same key is not an access token (RFC 9068 §4)', async (t) => {
  await refused(t, await signWith(validPayload(), { alg: 'ES256', typ: 'JWT', kid: keystore.active.kid }), 'type', 'typ JWT')
  await refused(t, await signWith(validPayload(), { alg: 'ES256', kid: keystore.active.kid }), 'type', 'no typ')
  await t.resolves(
    verifier.verify(await signWith(validPayload(), { alg: 'ES256', typ: 'application/at+jwt', kid: keystore.active.kid })),
    'application/at+jwt is the same media type',
  )
})

t.test('garbage is refused without throwing anything else', async (t) => {
  for (const junk of ['', 'a', 'a.b', 'a.b.c', '....', `${b64('{')}.${b64('{')}.x`, 'x'.repeat(10000)]) {
    await t.rejects(verifier.verify(junk), TokenRejectedError, JSON.stringify(junk.slice(0, 20)))
  }
})

t.test('a verified token is served from the cache until it expires', async (t) => {
  const token = await mintAccessToken(keystore, ISSUER, claims, 60)
  const first = await verifier.verify(token)
  t.equal(await verifier.verify(token), first, 'the same object: no second verification')
  await refusedFor(t, verifier.verify(token, first.exp + 6), 'expired', 'past exp + leeway the cache refuses it')
})

t.test('the cache read without waiting: a token not verified yet is not vouched for, an expired or revoked one is refused (REV-01)', async (t) => {
  let revoked = false
  const checking = AccessTokenVerifier.forKeystore(keystore, ISSUER, 5, { isRevoked: (grant) => revoked && grant === 'grant-1' })
  const token = await mintAccessToken(keystore, ISSUER, { ...claims, grantId: 'grant-1' }, 60)
  t.equal(checking.verifyCached(token), undefined, 'never verified: the caller must verify in full')
  const forged = `${token.slice(0, -4)}AAAA`
  t.equal(checking.verifyCached(forged), undefined, 'a forgery is never taken from the cache')
  const verified = await checking.verify(token)
  t.equal(checking.verifyCached(token), verified)
  revoked = true
  t.throws(() => checking.verifyCached(token), new TokenRejectedError('revoked', 'the access token was revoked'), 'revoked after it was cached')
  revoked = false
  t.throws(() => checking.verifyCached(token, verified.exp + 6), new TokenRejectedError('expired', 'the access token has expired'))
  t.equal(checking.verifyCached(token), undefined, 'an expired token leaves the cache')
})

t.test('configured keys rotate: an old key still verifies, the active one signs', async (t) => {
  const { privateKey: oldKey } = await generateKeyPair('ES256', { extractable: true })
  const { privateKey: newKey } = await generateKeyPair('ES256', { extractable: true })
  const env = { OLD: JSON.stringify(await exportJWK(oldKey)), NEW: JSON.stringify(await exportJWK(newKey)) }
  const before = await loadKeystore([{ env: 'OLD', alg: 'ES256', active: true, kid: 'old' }], store, env)
  const tokenBefore = await mintAccessToken(before, ISSUER, claims, 300)
  const after = await loadKeystore(
    [
      { env: 'NEW', alg: 'ES256', active: true, kid: 'new' },
      { env: 'OLD', alg: 'ES256', active: false, kid: 'old' },
    ],
    store,
    env,
  )
  t.equal(after.active.kid, 'new')
  t.same(after.jwks.keys.map((k) => k.kid), ['new', 'old'])
  const v = AccessTokenVerifier.forKeystore(after, ISSUER, 5)
  await t.resolves(v.verify(tokenBefore), 'token signed before the rotation still verifies')
  await t.resolves(v.verify(await mintAccessToken(after, ISSUER, claims, 300)))
})

t.test('key loading errors name the source, never the material', async (t) => {
  await t.rejects(loadKeystore([{ env: 'K', alg: 'ES256', active: true }], store, { K: 'not a key SECRETVALUE' }), {
    name: 'KeyError',
    message: /environment variable K is not a ES256 private key/,
  })
  const err = await loadKeystore([{ env: 'K', alg: 'ES256', active: true }], store, { K: 'SECRETVALUE' }).catch((e: Error) => e)
  t.notMatch(String((err as Error).message), /SECRETVALUE/)
  const { publicKey } = await generateKeyPair('ES256', { extractable: true })
  await t.rejects(
    loadKeystore([{ env: 'K', alg: 'ES256', active: true }], store, { K: JSON.stringify(await exportJWK(publicKey)) }),
    { name: 'KeyError' },
    'a public key cannot sign',
  )
})

t.test('the development key is shared through the store: replicas agree', async (t) => {
  const shared = new MemoryStore()
  t.teardown(() => shared.close())
  const [a, b] = await Promise.all([loadKeystore([], shared), loadKeystore([], shared)])
  t.equal(a.active.kid, b.active.kid)
  t.ok(a.generated)
})

t.test('external issuer: keys come from its JWKS, refreshed when an unknown kid appears', async (t) => {
  const k1 = await rsaKeyPair()
  const k2 = await rsaKeyPair()
  const jwks = { keys: [{ ...(await exportJWK(k1.publicKey)), kid: 'k1', alg: 'RS256' }] }
  let fetches = 0
  const server = createServer((_req, res) => {
    fetches++
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(jwks))
  })
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  t.teardown(() => server.close())
  const issuer = 'https://idp.example.com/realms/x'
  const v = AccessTokenVerifier.forRemoteIssuer({
    issuer,
    jwksUri: `http://127.0.0.1:${(server.address() as AddressInfo).port}/certs`,
    algorithms: ['RS256'],
    tokenTypes: ['JWT'],
    clockToleranceSeconds: 5,
    jwksCacheSeconds: 600,
    jwksRefreshCooldownSeconds: 1,
  })
  const sign = (key: CryptoKey, kid: string, extra: object = {}) =>
    new SignJWT({ aud: AUD, ...extra })
      .setProtectedHeader({ alg: 'RS256', typ: 'JWT', kid })
      .setIssuer(issuer)
      .setSubject('bob')
      .setIssuedAt()
      .setExpirationTime('5m')
      .sign(key)
  const ok = await v.verify(await sign(k1.privateKey, 'k1', { scp: ['tickets'] }))
  t.same([...ok.scopes], ['tickets'], 'Entra-style scp is read')
  jwks.keys.push({ ...(await exportJWK(k2.publicKey)), kid: 'k2', alg: 'RS256' })
  await new Promise((r) => setTimeout(r, 1100)) // past the refetch cooldown
  await t.resolves(v.verify(await sign(k2.privateKey, 'k2')), 'a rotated-in key is picked up')
  t.equal(fetches, 2, 'one refetch for the unknown kid')
  const rogue = await rsaKeyPair()
  await t.rejects(v.verify(await sign(rogue.privateKey, 'k3')), TokenRejectedError)
  await refusedFor(
    t,
    v.verify(await new SignJWT({ aud: AUD }).setProtectedHeader({ alg: 'RS256', typ: 'at+jwt', kid: 'k1' }).setIssuer(issuer).setSubject('b').setExpirationTime('5m').sign(k1.privateKey)),
    'type',
    'typ outside the configured list',
  )
})
