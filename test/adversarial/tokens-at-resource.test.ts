/**
 * Red team: refresh tokens (O21-10, BCP-06, RI-07) and forged or misdirected access tokens at
 * the protected resource (JWT-03, RI-08, MCPS-07, BCP-08, BRR-01). Forgeries are signed with
 * attacker keys, or with the gateway's own key where only a claim or header is at fault; every
 * one must be 401 invalid_token (or 400 invalid_request for a malformed header), never a 500
 * and never proxied. A loopback JWKS server proves jku/x5u are never fetched.
 */
import { KeyObject, sign as nodeSign } from 'node:crypto'
import { createServer } from 'node:http'
import t, { type Test } from 'tap'
import { CompactSign, exportJWK, generateKeyPair, SignJWT, UnsecuredJWT, type CryptoKey, type JWK } from 'jose'
import { BASIC, claims, OTHER_PUBLIC, PUBLIC, startHarness } from '../helpers/token-harness.js'

const h = await startHarness(t)
const gw = h.gw
const active = gw.gateway.keystore!.active
const now = () => Math.floor(Date.now() / 1000)

// A loopback server that would serve an attacker's key set; it must never be asked.
let jwksHits = 0
const attacker = await generateKeyPair(active.alg as 'ES256', { extractable: true })
const attackerJwk: JWK = { ...(await exportJWK(attacker.publicKey)), kid: active.kid, alg: active.alg }
const jwksServer = createServer((_req, res) => {
  jwksHits++
  res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ keys: [attackerJwk] }))
})
await new Promise<void>((r) => jwksServer.listen(0, '127.0.0.1', r))
t.teardown(() => new Promise<void>((r) => jwksServer.close(() => r())))
const jwksUrl = `http://127.0.0.1:${(jwksServer.address() as { port: number }).port}/jwks.json`

const INIT = JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'probe', version: '1' } } })

async function callMcp(token: string | undefined, resource: 0 | 1 = 0, headers: Record<string, string> = {}) {
  const res = await fetch(h.resource(resource), {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      accept: 'application/json, text/event-stream',
      ...(token !== undefined && { authorization: `Bearer ${token}` }),
      ...headers,
    },
    body: INIT,
  })
  return { status: res.status, challenge: res.headers.get('www-authenticate'), body: await res.text() }
}

async function refused(t: Test, what: string, token: string, resource: 0 | 1 = 0) {
  const res = await callMcp(token, resource)
  t.equal(res.status, 401, `${what}: 401`)
  t.match(res.challenge, /error="invalid_token"/, `${what}: invalid_token`)
}

/** The standard claims of a gateway access token for resource 0, with overrides. */
function payload(over: Record<string, unknown> = {}) {
  return { iss: gw.config.issuer, sub: 'static:alice', aud: h.resource(0), client_id: PUBLIC.id, scope: 'mcp admin', iat: now(), exp: now() + 300, jti: crypto.randomUUID(), ...over }
}
/** Signed with the gateway's real key: only what the test changes is wrong. */
function realSigned(over: Record<string, unknown> = {}, header: Record<string, unknown> = {}) {
  const body = Object.fromEntries(Object.entries(payload(over)).filter(([, v]) => v !== undefined))
  return new SignJWT(body).setProtectedHeader({ alg: active.alg, typ: 'at+jwt', kid: active.kid, ...header }).sign(active.privateKey)
}

/** Signs any header as written (jose refuses to produce some of the headers probed here). */
function rawSigned(header: Record<string, unknown>, body: Record<string, unknown> | string): string {
  const enc = (v: unknown) => Buffer.from(typeof v === 'string' ? v : JSON.stringify(v)).toString('base64url')
  const input = `${enc(header)}.${enc(body)}`
  const key = KeyObject.from(active.privateKey as CryptoKey)
  const digest = active.alg === 'EdDSA' ? null : `sha${active.alg.slice(2)}`
  const options = active.alg.startsWith('ES') ? { key, dsaEncoding: 'ieee-p1363' as const } : active.alg.startsWith('PS') ? { key, padding: 6, saltLength: Number(active.alg.slice(2)) / 8 } : key
  return `${input}.${nodeSign(digest, Buffer.from(input), options).toString('base64url')}`
}

t.test('control: a genuine token passes the guard (proxied: the upstream is down, so 502)', async (t) => {
  const res = await callMcp(await realSigned())
  t.equal(res.status, 502, 'past the bearer check')
})

