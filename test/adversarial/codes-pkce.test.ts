/**
 * Red team: PKCE (O21-05, O21-07, BCP-03, RFC 7636 §4.1), codes (O21-06, O21-08, O21-12) and
 * resource switching (RI-03, RI-07) at the authorization and token endpoints, and the token
 * endpoint's HTTP surface (O21-11, BCP-05). Real HTTP against the token harness gateway.
 */
import { createHash, randomBytes } from 'node:crypto'
import t from 'tap'
import { challengeOf, claims, OTHER_PUBLIC, pkceVerifier, PUBLIC, REDIRECT, startHarness } from '../helpers/token-harness.js'

const h = await startHarness(t)
const origin = h.gw.origin

/** Starts /authorize and returns where the gateway sends the browser (redirect or page). */
async function authorize(params: Record<string, string | undefined>) {
  const url = new URL('/oauth/authorize', origin)
  const all: Record<string, string | undefined> = {
    response_type: 'code',
    client_id: PUBLIC.id,
    redirect_uri: REDIRECT,
    code_challenge: challengeOf(pkceVerifier()),
    code_challenge_method: 'S256',
    resource: h.resource(0),
    state: 'st',
    ...params,
  }
  for (const [k, v] of Object.entries(all)) if (v !== undefined) url.searchParams.set(k, v)
  const res = await fetch(url, { redirect: 'manual' })
  await res.text()
  return { status: res.status, location: res.headers.get('location') }
}

t.test('O21-05 BCP-03: /authorize refuses plain, missing and malformed challenges by redirect, with no code', async (t) => {
  const verifier = pkceVerifier()
  const cases: [string, Record<string, string | undefined>][] = [
    ['plain method', { code_challenge: verifier, code_challenge_method: 'plain' }],
    ['method missing (plain by default)', { code_challenge_method: undefined }],
    ['method in lower case', { code_challenge_method: 's256' }],
    ['challenge missing', { code_challenge: undefined }],
    ['challenge 42 characters', { code_challenge: 'A'.repeat(42) }],
    ['challenge 44 characters', { code_challenge: 'A'.repeat(44) }],
    ['challenge with base64 padding', { code_challenge: `${challengeOf(verifier).slice(0, 42)}=` }],
    ['challenge with + and /', { code_challenge: `${'+/'.repeat(21)}A` }],
  ]
  for (const [what, params] of cases) {
    const { status, location } = await authorize(params)
    t.equal(status, 302, `${what}: redirected (client and redirect URI are verified)`)
    const target = new URL(location!)
    t.equal(target.searchParams.get('error'), 'invalid_request', `${what}: invalid_request`)
    t.equal(target.searchParams.get('code'), null, `${what}: no code`)
    t.equal(target.searchParams.get('state'), 'st', `${what}: state returned`)
  }
})

t.test('RFC 7636 §4.1 O21-07: verifiers outside 43..128 unreserved characters are refused even when their S256 matches', async (t) => {
  const bad: [string, string][] = [
    ['42 characters', 'a'.repeat(42)],
    ['129 characters', 'a'.repeat(129)],
    ['a space inside', `${'a'.repeat(30)} ${'b'.repeat(20)}`],
    ['a + (not unreserved)', `${'a'.repeat(30)}+${'b'.repeat(20)}`],
    ['a / (not unreserved)', `${'a'.repeat(30)}/${'b'.repeat(20)}`],
    ['non-ASCII', `${'a'.repeat(43)}é`],
    ['a NUL byte', `${'a'.repeat(43)}\u0000`],
  ]
  for (const [what, verifier] of bad) {
    const c = await h.code(PUBLIC, { verifier })
    const res = await h.exchange(t, PUBLIC, c)
    t.equal(res.status, 400, `${what}: refused`)
    t.equal(res.body.error, 'invalid_grant', `${what}: invalid_grant`)
  }
  for (const verifier of ['a'.repeat(43), `${'-._~'.repeat(32)}`]) {
    const res = await h.exchange(t, PUBLIC, await h.code(PUBLIC, { verifier }))
    t.equal(res.status, 200, `a ${verifier.length}-character unreserved verifier works`)
  }
})

t.test('O21-07: a verifier from another code, the challenge itself as verifier, or none at all is refused', async (t) => {
  const a = await h.code(PUBLIC)
  const b = await h.code(PUBLIC)
  t.equal((await h.exchange(t, PUBLIC, { ...a, verifier: b.verifier })).body.error, 'invalid_grant', 'another code\'s verifier')
  const c = await h.code(PUBLIC)
  t.equal((await h.exchange(t, PUBLIC, { ...c, verifier: challengeOf(c.verifier) })).body.error, 'invalid_grant', 'the challenge sent as verifier')
  const d = await h.code(PUBLIC)
  const missing = await h.exchange(t, PUBLIC, d, { code_verifier: undefined })
  t.equal(missing.body.error, 'invalid_request', 'no verifier: invalid_request')
  t.equal((await h.exchange(t, PUBLIC, d)).status, 200, 'a request without verifier did not burn the code')
})

