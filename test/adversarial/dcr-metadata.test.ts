/**
 * Red team: client metadata at the registration endpoint (RFC 7591; DCR-02..05, MCPA-F02,
 * SEC-17, SEC-25). Every refusal is a 400 OAuth error JSON (invalid_redirect_uri or
 * invalid_client_metadata) and stores nothing; what is accepted is only what the gateway
 * applies. Real HTTP, real gateway.
 */
import t, { type Test } from 'tap'
import { startTestGateway, type TestGateway } from '../helpers/gateway.js'

type Json = Record<string, any>

async function start(t: Test): Promise<TestGateway> {
  return startTestGateway(t, {
    resources: [{ upstream: 'http://127.0.0.1:9/mcp' }],
    config: { registration: { enabled: true, rateLimit: { perAddress: 10_000 } } },
  })
}

async function post(gw: TestGateway, body: unknown, headers: Record<string, string> = { 'content-type': 'application/json' }) {
  const res = await fetch(`${gw.origin}/oauth/register`, {
    method: 'POST',
    headers,
    body: typeof body === 'string' ? body : JSON.stringify(body),
  })
  const text = await res.text()
  return { res, text, body: (text ? JSON.parse(text) : {}) as Json }
}

async function storedClients(gw: TestGateway): Promise<number> {
  let n = 0
  for await (const _ of gw.gateway.store.keys('registered-client:')) n++
  return n
}

async function refused(t: Test, gw: TestGateway, what: string, body: unknown, error: string, headers?: Record<string, string>) {
  const before = await storedClients(gw)
  const { res, body: answer } = await post(gw, body, headers)
  t.equal(res.status, 400, `${what}: 400`)
  t.equal(answer.error, error, `${what}: ${error}`)
  t.type(answer.error_description, 'string', `${what}: described`)
  t.match(res.headers.get('content-type'), /^application\/json/, `${what}: OAuth error JSON`)
  t.equal(res.headers.get('cache-control'), 'no-store', `${what}: no-store`)
  t.equal(await storedClients(gw), before, `${what}: nothing stored`)
}

const gw = await start(t)

t.test('redirect URI tricks are invalid_redirect_uri (DCR-05, SEC-17, RFC 8252 §7.3)', async (t) => {
  const cases: [string, string][] = [
    ['http on a public host', 'http://app.example.com/cb'],
    ['http on a host that starts like loopback', 'http://127.0.0.1.evil.example/cb'],
    ['http on localhost as a subdomain', 'http://localhost.evil.example/cb'],
    ['http on localhost. (trailing dot)', 'http://localhost./cb'],
    ['http on 0.0.0.0', 'http://0.0.0.0/cb'],
    ['http on IPv4-mapped IPv6', 'http://[::ffff:127.0.0.1]/cb'],
    ['loopback in short form 127.1', 'http://127.1/cb'],
    ['loopback in hex 0x7f000001', 'http://0x7f000001/cb'],
    ['loopback as a decimal integer', 'http://2130706433/cb'],
    ['https without // (parser repairs it)', 'https:app.example.com/cb'],
    ['https with a backslash authority', 'https:/\\app.example.com/cb'],
    ['backslash before @ (parser differential)', 'http://127.0.0.1\\@evil.example/cb'],
    ['empty userinfo', 'https://@app.example.com/cb'],
    ['empty user and password', 'https://:@app.example.com/cb'],
    ['userinfo', 'https://user:pw@app.example.com/cb'],
    ['empty authority', 'https:///cb'],
    ['space in the path', 'https://app.example.com/c b'],
    ['newline in the host', 'https://app.example\n.com/cb'],
    ['tab at the end', 'https://app.example.com/cb\t'],
    ['leading space', ' https://app.example.com/cb'],
    ['bidi override in the path', 'https://app.example.com/\u202ecb'],
    ['line separator in the path', 'https://app.example.com/\u2028cb'],
    ['non-ASCII host', 'https://аpple.com/cb'],
    ['fragment', 'https://app.example.com/cb#x'],
    ['empty fragment', 'https://app.example.com/cb#'],
    ['wildcard host', 'https://*.example.com/cb'],
    ['wildcard path', 'https://app.example.com/*'],
    ['javascript:', 'javascript:alert(1)'],
    ['javascript: upper case', 'JavaScript:alert(1)'],
    ['data:', 'data:text/html,<script>alert(1)</script>'],
    ['vbscript:', 'vbscript:msgbox(1)'],
    ['file:', 'file:///etc/passwd'],
    ['about:blank', 'about:blank'],
    ['a private-use scheme without a dot', 'myapp:/cb'],
    ['relative', '/cb'],
    ['scheme-relative', '//app.example.com/cb'],
    ['port out of range', 'http://localhost:99999/cb'],
    ['too long', `https://app.example.com/${'a'.repeat(2000)}`],
  ]
  for (const [what, uri] of cases) await refused(t, gw, what, { redirect_uris: [uri] }, 'invalid_redirect_uri')
  await refused(t, gw, 'not a string', { redirect_uris: [42] }, 'invalid_redirect_uri')
  await refused(t, gw, 'null', { redirect_uris: null }, 'invalid_redirect_uri')
  await refused(t, gw, 'an object', { redirect_uris: { 0: 'https://app.example.com/cb' } }, 'invalid_redirect_uri')
  await refused(t, gw, 'one bad among good', { redirect_uris: ['https://app.example.com/cb', 'http://evil.example/cb'] }, 'invalid_redirect_uri')
})

