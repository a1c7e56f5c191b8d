/**
 * private_key_jwt for metadata-document clients, end to end (RFC 7523, CIMD-38, SEC-22,
 * SEC-30..34, SEC-14, SEC-23, ASM-04, REV-04, MCPA-34). A `gatehouse serve` child trusts the
 * loopback https document servers' test CA (NODE_EXTRA_CA_CERTS); documents and JWKS are served
 * there, and assertions are signed with jose as a client would. ChatGPT's document shape (IOP):
 * private_key_jwt with a jwks_uri and an https redirect URI. The log detail of each refusal is
 * checked to name the check that failed; the answer is always 401 invalid_client, never a 500.
 */
import { createHash, randomBytes } from 'node:crypto'
import { setTimeout as sleep } from 'node:timers/promises'
import t, { type Test } from 'tap'
import { exportJWK, generateKeyPair, SignJWT, UnsecuredJWT, type CryptoKey, type JWK } from 'jose'
import { auth } from '@modelcontextprotocol/sdk/client/auth.js'
import { createPrivateKeyJwtAuth } from '@modelcontextprotocol/sdk/client/auth-extensions.js'
import { testPasswordHash } from '../helpers/passwords.js'
import { startChildGateway, type ChildGateway } from '../cimd/child-gateway.js'
import { json, makeTestCertificates, startHttpsDocServer, type DocServer } from '../cimd/servers.js'
import { FormBrowser } from '../helpers/form-browser.js'
import { MemoryClientProvider } from '../helpers/sdk-provider.js'
import { rsaKeyPair } from '../fixtures/rsa-keys.js'

t.setTimeout(360_000)

const JWT_BEARER = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer'
const tls = makeTestCertificates()
t.teardown(() => tls.cleanup())
const passwordHash = await testPasswordHash('alice-password')

interface Signer {
  kid: string
  privateKey: CryptoKey
  jwk: JWK
}
async function signer(kid: string): Promise<Signer> {
  const { privateKey, publicKey } = await generateKeyPair('ES256', { extractable: true })
  return { kid, privateKey, jwk: { ...(await exportJWK(publicKey)), kid, alg: 'ES256', use: 'sig' } }
}
const A = await signer('a1')
const B = await signer('b1')
const FOREIGN = await signer('a1') // same kid as A, another key

// docs: the ChatGPT-shaped client and the SDK client; docs2: clients whose documents change.
const docs = await startHttpsDocServer(tls, '127.0.0.1')
t.teardown(() => docs.close())
const docs2 = await startHttpsDocServer(tls, '127.0.0.1')
t.teardown(() => docs2.close())
const hits = (server: DocServer, path: string) => server.hits.get(path) ?? 0

const CHATGPT_REDIRECT = 'https://chatgpt.com/connector_platform_oauth_redirect'
const LOOPBACK_REDIRECT = 'http://127.0.0.1:43219/callback'
const chatgptUrl = `${docs.origin}/oauth/client-metadata.json`
const chatgptJwks = `${docs.origin}/oauth/jwks.json`
docs.routes.set(
  '/oauth/client-metadata.json',
  json(
    {
      client_id: chatgptUrl,
      client_name: 'ChatGPT',
      redirect_uris: [CHATGPT_REDIRECT],
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      token_endpoint_auth_method: 'private_key_jwt',
      token_endpoint_auth_signing_alg: 'ES256',
      jwks_uri: chatgptJwks,
    },
    { 'cache-control': 'max-age=300' },
  ),
)
docs.routes.set('/oauth/jwks.json', json({ keys: [A.jwk] }, { 'cache-control': 'max-age=300' }))