t.test('JWT-03: algorithm and key forgeries are refused', async (t) => {
  await refused(t, 'alg none', new UnsecuredJWT(payload()).encode().replace(/^[^.]+/, Buffer.from(JSON.stringify({ alg: 'none', typ: 'at+jwt' })).toString('base64url')))
  const publicJwk = JSON.stringify(gw.gateway.keystore!.jwks.keys[0])
  await refused(t, 'HS256 with the public JWK as secret', await new SignJWT(payload()).setProtectedHeader({ alg: 'HS256', typ: 'at+jwt', kid: active.kid }).sign(new TextEncoder().encode(publicJwk)))
  await refused(t, 'attacker key, our kid', await new SignJWT(payload()).setProtectedHeader({ alg: active.alg, typ: 'at+jwt', kid: active.kid }).sign(attacker.privateKey))
  for (const kid of ['../../../../dev/null', '/etc/passwd', "x' OR '1'='1", 'file:///etc/passwd', jwksUrl, `${active.kid}\u0000`, ''.padEnd(5000, 'k')]) {
    await refused(t, `kid injection ${kid.slice(0, 30)}`, await new SignJWT(payload()).setProtectedHeader({ alg: active.alg, typ: 'at+jwt', kid }).sign(attacker.privateKey))
  }
  await refused(t, 'jku to an attacker key set', await new SignJWT(payload()).setProtectedHeader({ alg: active.alg, typ: 'at+jwt', kid: active.kid, jku: jwksUrl }).sign(attacker.privateKey))
  await refused(t, 'x5u to an attacker key set', await new SignJWT(payload()).setProtectedHeader({ alg: active.alg, typ: 'at+jwt', kid: active.kid, x5u: jwksUrl }).sign(attacker.privateKey))
  await refused(t, 'embedded jwk header', await new SignJWT(payload()).setProtectedHeader({ alg: active.alg, typ: 'at+jwt', jwk: { ...attackerJwk, kid: undefined } }).sign(attacker.privateKey))
  await refused(t, 'x5c header', await new SignJWT(payload()).setProtectedHeader({ alg: active.alg, typ: 'at+jwt', kid: active.kid, x5c: ['MIIB'] }).sign(attacker.privateKey))
  t.equal(jwksHits, 0, 'jku/x5u were never fetched')
  const genuine = await realSigned()
  const [hdr, body] = genuine.split('.')
  await refused(t, 'signature stripped', `${hdr}.${body}.`)
  const tampered = Buffer.from(JSON.stringify({ ...payload(), scope: 'mcp admin root' })).toString('base64url')
  await refused(t, 'payload swapped under a genuine signature', `${hdr}.${tampered}.${genuine.split('.')[2]}`)
})

t.test('JWT-03: headers the verifier must not ignore (crit, b64, typ, nested JWT)', async (t) => {
  const header = { alg: active.alg, typ: 'at+jwt', kid: active.kid }
  t.equal((await callMcp(rawSigned(header, payload()))).status, 502, 'control: the raw signer makes genuine tokens')
  await refused(t, 'crit with an unknown extension', rawSigned({ ...header, crit: ['urn:example:must-understand'], 'urn:example:must-understand': true }, payload()))
  await refused(t, 'crit naming a registered header', rawSigned({ ...header, crit: ['kid'] }, payload()))
  await refused(t, 'payload not JSON', rawSigned(header, 'not json'))
  await refused(t, 'payload a JSON array', rawSigned(header, '[1,2]'))
  await refused(t, 'duplicate-looking alg spelled none', rawSigned({ ...header, alg: 'None' }, payload()))
  await refused(t, 'unencoded payload (b64:false)', rawSigned({ ...header, b64: false, crit: ['b64'] }, payload()))
  for (const typ of [undefined, 'JWT', 'jwt', 'id_token+jwt', 'at+jwt ', 'dpop+jwt']) {
    await refused(t, `typ ${String(typ)}`, await realSigned({}, { typ }))
  }
  const inner = await realSigned()
  const nested = await new CompactSign(new TextEncoder().encode(inner)).setProtectedHeader({ alg: active.alg, typ: 'at+jwt', cty: 'JWT', kid: active.kid }).sign(active.privateKey)
  await refused(t, 'nested JWT (cty JWT)', nested)
})

t.test('RI-08 MCPS-07 BCP-08: audience, issuer and time claims', async (t) => {
  const uri = h.resource(0)
  for (const [what, aud] of [
    ['aud of the other resource of this gateway', h.resource(1)],
    ['aud with a trailing slash', `${uri}/`],
    ['aud in upper case', uri.toUpperCase()],
    ['aud with the host in upper case', uri.replace('localhost', 'LOCALHOST')],
    ['aud = the issuer', gw.config.issuer],
    ['aud = the origin', new URL(uri).origin],
    ['aud missing', undefined],
    ['aud empty array', []],
    ['aud array without us', ['https://other.example/mcp', h.resource(1)]],
    ['aud as a prefix', uri.slice(0, -1)],
  ] as const) {
    await refused(t, what, await realSigned({ aud }))
  }
  // RFC 7519 §4.1.3 / RFC 9068 §4: aud must *contain* this resource; an array naming it is valid.
  t.equal((await callMcp(await realSigned({ aud: [uri, 'https://other.example/mcp'] }))).status, 502, 'aud array with our URI: accepted (RFC 9068 §4)')
  for (const [what, over] of [
    ['iss with a trailing slash', { iss: `${gw.config.issuer}/` }],
    ['iss of another issuer', { iss: 'https://evil.example' }],
    ['iss missing', { iss: undefined }],
    ['exp missing', { exp: undefined }],
    ['exp past the tolerance', { exp: now() - 3600 }],
    ['exp as a string', { exp: String(now() + 300) }],
    ['nbf in the future', { nbf: now() + 3600 }],
    ['iat as a string', { iat: 'now' }],
    ['iat an hour in the future', { iat: now() + 3600 }],
    ['sub missing', { sub: undefined }],
    ['sub empty', { sub: '' }],
    ['client_id not a string', { client_id: ['a', 'b'] }],
    ['jti not a string', { jti: 42 }],
  ] as const) {
    await refused(t, what, await realSigned(over as Record<string, unknown>))
  }
})