t.test('O21-08: of concurrent redemptions of one code at most one wins, and the replays revoke the grant', async (t) => {
  const c = await h.code(PUBLIC)
  const answers = await Promise.all(Array.from({ length: 8 }, () => h.exchange(t, PUBLIC, c)))
  const winners = answers.filter((a) => a.status === 200)
  // The winner may finish after a replay revoked its grant; then it is refused too.
  t.ok(winners.length <= 1, 'at most one redemption succeeds')
  t.ok(answers.filter((a) => a.status !== 200).every((a) => a.status === 400 && a.body.error === 'invalid_grant'), 'the others are invalid_grant')
  // A replay after the race: otherwise valid, so the grant the code created is revoked.
  const late = await h.exchange(t, PUBLIC, c)
  t.equal(late.body.error, 'invalid_grant')
  for (const winner of winners) {
    const refresh = await h.refresh(t, PUBLIC, winner.body.refresh_token)
    t.equal(refresh.body?.error, 'invalid_grant', 'O21-08: the winner\'s refresh token no longer works')
  }
})

t.test('O21-06 O21-07: a code redeemed by another client, or with another redirect_uri, yields nothing', async (t) => {
  const c = await h.code(PUBLIC)
  const stolen = await h.exchange(t, OTHER_PUBLIC, c)
  t.equal(stolen.status, 400)
  t.equal(stolen.body.error, 'invalid_grant', 'another client, right verifier: invalid_grant')
  const d = await h.code(PUBLIC)
  for (const redirect of [REDIRECT.replace('43210', '43211'), `${REDIRECT}/`, REDIRECT.replace('127.0.0.1', 'localhost'), REDIRECT.toUpperCase()]) {
    const e = await h.code(PUBLIC)
    t.equal((await h.exchange(t, PUBLIC, { ...e, redirectUri: redirect })).body.error, 'invalid_grant', `redirect_uri ${redirect}`)
  }
  t.equal((await h.exchange(t, PUBLIC, d)).status, 200, 'an untouched code still works')
})

t.test('RI-07 RI-04: resource switching at the token endpoint is invalid_target and does not burn the code', async (t) => {
  const c = await h.code(PUBLIC, { resource: h.resource(0) })
  for (const resource of [h.resource(1), 'https://evil.example/mcp', `${h.resource(0)}#frag`, `${h.resource(0)}/../r1/mcp`, `${h.resource(0)}?x=1`, 'not a uri']) {
    const res = await h.exchange(t, PUBLIC, c, { resource })
    t.equal(res.status, 400, `resource ${resource}: 400`)
    t.equal(res.body.error, 'invalid_target', `resource ${resource}: invalid_target`)
  }
  const repeated = await h.token(t, [['grant_type', 'authorization_code'], ['code', c.code], ['code_verifier', c.verifier], ['redirect_uri', REDIRECT], ['client_id', PUBLIC.id], ['resource', h.resource(0)], ['resource', h.resource(1)]])
  t.equal(repeated.body.error, 'invalid_request', 'RI-03: two resources is invalid_request here')
  const ok = await h.exchange(t, PUBLIC, c, { resource: h.resource(0) })
  t.equal(ok.status, 200, 'the code survived every switch attempt')
  t.equal(claims(ok.body.access_token).aud, h.resource(0), 'aud is the code\'s resource')
})

t.test('RI-01 RI-03: /authorize refuses unknown, fragment and repeated resources (by redirect: invalid_target / invalid_request)', async (t) => {
  for (const [what, params, error] of [
    ['unknown resource', { resource: 'https://evil.example/mcp' }, 'invalid_target'],
    ['fragment', { resource: `${h.resource(0)}#x` }, 'invalid_target'],
    ['relative', { resource: '/mcp' }, 'invalid_target'],
  ] as const) {
    const { location } = await authorize(params)
    t.equal(new URL(location!).searchParams.get('error'), error, what)
  }
})