const config = (cimd: Record<string, unknown>) => ({
  login: { static: { users: [{ username: 'alice', passwordHash }] } },
  cimd: { enabled: true, allowPrivateAddresses: true, ...cimd },
  resources: [{ id: 'r0', name: 'Resource 0', path: '/mcp', upstream: 'http://127.0.0.1:9/mcp', scopes: [{ name: 'mcp' }], requiredScopes: ['mcp'] }],
})
// cache.minSeconds 0: documents served with no-store are fetched on every use (the changing ones).
const [gw, limitedGw] = await Promise.all([
  startChildGateway(t, tls, config({ trust: { allow: [{ prefix: `${docs.origin}/` }, { prefix: `${docs2.origin}/` }] }, cache: { minSeconds: 0 }, privateKeyJwt: { jwksRefetchIntervalSeconds: 5 } })),
  startChildGateway(t, tls, config({ trust: { any: true }, cache: { enabled: false }, fetchRateLimit: { perHost: 2, windowSeconds: 600 } })),
])
const tokenEndpoint = `${gw.origin}/oauth/token`

interface AssertionOptions {
  signer?: Signer
  alg?: string
  kid?: string | null
  iss?: string
  sub?: string
  aud?: string | string[]
  exp?: number | null
  iat?: number
  nbf?: number
  jti?: string | null
}
const now = () => Math.floor(Date.now() / 1000)
async function assertion(gateway: ChildGateway, clientId: string, o: AssertionOptions = {}): Promise<string> {
  const s = o.signer ?? A
  const claims: Record<string, unknown> = {
    iss: o.iss ?? clientId,
    sub: o.sub ?? clientId,
    aud: o.aud ?? gateway.origin,
    iat: o.iat ?? now(),
    ...(o.exp !== null && { exp: o.exp ?? now() + 120 }),
    ...(o.nbf !== undefined && { nbf: o.nbf }),
    ...(o.jti !== null && { jti: o.jti ?? randomBytes(12).toString('base64url') }),
  }
  const kid = o.kid === null ? undefined : (o.kid ?? s.kid)
  return new SignJWT(claims).setProtectedHeader({ alg: o.alg ?? 'ES256', ...(kid !== undefined && { kid }) }).sign(s.privateKey)
}

interface Answer {
  status: number
  body: any
  headers: Headers
}
async function post(gateway: ChildGateway, path: string, fields: Record<string, string | undefined>, headers: Record<string, string> = {}): Promise<Answer> {
  const body = new URLSearchParams(Object.entries(fields).filter((e): e is [string, string] => e[1] !== undefined))
  const res = await fetch(`${gateway.origin}${path}`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers }, body })
  const text = await res.text()
  return { status: res.status, body: text === '' ? undefined : JSON.parse(text), headers: res.headers }
}
const withAssertion = (a: string) => ({ client_assertion_type: JWT_BEARER, client_assertion: a })

/** A code through /oauth/authorize as a browser gets it: login, consent, redirect. */
async function authorize(gateway: ChildGateway, clientId: string, redirectUri: string): Promise<{ code: string; verifier: string }> {
  const verifier = randomBytes(32).toString('base64url')
  const url = new URL('/oauth/authorize', gateway.origin)
  const query = {
    response_type: 'code',
    client_id: clientId,
    redirect_uri: redirectUri,
    code_challenge: createHash('sha256').update(verifier).digest('base64url'),
    code_challenge_method: 'S256',
    scope: 'mcp',
    state: randomBytes(8).toString('hex'),
    resource: gateway.mcpUrl,
  }
  for (const [k, v] of Object.entries(query)) url.searchParams.set(k, v)
  const browser = new FormBrowser(gateway.origin)
  let page = await browser.get(url.href)
  for (let step = 0; page.status === 200 && step < 2; step++) {
    page = page.html.includes('action="/oauth/authorize/login"')
      ? await browser.submit(page, { username: 'alice', password: 'alice-password' })
      : await browser.submit(page, { decision: 'allow' })
  }
  const code = page.location === undefined ? null : new URL(page.location).searchParams.get('code')
  if (!code) throw new Error(`no code: ${page.status} ${page.location ?? page.html.slice(0, 400)}`)
  return { code, verifier }
}