t.test('RI-08: a token the authorization server issued for resource A is refused at resource B', async (t) => {
  const tokens = await h.tokens(t, PUBLIC, { resource: h.resource(0), scope: 'mcp' })
  t.equal((await callMcp(tokens.access_token, 0)).status, 502, 'accepted at its own resource')
  await refused(t, 'the same token at the other resource', tokens.access_token, 1)
  await refused(t, 'its refresh token as a bearer token', tokens.refresh_token!, 0)
})

t.test('BRR-01 RFC 6750 §2: odd token carriage is refused in the protocol\'s form, never a 500', async (t) => {
  const genuine = await realSigned()
  const query = await fetch(`${h.resource(0)}?access_token=${genuine}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: INIT })
  t.equal(query.status, 400, 'token in the query: 400')
  await query.text()
  const two = await callMcp(genuine, 0, { Authorization: `Bearer ${genuine}` })
  t.ok(two.status === 400 || two.status === 401, `two Authorization headers: ${two.status}`)
  const long = await callMcp(`${'a'.repeat(12_000)}.${'b'.repeat(12_000)}.${'c'.repeat(100)}`)
  t.ok(long.status === 401 || long.status === 431 || long.status === 400, `a 24 KB token: ${long.status}`)
  const odd = await callMcp('a.b.c d')
  t.equal(odd.status, 400, 'a space inside the token: 400 invalid_request')
  const garbage = await callMcp('eyJhbGciOiJub25lIn0.e30.')
  t.equal(garbage.status, 401)
})

t.test('O21-10 BCP-06: refresh tokens cannot be widened, switched or used by another client', async (t) => {
  const narrow = await h.tokens(t, PUBLIC, { scope: 'mcp' })
  const widened = await h.refresh(t, PUBLIC, narrow.refresh_token!, { scope: 'mcp admin' })
  t.equal(widened.body.error, 'invalid_scope', 'widening: invalid_scope')
  const unknownScope = await h.refresh(t, PUBLIC, narrow.refresh_token!, { scope: 'root' })
  t.equal(unknownScope.body.error, 'invalid_scope', 'an unknown scope: invalid_scope')
  const switched = await h.refresh(t, PUBLIC, narrow.refresh_token!, { resource: h.resource(1) })
  t.equal(switched.body.error, 'invalid_target', 'RI-07: another resource: invalid_target')
  const rotated = await h.refresh(t, PUBLIC, narrow.refresh_token!)
  t.equal(rotated.status, 200, 'the token survived every refused attempt')
  t.equal(claims(rotated.body.access_token).scope, 'mcp', 'and still carries only mcp')
  t.equal(claims(rotated.body.access_token).aud, h.resource(0))

  const victim = await h.tokens(t, PUBLIC, { scope: 'mcp' })
  const stolen = await h.refresh(t, OTHER_PUBLIC, victim.refresh_token!)
  t.equal(stolen.body.error, 'invalid_grant', 'another client presenting it: invalid_grant')
  const confidential = await h.refresh(t, { id: BASIC.id, auth: 'none' }, victim.refresh_token!)
  t.equal(confidential.status, 401, 'a confidential client id without its secret: invalid_client')
  const accessAsRefresh = await h.refresh(t, PUBLIC, victim.access_token)
  t.equal(accessAsRefresh.body.error, 'invalid_grant', 'an access token is no refresh token')
})

t.test('OQ-11, REF-03: concurrent refreshes with one token: exactly one rotation, every racer answered with it; the grant survives', async (t) => {
  const start = await h.tokens(t, PUBLIC, { scope: 'mcp' })
  const answers = await Promise.all(Array.from({ length: 8 }, () => h.refresh(t, PUBLIC, start.refresh_token!)))
  t.same(answers.map((a) => a.status), Array(8).fill(200), 'every racer gets an answer inside the grace window (REF-01)')
  const successors = new Set(answers.map((a) => a.body.refresh_token as string))
  t.equal(successors.size, 1, 'exactly one rotation: one successor refresh token, handed to all')
  t.not([...successors][0], start.refresh_token, 'and it is a new one')
  t.equal(new Set(answers.map((a) => a.body.access_token)).size, 8, 'each its own access token')
  t.equal((await h.refresh(t, PUBLIC, [...successors][0]!)).status, 200, 'the rotated token works')
})

t.test('MCPA-62: no token or secret in the log; no 500', async (t) => {
  h.checkLog(t)
  t.notMatch(gw.logText(), /"level":50/, 'no error-level log line')
})