t.test('O21-11: the token endpoint takes POST with a form only; no CORS credentials, never a 500', async (t) => {
  for (const method of ['GET', 'PUT', 'DELETE', 'PATCH']) {
    const res = await fetch(`${origin}/oauth/token?grant_type=authorization_code&code=x`, { method })
    const text = await res.text()
    t.ok(res.status === 404 || res.status === 405, `${method}: ${res.status}`)
    t.notMatch(text, /access_token/)
  }
  const head = await fetch(`${origin}/oauth/token`, { method: 'HEAD' })
  t.ok(head.status === 404 || head.status === 405, `HEAD: ${head.status}`)
  const json = await fetch(`${origin}/oauth/token`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ grant_type: 'authorization_code', code: 'x', client_id: PUBLIC.id }) })
  t.equal(json.status, 415, 'JSON is not a form: 415')
  t.match(await json.json(), { error: 'unsupported_media_type' })
  const noType = await fetch(`${origin}/oauth/token`, { method: 'POST', body: 'grant_type=authorization_code' })
  t.ok(noType.status >= 400 && noType.status < 500, `text/plain body: ${noType.status}`)
  await noType.text()
  const multipart = new FormData()
  multipart.set('grant_type', 'authorization_code')
  const mp = await fetch(`${origin}/oauth/token`, { method: 'POST', body: multipart })
  t.equal(mp.status, 415, 'multipart: 415')
  await mp.text()
  const huge = await fetch(`${origin}/oauth/token`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: `grant_type=authorization_code&code=${'a'.repeat(200_000)}` })
  t.equal(huge.status, 413, 'a huge form: 413')
  await huge.text()
  const many = new URLSearchParams()
  for (let i = 0; i < 1500; i++) many.append(`p${i}`, 'x')
  many.set('grant_type', 'authorization_code')
  const manyRes = await fetch(`${origin}/oauth/token`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: many.toString() })
  t.ok(manyRes.status >= 400 && manyRes.status < 500, `1500 parameters: ${manyRes.status}`)
  await manyRes.text()
  const malformed = await fetch(`${origin}/oauth/token`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'grant_type=%E0%A4%A&code=%' })
  t.ok(malformed.status >= 400 && malformed.status < 500, `malformed percent-encoding: ${malformed.status}`)
  await malformed.text()
  const preflight = await fetch(`${origin}/oauth/token`, { method: 'OPTIONS', headers: { origin: 'https://evil.example', 'access-control-request-method': 'POST' } })
  await preflight.text()
  t.not(preflight.status, 500)
  t.not(preflight.headers.get('access-control-allow-credentials'), 'true', 'never credentialed CORS')
  const cross = await h.token(t, { grant_type: 'authorization_code', code: 'nope', code_verifier: pkceVerifier(), client_id: PUBLIC.id })
  t.not(cross.headers.get('access-control-allow-credentials'), 'true')
})

t.test('unsupported grants and response types: implicit, password, device code; client_credentials never for a public client', async (t) => {
  for (const grant of ['password', 'implicit', 'urn:ietf:params:oauth:grant-type:device_code', 'urn:ietf:params:oauth:grant-type:jwt-bearer', 'urn:ietf:params:oauth:grant-type:token-exchange']) {
    const res = await h.token(t, { grant_type: grant, client_id: PUBLIC.id, username: 'alice', password: 'x', scope: 'mcp' })
    t.equal(res.body.error, 'unsupported_grant_type', grant)
  }
  // Supported for confidential machine clients only (CC-01): a public client is unauthorized_client.
  const machine = await h.token(t, { grant_type: 'client_credentials', client_id: PUBLIC.id, scope: 'mcp' })
  t.equal(machine.body.error, 'unauthorized_client', 'client_credentials for a public client')
  t.notOk(machine.body.access_token, 'and no token')
  for (const responseType of ['token', 'id_token', 'code token', 'code id_token', 'none', 'CODE']) {
    const { location } = await authorize({ response_type: responseType })
    const target = new URL(location!)
    t.equal(target.searchParams.get('error'), 'unsupported_response_type', `response_type=${responseType}`)
    t.equal(target.hash, '', 'never a fragment response')
  }
})

t.test('error answers never reflect input unsafely', async (t) => {
  const probe = `"><script>alert(1)</script>\\u0000${randomBytes(4).toString('hex')}`
  const res = await h.token(t, { grant_type: probe, client_id: PUBLIC.id })
  t.notMatch(JSON.stringify(res.body), /<script>/, 'grant_type not echoed')
  const res2 = await h.token(t, { grant_type: 'refresh_token', refresh_token: probe, client_id: PUBLIC.id })
  t.notMatch(JSON.stringify(res2.body), /<script>/, 'refresh_token not echoed')
  const res3 = await h.token(t, { grant_type: 'authorization_code', code: probe, code_verifier: createHash('sha256').update(probe).digest('base64url') + 'aaaaaaaaaaaaa', client_id: PUBLIC.id })
  t.notMatch(JSON.stringify(res3.body), /<script>/, 'code not echoed')
})

t.test('MCPA-62: no code, verifier, token or secret in the log; no 500', async (t) => {
  h.checkLog(t)
  t.notMatch(h.gw.logText(), /"level":50/, 'no error-level log line')
})