async function refused(t: Test, gateway: ChildGateway, res: Answer, detail: RegExp, what: string): Promise<void> {
  t.equal(res.status, 401, `${what}: 401`)
  t.equal(res.body?.error, 'invalid_client', `${what}: invalid_client`)
  t.ok(await gateway.logged(detail), `${what}: the log names the check (${detail.source})`)
}

t.test('ASM-04, REV-04: metadata advertises private_key_jwt and the signing algorithms', async (t) => {
  const m = (await (await fetch(`${gw.origin}/.well-known/oauth-authorization-server`)).json()) as Record<string, string[]>
  for (const member of ['token_endpoint_auth_methods_supported', 'revocation_endpoint_auth_methods_supported']) {
    t.ok(m[member]!.includes('private_key_jwt'), member)
  }
  t.notOk(m.introspection_endpoint_auth_methods_supported!.includes('private_key_jwt'), 'INT-01: introspection is not for metadata-document clients')
  t.notOk('introspection_endpoint_auth_signing_alg_values_supported' in m)
  for (const member of ['token_endpoint_auth_signing_alg_values_supported', 'revocation_endpoint_auth_signing_alg_values_supported']) {
    t.same(m[member], ['ES256', 'ES384', 'PS256', 'PS384', 'RS256', 'EdDSA'], member)
    t.notOk(m[member]!.some((a) => a === 'none' || a.startsWith('HS')), `${member}: never none or HS*`)
  }
})

let refreshToken = ''
t.test('MCPA-34, CIMD-38: a ChatGPT-shaped client (jwks_uri): code, refresh and revocation with assertions; introspection refused (INT-01)', async (t) => {
  const { code, verifier } = await authorize(gw, chatgptUrl, CHATGPT_REDIRECT)
  t.equal(hits(docs, '/oauth/jwks.json'), 0, 'the key set is fetched only when an assertion needs it')
  const tokens = await post(gw, '/oauth/token', { grant_type: 'authorization_code', code, code_verifier: verifier, redirect_uri: CHATGPT_REDIRECT, ...withAssertion(await assertion(gw, chatgptUrl)) })
  t.equal(tokens.status, 200, JSON.stringify(tokens.body))
  t.ok(tokens.body.refresh_token)
  t.equal(hits(docs, '/oauth/jwks.json'), 1, 'the jwks_uri was fetched once')
  t.ok(await gw.logged(/"msg":"client assertion accepted"/), 'the accepted assertion is logged')

  // RFC 7523 §3: the token endpoint URL is accepted as audience too; client_id alongside must match.
  const refreshed = await post(gw, '/oauth/token', { grant_type: 'refresh_token', refresh_token: tokens.body.refresh_token, client_id: chatgptUrl, ...withAssertion(await assertion(gw, chatgptUrl, { aud: tokenEndpoint })) })
  t.equal(refreshed.status, 200, JSON.stringify(refreshed.body))
  t.not(refreshed.body.refresh_token, tokens.body.refresh_token, 'rotated')

  const introspected = await post(gw, '/oauth/introspect', { token: refreshed.body.access_token, ...withAssertion(await assertion(gw, chatgptUrl)) })
  t.equal(introspected.status, 401, 'INT-01: an authenticated metadata-document client still may not introspect')
  t.equal(introspected.body.error, 'invalid_client')

  const revoked = await post(gw, '/oauth/revoke', { token: refreshed.body.refresh_token, ...withAssertion(await assertion(gw, chatgptUrl, { aud: [gw.origin, 'https://other.example'] })) })
  t.equal(revoked.status, 200)
  const after = await post(gw, '/oauth/token', { grant_type: 'refresh_token', refresh_token: refreshed.body.refresh_token, ...withAssertion(await assertion(gw, chatgptUrl)) })
  t.equal(after.status, 400)
  t.equal(after.body.error, 'invalid_grant', 'revoked')
  t.equal(hits(docs, '/oauth/client-metadata.json'), 1, 'one document fetch for the whole flow')
  t.equal(hits(docs, '/oauth/jwks.json'), 1, 'one key set fetch for the whole flow')

  const next = await authorize(gw, chatgptUrl, CHATGPT_REDIRECT)
  const fresh = await post(gw, '/oauth/token', { grant_type: 'authorization_code', code: next.code, code_verifier: next.verifier, redirect_uri: CHATGPT_REDIRECT, ...withAssertion(await assertion(gw, chatgptUrl)) })
  t.equal(fresh.status, 200)
  refreshToken = fresh.body.refresh_token
})