t.test('redirect URIs every parser reads alike are accepted as written (DCR-02)', async (t) => {
  const cases: [string, string, 'native' | 'web'][] = [
    ['loopback IPv4 with a port', 'http://127.0.0.1:33333/callback', 'native'],
    ['localhost', 'http://localhost:8080/callback', 'native'],
    ['IPv6 loopback', 'http://[::1]:9000/cb', 'native'],
    ['private-use scheme', 'com.example.app:/oauth/cb', 'native'],
    ['https with a query', 'https://app.example.com/cb?tenant=a', 'web'],
    ['https on an IP literal', 'https://192.0.2.10/cb', 'web'],
  ]
  for (const [what, uri, type] of cases) {
    const { res, body } = await post(gw, { client_name: what, redirect_uris: [uri] })
    t.equal(res.status, 201, `${what}: 201`)
    t.same(body.redirect_uris, [uri], `${what}: registered exactly as sent`)
    t.equal(body.application_type, type, `${what}: ${type}`)
  }
})

t.test('application_type must agree with the redirect URIs (MCPA-F02, RFC 8252 §7)', async (t) => {
  await refused(t, gw, 'native with https', { application_type: 'native', redirect_uris: ['https://app.example.com/cb'] }, 'invalid_redirect_uri')
  await refused(t, gw, 'web with loopback', { application_type: 'web', redirect_uris: ['http://localhost/cb'] }, 'invalid_redirect_uri')
  await refused(t, gw, 'web with a private-use scheme', { application_type: 'web', redirect_uris: ['com.example.app:/cb'] }, 'invalid_redirect_uri')
  await refused(t, gw, 'a mix without application_type', { redirect_uris: ['https://app.example.com/cb', 'http://127.0.0.1/cb'] }, 'invalid_client_metadata')
  for (const value of ['NATIVE', 'browser', '', null, 1, ['native']]) {
    await refused(t, gw, `application_type ${JSON.stringify(value)}`, { application_type: value, redirect_uris: ['http://127.0.0.1/cb'] }, 'invalid_client_metadata')
  }
})

t.test('token_endpoint_auth_method: only the configured ones; a caller cannot pick its secret (DCR-02, DCR-04)', async (t) => {
  const base = { redirect_uris: ['https://app.example.com/cb'] }
  for (const method of ['private_key_jwt', 'tls_client_auth', 'self_signed_tls_client_auth', 'client_secret_jwt', 'NONE', '', null, 0, ['none']]) {
    await refused(t, gw, `method ${JSON.stringify(method)}`, { ...base, token_endpoint_auth_method: method }, 'invalid_client_metadata')
  }
  const chosen = 'caller-chosen-secret-0123456789abcdef'
  const pub = await post(gw, { ...base, client_name: 'none with a secret', token_endpoint_auth_method: 'none', client_secret: chosen, client_secret_expires_at: 1 })
  t.equal(pub.res.status, 201)
  t.notOk('client_secret' in pub.body, 'a public client gets no secret, not even the one it sent')
  t.notOk('client_secret_expires_at' in pub.body)
  const conf = await post(gw, { ...base, client_name: 'basic', token_endpoint_auth_method: 'client_secret_basic', client_secret: chosen, client_id: 'https://evil.example/client' })
  t.equal(conf.res.status, 201)
  t.not(conf.body.client_secret, chosen, 'the gateway generates the secret')
  t.match(conf.body.client_id, /^dcr\.[A-Za-z0-9_-]{22}$/, 'the gateway generates the id (CIMD-33)')
  const revoke = (secret: string) =>
    fetch(`${gw.origin}/oauth/revoke`, {
      method: 'POST',
      headers: {
        'content-type': 'application/x-www-form-urlencoded',
        authorization: `Basic ${Buffer.from(`${conf.body.client_id}:${secret}`).toString('base64')}`,
      },
      body: 'token=x',
    })
  t.equal((await revoke(chosen)).status, 401, 'the secret the caller chose does not authenticate')
  t.equal((await revoke(conf.body.client_secret)).status, 200, 'the generated one does')
})