t.test('SEC-30, CIMD-38: the client must authenticate on every call; client_id alone is refused everywhere', async (t) => {
  const next = await authorize(gw, chatgptUrl, CHATGPT_REDIRECT)
  const exchange = await post(gw, '/oauth/token', { grant_type: 'authorization_code', code: next.code, code_verifier: next.verifier, redirect_uri: CHATGPT_REDIRECT, client_id: chatgptUrl })
  await refused(t, gw, exchange, /client registered for private_key_jwt, used none/, 'SEC-30 code exchange without assertion')
  await refused(t, gw, await post(gw, '/oauth/token', { grant_type: 'refresh_token', refresh_token: refreshToken, client_id: chatgptUrl }), /used none/, 'SEC-30 refresh without assertion')
  await refused(t, gw, await post(gw, '/oauth/revoke', { token: refreshToken, client_id: chatgptUrl }), /used none/, 'SEC-30 revocation without assertion')
  await refused(t, gw, await post(gw, '/oauth/introspect', { token: refreshToken, client_id: chatgptUrl }), /used none/, 'SEC-30 introspection without assertion')
  const ok = await post(gw, '/oauth/token', { grant_type: 'authorization_code', code: next.code, code_verifier: next.verifier, redirect_uri: CHATGPT_REDIRECT, ...withAssertion(await assertion(gw, chatgptUrl)) })
  t.equal(ok.status, 200, 'the refused exchange did not burn the code')
})

t.test('SEC-31: every assertion check refuses with 401 invalid_client; the refresh token survives each', async (t) => {
  const id = chatgptUrl
  const refresh = async (a: string) => post(gw, '/oauth/token', { grant_type: 'refresh_token', refresh_token: refreshToken, ...withAssertion(a) })
  const hs256 = await new SignJWT({ iss: id, sub: id, aud: gw.origin, exp: now() + 60, jti: 'hs' }).setProtectedHeader({ alg: 'HS256', kid: 'a1' }).sign(new TextEncoder().encode('a'.repeat(32)))
  const none = new UnsecuredJWT({ iss: id, sub: id, aud: gw.origin, exp: now() + 60, jti: 'none' }).encode()
  const cases: [string, string, RegExp][] = [
    ['SEC-31 signed by a foreign key (same kid)', await assertion(gw, id, { signer: FOREIGN }), /check signature failed/],
    ['SEC-31 alg none', none, /check alg failed: alg \\"none\\" is not on the allow-list/],
    ['SEC-31 HS256', hs256, /check alg failed: alg \\"HS256\\"/],
    ['SEC-31 wrong iss', await assertion(gw, id, { iss: 'https://evil.example/client' }), /check iss failed/],
    ['SEC-31 iss differs from sub', await assertion(gw, id, { iss: `${id}/` }), /check iss failed: iss is not exactly the client id/],
    ['SEC-31 wrong aud', await assertion(gw, id, { aud: 'https://other-as.example' }), /check aud failed/],
    ['SEC-31 expired', await assertion(gw, id, { exp: now() - 120, iat: now() - 300 }), /check exp failed: expired/],
    ['SEC-31 exp too far ahead', await assertion(gw, id, { exp: now() + 3600 }), /check lifetime failed: .* too long-lived/],
    ['SEC-31 no exp', await assertion(gw, id, { exp: null }), /check exp failed: exp is missing/],
    ['SEC-31 iat in the future', await assertion(gw, id, { iat: now() + 600 }), /check iat failed/],
    ['SEC-31 nbf in the future', await assertion(gw, id, { nbf: now() + 600 }), /check nbf failed/],
    ['SEC-31 missing jti', await assertion(gw, id, { jti: null }), /check jti failed: jti is missing/],
    ['SEC-31 alg differs from token_endpoint_auth_signing_alg', await new SignJWT({ iss: id, sub: id, aud: gw.origin, exp: now() + 60, jti: 'ps' }).setProtectedHeader({ alg: 'PS256', kid: 'a1' }).sign((await rsaKeyPair('PS256')).privateKey), /differs from the client's token_endpoint_auth_signing_alg ES256/],
  ]
  for (const [what, a, detail] of cases) await refused(t, gw, await refresh(a), detail, what)
  // sub != iss, with iss right: the client is looked up by sub, which is then another client.
  const subOnly = await refresh(await assertion(gw, id, { sub: `${docs.origin}/oauth/other.json` }))
  t.equal(subOnly.status, 401, 'SEC-31 sub != iss: 401')
  t.equal(subOnly.body.error, 'invalid_client')

  const wrongType = await post(gw, '/oauth/token', { grant_type: 'refresh_token', refresh_token: refreshToken, client_assertion_type: 'urn:example:other', client_assertion: await assertion(gw, id) })
  await refused(t, gw, wrongType, /unsupported client_assertion_type/, 'RFC 7521 §4.2 unknown assertion type')
  const mismatch = await post(gw, '/oauth/token', { grant_type: 'refresh_token', refresh_token: refreshToken, client_id: `${docs.origin}/oauth/other.json`, ...withAssertion(await assertion(gw, id)) })
  await refused(t, gw, mismatch, /client_id differs from the assertion's sub/, 'RFC 7521 §4.2 client_id differs from sub')
  const twoMethods = await post(gw, '/oauth/token', { grant_type: 'refresh_token', refresh_token: refreshToken, client_secret: 'x', ...withAssertion(await assertion(gw, id)) })
  t.equal(twoMethods.status, 400)
  t.equal(twoMethods.body.error, 'invalid_request', 'assertion and client_secret: two methods')
  const withBasic = await post(gw, '/oauth/token', { grant_type: 'refresh_token', refresh_token: refreshToken, ...withAssertion(await assertion(gw, id)) }, { authorization: `Basic ${Buffer.from(`${encodeURIComponent(id)}:x`).toString('base64')}` })
  t.equal(withBasic.body.error, 'invalid_request', 'assertion and Basic: two methods')
  const typeOnly = await post(gw, '/oauth/token', { grant_type: 'refresh_token', refresh_token: refreshToken, client_assertion_type: JWT_BEARER })
  t.equal(typeOnly.body.error, 'invalid_request', 'client_assertion_type without client_assertion')

  // SEC-31 jti replay: the first use works, the same assertion again is refused.
  const once = await assertion(gw, id)
  const first = await refresh(once)
  t.equal(first.status, 200, 'the refresh token survived every refusal above')
  refreshToken = first.body.refresh_token
  await refused(t, gw, await refresh(once), /check replay failed: this jti was already used/, 'SEC-31 replayed jti')
  t.notOk(gw.logs().some((l) => l.statusCode === 500 || l.level === 50), 'no 500, no error log')
  t.notOk(gw.output().includes(once.split('.')[2]!), 'no assertion in the log')
})

t.test('SEC-31, SEC-32: an unknown kid refetches the key set once, a second one within the interval fetches nothing', async (t) => {
  const before = hits(docs, '/oauth/jwks.json')
  const refresh = async (a: string) => post(gw, '/oauth/token', { grant_type: 'refresh_token', refresh_token: refreshToken, ...withAssertion(a) })
  await refused(t, gw, await refresh(await assertion(gw, chatgptUrl, { signer: B, kid: 'unknown-1' })), /check unknown_kid failed: unknown kid unknown-1, also after refetching jwks_uri/, 'SEC-32 unknown kid')
  t.equal(hits(docs, '/oauth/jwks.json'), before + 1, 'exactly one refetch')
  await refused(t, gw, await refresh(await assertion(gw, chatgptUrl, { signer: B, kid: 'unknown-2' })), /unknown kid unknown-2; jwks_uri was refetched less than the interval ago/, 'SEC-32 second unknown kid')
  t.equal(hits(docs, '/oauth/jwks.json'), before + 1, 'no fetch for the second unknown kid within the interval')
})

t.test('SEC-32: a key set with private key material is refused; SEC-33: private_key_jwt without keys is refused', async (t) => {
  const path = '/clients/leaky.json'
  const url = `${docs2.origin}${path}`
  docs2.routes.set(path, json({ client_id: url, redirect_uris: [LOOPBACK_REDIRECT], token_endpoint_auth_method: 'private_key_jwt', jwks_uri: `${docs2.origin}/clients/leaky-jwks.json` }))
  const { privateKey } = await generateKeyPair('ES256', { extractable: true })
  docs2.routes.set('/clients/leaky-jwks.json', json({ keys: [{ ...(await exportJWK(privateKey)), kid: 'a1' }] }))
  const res = await post(gw, '/oauth/token', { grant_type: 'refresh_token', refresh_token: 'x', ...withAssertion(await assertion(gw, url)) })
  await refused(t, gw, res, /check jwks_invalid failed: the key set at jwks_uri holds private or symmetric key material/, 'SEC-32 private key behind jwks_uri')

  const bare = '/clients/keyless.json'
  docs2.routes.set(bare, json({ client_id: `${docs2.origin}${bare}`, redirect_uris: [LOOPBACK_REDIRECT], token_endpoint_auth_method: 'private_key_jwt' }))
  const u = new URL('/oauth/authorize', gw.origin)
  for (const [k, v] of Object.entries({ response_type: 'code', client_id: `${docs2.origin}${bare}`, redirect_uri: LOOPBACK_REDIRECT, code_challenge: 'x'.repeat(43), code_challenge_method: 'S256' })) u.searchParams.set(k, v)
  const page = await new FormBrowser(gw.origin).get(u.href)
  t.equal(page.status, 400, 'SEC-33: refused at /authorize')
  t.equal(page.location, undefined, 'on the gateway page, never a redirect')
  t.match(page.html, /private_key_jwt needs jwks or jwks_uri \(SEC-33\)/)
})

t.test('SEC-22: a document switched to another key between /authorize and /token does not change the rules of that code', async (t) => {
  const path = '/clients/snapshot.json'
  const url = `${docs2.origin}${path}`
  const serve = (key: Signer) =>
    docs2.routes.set(path, json({ client_id: url, client_name: 'Snapshot', redirect_uris: [LOOPBACK_REDIRECT], grant_types: ['authorization_code', 'refresh_token'], token_endpoint_auth_method: 'private_key_jwt', jwks: { keys: [key.jwk] } }, { 'cache-control': 'no-store' }))
  serve(A)
  const { code, verifier } = await authorize(gw, url, LOOPBACK_REDIRECT)
  serve(B)
  const exchange = (a: string) => post(gw, '/oauth/token', { grant_type: 'authorization_code', code, code_verifier: verifier, redirect_uri: LOOPBACK_REDIRECT, ...withAssertion(a) })
  await refused(t, gw, await exchange(await assertion(gw, url, { signer: B })), /unknown kid b1 in the document's jwks/, 'SEC-22 the new key does not open the old code')
  const tokens = await exchange(await assertion(gw, url, { signer: A }))
  t.equal(tokens.status, 200, 'SEC-22: the code is redeemed under the key it was issued with')

  // Refresh uses the current document (fetched again: no-store).
  const refresh = (a: string, rt: string) => post(gw, '/oauth/token', { grant_type: 'refresh_token', refresh_token: rt, ...withAssertion(a) })
  await refused(t, gw, await refresh(await assertion(gw, url, { signer: A }), tokens.body.refresh_token), /unknown kid a1 in the document's jwks/, 'refresh: the old key is gone')
  const refreshed = await refresh(await assertion(gw, url, { signer: B }), tokens.body.refresh_token)
  t.equal(refreshed.status, 200, 'refresh: the current key works')
  t.ok(await gw.logged(new RegExp(`"clientId":"${url.replace(/[.:/]/g, '\\$&')}"[^\\n]*"changed":\\["jwks"\\][^\\n]*"msg":"cimd document changed"`)), 'SEC-23: the inline key change is logged as a document change, naming jwks')
})

t.test('SEC-34: rotation behind jwks_uri is no document change; SEC-23: a new jwks_uri value is', async (t) => {
  const path = '/clients/rotating.json'
  const url = `${docs2.origin}${path}`
  const serve = (jwksPath: string) =>
    docs2.routes.set(path, json({ client_id: url, client_name: 'Rotating', redirect_uris: [LOOPBACK_REDIRECT], grant_types: ['authorization_code', 'refresh_token'], token_endpoint_auth_method: 'private_key_jwt', jwks_uri: `${docs2.origin}${jwksPath}` }, { 'cache-control': 'no-store' }))
  serve('/clients/rotating-jwks.json')
  docs2.routes.set('/clients/rotating-jwks.json', json({ keys: [A.jwk] }, { 'cache-control': 'max-age=300' }))
  const { code, verifier } = await authorize(gw, url, LOOPBACK_REDIRECT)
  let tokens = await post(gw, '/oauth/token', { grant_type: 'authorization_code', code, code_verifier: verifier, redirect_uri: LOOPBACK_REDIRECT, ...withAssertion(await assertion(gw, url)) })
  t.equal(tokens.status, 200)

  // The client rotates: B replaces A behind the same jwks_uri. The cached set lacks b1: one refetch.
  docs2.routes.set('/clients/rotating-jwks.json', json({ keys: [B.jwk] }, { 'cache-control': 'max-age=300' }))
  const jwksBefore = hits(docs2, '/clients/rotating-jwks.json')
  tokens = await post(gw, '/oauth/token', { grant_type: 'refresh_token', refresh_token: tokens.body.refresh_token, ...withAssertion(await assertion(gw, url, { signer: B })) })
  t.equal(tokens.status, 200, 'SEC-34: the rotated key is picked up')
  t.equal(hits(docs2, '/clients/rotating-jwks.json'), jwksBefore + 1)
  t.ok(hits(docs2, path) >= 3, 'the document itself was fetched again on each use')
  const changedLines = () => gw.logs().filter((l) => l.msg === 'cimd document changed' && l.clientId === url)
  t.same(changedLines(), [], 'SEC-34: no "cimd document changed" for key rotation')

  serve('/clients/rotating-jwks-2.json')
  docs2.routes.set('/clients/rotating-jwks-2.json', json({ keys: [B.jwk] }))
  tokens = await post(gw, '/oauth/token', { grant_type: 'refresh_token', refresh_token: tokens.body.refresh_token, ...withAssertion(await assertion(gw, url, { signer: B })) })
  t.equal(tokens.status, 200)
  for (let i = 0; i < 100 && changedLines().length === 0; i++) await sleep(50)
  t.match(changedLines(), [{ level: 40, changed: ['jwks_uri'], host: `127.0.0.1:${docs2.port}` }], 'SEC-23: the new jwks_uri value is logged as a change, by name')
})

t.test('SEC-14: fetches per client-id host are limited; over the limit the client is refused without a fetch', async (t) => {
  const limitedDocs = await startHttpsDocServer(tls, '127.0.0.1')
  t.teardown(() => limitedDocs.close())
  const url = `${limitedDocs.origin}/client.json`
  limitedDocs.routes.set('/client.json', json({ client_id: url, client_name: 'Busy', redirect_uris: [LOOPBACK_REDIRECT], token_endpoint_auth_method: 'private_key_jwt', jwks: { keys: [A.jwk] } }))
  const page = async () => {
    const u = new URL('/oauth/authorize', limitedGw.origin)
    for (const [k, v] of Object.entries({ response_type: 'code', client_id: url, redirect_uri: LOOPBACK_REDIRECT, code_challenge: 'x'.repeat(43), code_challenge_method: 'S256', state: 's' })) u.searchParams.set(k, v)
    return new FormBrowser(limitedGw.origin).get(u.href)
  }
  t.equal((await page()).status, 200, 'fetch 1 of 2')
  t.equal((await page()).status, 200, 'fetch 2 of 2 (cache disabled: every use fetches)')
  t.equal(hits(limitedDocs, '/client.json'), 2)
  const third = await page()
  t.equal(third.status, 400, 'the third use is refused')
  t.match(third.html, /too often; try again in \d+ s/, 'a clear invalid_client page')
  t.equal(third.location, undefined, 'never a redirect')
  const token = await post(limitedGw, '/oauth/token', { grant_type: 'refresh_token', refresh_token: 'x', ...withAssertion(await assertion(limitedGw, url)) })
  t.equal(token.status, 401, 'the token endpoint answers 401')
  t.match(token.body, { error: 'invalid_client', error_description: /too often/ })
  t.equal(hits(limitedDocs, '/client.json'), 2, 'SEC-14: no fetch over the limit')
  t.ok(await limitedGw.logged(/"rule":"cimd\.fetchRateLimit"/), 'the refusal is logged with its rule')
})

t.test('MCP SDK 1.x: clientMetadataUrl with createPrivateKeyJwtAuth drives code and refresh against the gateway', async (t) => {
  const path = '/clients/sdk.json'
  const url = `${docs.origin}${path}`
  docs.routes.set(path, json({ client_id: url, client_name: 'SDK key client', redirect_uris: [LOOPBACK_REDIRECT], grant_types: ['authorization_code', 'refresh_token'], token_endpoint_auth_method: 'private_key_jwt', jwks_uri: `${docs.origin}/clients/sdk-jwks.json` }))
  // The SDK signs without a kid: the only key that fits ES256 is chosen.
  docs.routes.set('/clients/sdk-jwks.json', json({ keys: [{ ...A.jwk, kid: undefined }] }))
  const provider = new MemoryClientProvider({ redirectUrl: LOOPBACK_REDIRECT, clientMetadataUrl: url, state: 'sdk-state' })
  const signing = createPrivateKeyJwtAuth({ issuer: url, subject: url, privateKey: await exportJWK(A.privateKey), alg: 'ES256' })
  Object.assign(provider, { addClientAuthentication: signing })
  t.equal(await auth(provider, { serverUrl: gw.mcpUrl }), 'REDIRECT')
  const browser = new FormBrowser(gw.origin)
  let page = await browser.get(provider.authorizationUrl!.href)
  page = await browser.submit(page, { username: 'alice', password: 'alice-password' })
  page = await browser.submit(page, { decision: 'allow' })
  const code = new URL(page.location!).searchParams.get('code')!
  t.equal(await auth(provider, { serverUrl: gw.mcpUrl, authorizationCode: code }), 'AUTHORIZED', 'the SDK exchanged the code with its assertion')
  const first = provider.savedTokens!.refresh_token
  t.equal(await auth(provider, { serverUrl: gw.mcpUrl }), 'AUTHORIZED', 'and refreshed with a new assertion')
  t.not(provider.savedTokens!.refresh_token, first)
})