t.test('grant and response types: authorization code only, consistent (DCR-04)', async (t) => {
  const base = { redirect_uris: ['http://127.0.0.1/cb'] }
  const cases: [string, Json][] = [
    ['implicit', { grant_types: ['implicit'], response_types: ['token'] }],
    ['implicit with code', { grant_types: ['authorization_code', 'implicit'] }],
    ['password', { grant_types: ['authorization_code', 'password'] }],
    ['client_credentials', { grant_types: ['client_credentials'] }],
    ['device code', { grant_types: ['authorization_code', 'urn:ietf:params:oauth:grant-type:device_code'] }],
    ['jwt bearer', { grant_types: ['urn:ietf:params:oauth:grant-type:jwt-bearer'] }],
    ['refresh_token without authorization_code', { grant_types: ['refresh_token'] }],
    ['grant_types empty', { grant_types: [] }],
    ['grant_types null', { grant_types: null }],
    ['grant_types with a number', { grant_types: ['authorization_code', 1] }],
    ['response_types token', { response_types: ['token'] }],
    ['response_types code id_token', { response_types: ['code id_token'] }],
    ['response_types code and token', { response_types: ['code', 'token'] }],
    ['response_types empty', { response_types: [] }],
    ['response_types a string', { response_types: 'code' }],
  ]
  for (const [what, extra] of cases) await refused(t, gw, what, { ...base, ...extra }, 'invalid_client_metadata')
  const ok = await post(gw, { ...base, client_name: 'dupes', grant_types: ['authorization_code', 'authorization_code', 'refresh_token'], response_types: ['code', 'code'] })
  t.equal(ok.res.status, 201)
  t.same(ok.body.grant_types, ['authorization_code', 'refresh_token'], 'duplicates collapse')
  t.same(ok.body.response_types, ['code'])
})

t.test('client_name is untrusted text: no control, zero-width or bidi characters; HTML is kept as text (SEC-25)', async (t) => {
  const base = { redirect_uris: ['http://127.0.0.1/cb'] }
  const bad = ['Good\u202eppA', 'Good\u2066App', '\u200b', 'Zero\u200bWidth', 'A\u0000B', 'A\nB', 'A\u2028B', '\ufeffApp', '   ', '', 'x'.repeat(101), 42, null, ['x'], { x: 1 }]
  // Labels spell the characters out: a raw U+2028 would end the TAP line.
  const label = (v: unknown) => JSON.stringify(v)?.replace(/[^\x20-\x7e]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`)
  for (const name of bad) await refused(t, gw, `client_name ${label(name)}`, { ...base, client_name: name }, 'invalid_client_metadata')
  const html = '<script>alert(1)</script><img src=x onerror=alert(2)>'
  const { res, body } = await post(gw, { ...base, client_name: html })
  t.equal(res.status, 201)
  t.equal(body.client_name, html, 'stored as the text it is')
  t.equal(res.headers.get('content-type'), 'application/json; charset=utf-8', 'answered as JSON, never HTML')
  t.equal((await post(gw, { ...base, client_name: '  Padded  ' })).body.client_name, 'Padded', 'trimmed')
  t.equal((await post(gw, { ...base, client_name: 'Émoji 🚀 客户端' })).res.status, 201, 'other Unicode text is fine')
})

t.test('metadata the gateway does not use is ignored, never stored or echoed: URIs, scope, software_statement (RFC 7591 §2, §3.1.1)', async (t) => {
  const extra = {
    client_name: 'Ignored extras',
    logo_uri: 'javascript:alert(1)',
    client_uri: 'data:text/html,<b>x</b>',
    policy_uri: 'javascript:alert(2)',
    tos_uri: '<script>alert(3)</script>',
    jwks_uri: 'https://evil.example/jwks',
    scope: 'admin root unknown-scope',
    contacts: ['<b>x</b>'],
    software_id: 'x',
    software_version: '1',
    // RFC 7591 §3.1.1: a server that does not process software statements may ignore them.
    software_statement: 'eyJhbGciOiJub25lIn0.eyJyZWRpcmVjdF91cmlzIjpbImh0dHA6Ly9ldmlsLmV4YW1wbGUvY2IiXX0.',
    registration_access_token: 'mine',
    client_id_issued_at: 1,
  }
  const { res, body } = await post(gw, { redirect_uris: ['http://127.0.0.1/cb'], ...extra })
  t.equal(res.status, 201)
  for (const key of Object.keys(extra)) {
    if (key === 'client_name' || key === 'registration_access_token' || key === 'client_id_issued_at') continue
    t.notOk(key in body, `${key} not echoed`)
  }
  t.not(body.registration_access_token, 'mine', 'the registration access token is generated')
  t.not(body.client_id_issued_at, 1, 'the issue time is the gateway\'s')
  t.same(body.redirect_uris, ['http://127.0.0.1/cb'], 'the software statement did not add its redirect URI')
  const stored = (await gw.gateway.store.get(`registered-client:${body.client_id}`))!
  t.notMatch(stored, /javascript|evil\.example|admin|software/, 'nothing unused is stored')
})

t.test('bodies: size and array bounds, JSON only, duplicate keys, __proto__ (DCR-03, DCR-05)', async (t) => {
  const big = await post(gw, { redirect_uris: ['http://127.0.0.1/cb'], client_name: 'x', padding: 'x'.repeat(20_000) })
  t.equal(big.res.status, 413, 'a body over 16 KiB')
  t.equal(big.body.error, 'payload_too_large')
  const longArray = await post(gw, { redirect_uris: ['http://127.0.0.1/cb'], grant_types: Array(3000).fill('authorization_code') })
  t.equal(longArray.res.status, 413, 'a long array is bounded by the body size')
  await refused(t, gw, '11 redirect URIs', { redirect_uris: Array.from({ length: 11 }, (_, i) => `http://127.0.0.1/cb${i}`) }, 'invalid_redirect_uri')
  await refused(t, gw, 'not JSON', '{"redirect_uris": [', 'invalid_client_metadata')
  await refused(t, gw, 'empty body', '', 'invalid_client_metadata')
  await refused(t, gw, '__proto__ key', '{"__proto__":{"token_endpoint_auth_method":"client_secret_basic"},"redirect_uris":["http://127.0.0.1/cb"]}', 'invalid_client_metadata')
  await refused(t, gw, 'constructor.prototype key', '{"constructor":{"prototype":{"x":1}},"redirect_uris":["http://127.0.0.1/cb"]}', 'invalid_client_metadata')
  for (const raw of ['42', '"x"', 'true', 'null', '[]']) await refused(t, gw, `body ${raw}`, raw, 'invalid_client_metadata')
  // Duplicate keys: the last wins, and it is the value that is both checked and stored.
  await refused(t, gw, 'duplicate key, bad one last', '{"redirect_uris":["http://127.0.0.1/cb"],"redirect_uris":["http://evil.example/cb"]}', 'invalid_redirect_uri')
  const dup = await post(gw, '{"client_name":"dup","redirect_uris":["http://evil.example/cb"],"redirect_uris":["http://127.0.0.1/dup"]}')
  t.equal(dup.res.status, 201)
  t.same(dup.body.redirect_uris, ['http://127.0.0.1/dup'], 'what is stored is what was checked')
  for (const type of ['application/x-www-form-urlencoded', 'text/plain', 'multipart/form-data; boundary=x', 'application/jose', 'application/merge-patch+json']) {
    const { res, body } = await post(gw, { redirect_uris: ['http://127.0.0.1/cb'] }, { 'content-type': type })
    t.equal(res.status, 415, `${type}: 415`)
    t.equal(body.error, 'unsupported_media_type', `${type}: OAuth error JSON`)
  }
  const none = await fetch(`${gw.origin}/oauth/register`, { method: 'POST', body: new Blob([JSON.stringify({ redirect_uris: ['http://127.0.0.1/cb'] })]) })
  t.equal(none.status, 415, 'no content type')
  const charset = await post(gw, { client_name: 'charset', redirect_uris: ['http://127.0.0.1/cb'] }, { 'content-type': 'application/json; charset=utf-8' })
  t.equal(charset.res.status, 201, 'application/json with a charset parameter is JSON')
  t.notMatch(gw.logText(), /"stack"/, 'no failure was logged with a stack')
})
