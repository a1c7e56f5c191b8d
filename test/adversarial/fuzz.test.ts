/**
 * Red team: fuzzed input at every public endpoint. A seeded generator mutates well-formed
 * requests (random and known parameter names, duplicates, empty, huge, control and lone-surrogate
 * characters, malformed percent-escapes, JSON of every shape, truncated bodies, wrong content
 * types) and sends them to /oauth/token, /oauth/register, /oauth/authorize, /oauth/revoke,
 * /oauth/introspect, the metadata documents and the MCP endpoint (with good, forged and junk
 * credentials); it signs DPoP proofs with fuzzed headers and claims, and serves fuzzed Client ID
 * Metadata Documents. Every answer must be the protocol's own refusal, never a 5xx from the gateway:
 * - OAuth endpoints: 4xx JSON {error, error_description} (RFC 6749 §5.2, RFC 7591 §3.2.2);
 * - /oauth/authorize: an error page, or a redirect only to the gateway's own pages or a
 *   registered redirect URI (O21-04: never to an unchecked URI, RFC 9700 §4.1);
 * - the MCP endpoint: 401 with a WWW-Authenticate challenge (MCPA-41) for a bad credential, a
 *   JSON-RPC error for a bad body.
 * No error-level log line (tap fails the run on a stray exception itself); afterwards a full authorization-code flow and an
 * MCP call still work, so nothing stored was corrupted.
 *
 * GATEHOUSE_FUZZ_SEED replays a run (each failure names its seed and case); GATEHOUSE_FUZZ_CASES
 * sets the cases per endpoint (default 120).
 */
import { createHash, generateKeyPairSync, randomUUID, sign } from 'node:crypto'
import { connect } from 'node:net'
import t, { type Test } from 'tap'
import { startHttpDocServer } from '../cimd/servers.js'
import { startSdk1Upstream } from '../fixtures/mcp-upstream.js'
import { startTestGateway } from '../helpers/gateway.js'
import { Harness, passwordHash, PUBLIC, registration, REGISTERED_REDIRECT, USER } from '../helpers/token-harness.js'

t.setTimeout(180_000)
const SEED = Number(process.env.GATEHOUSE_FUZZ_SEED ?? 20261207)
const CASES = Number(process.env.GATEHOUSE_FUZZ_CASES ?? 120)

const BOT_SECRET = 'fuzz-bot-secret-7c1e9a3b5d2f4e6a8b0c1d3e'
const upstream = await startSdk1Upstream({ stateful: false, jsonResponse: true })
t.teardown(() => upstream.close())
// Client ID Metadata Documents served from loopback: the dev opt-ins allow http and 127.0.0.1 here only.
const docs = await startHttpDocServer()
t.teardown(() => docs.close())
const gw = await startTestGateway(t, {
  resources: [{ upstream: upstream.url }],
  config: {
    login: { static: { users: [{ username: USER.username, passwordHash }] } },
    clients: [
      registration(PUBLIC),
      { clientId: 'bot', name: 'Bot', grantTypes: ['client_credentials'], tokenEndpointAuthMethod: 'client_secret_basic', secret: BOT_SECRET, dpopBoundAccessTokens: true },
    ],
    registration: { enabled: true },
    rateLimits: { enabled: false },
    cimd: {
      enabled: true,
      allowHttp: true,
      allowPrivateAddresses: true,
      trust: { allow: [{ prefix: `${docs.origin}/clients/` }] },
      fetch: { timeoutMs: 1500, connectTimeoutMs: 1000 },
    },
  },
})
const h = new Harness(gw)

/** mulberry32: small, seeded, and the same sequence on every machine. */
function generator(seed: number) {
  let a = seed >>> 0
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0
    let x = Math.imul(a ^ (a >>> 15), 1 | a)
    x = (x + Math.imul(x ^ (x >>> 7), 61 | x)) ^ x
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296
  }
  const int = (n: number) => Math.floor(next() * n)
  const pick = <T>(items: readonly T[]): T => items[int(items.length)]!
  const ascii = (n: number) => Array.from({ length: n }, () => String.fromCharCode(32 + int(95))).join('')
  const atom = (known: readonly string[] = []): string =>
    pick<() => string>([
      () => '',
      () => ascii(1 + int(40)),
      () => pick(known.length > 0 ? known : ['x']),
      () => pick(known.length > 0 ? known : ['x']) + pick(['\u0000', '\r\n', ' ', '%', '\ud800', 'é', '😀', '"', '<script>']),
      () => 'A'.repeat(1000 + int(20_000)),
      () => pick(['%zz', '%00', '%', '\u0000', '\ud800', '\uffff', '\\', '../..', '*', '?', '#', '&=&', '==']),
      () => String(pick([0, -1, 1e308, 2 ** 53 + 1, NaN, Infinity, -0])),
      () => pick(['null', 'true', '[]', '{}', '{"a":', '[[[[[[[[', '"x"', '1e999']),
      () => pick(['http://127.0.0.1/callback', 'http://127.0.0.1:1/callback', 'javascript:alert(1)', 'http://[::1', 'https://a b/', 'http://169.254.169.254/', 'data:,x', '//evil.example/cb', 'http://127.0.0.1/callback#frag', 'HTTP://127.0.0.1/CALLBACK']),
      () => pick(['S256', 'plain', 'code', 'token', 'mcp', 'mcp admin', 'openid', gw.mcpUrl(), gw.origin, PUBLIC.id, 'dcr.x']),
    ])()
  const json = (depth = 0, keys: readonly string[] = []): unknown =>
    pick<() => unknown>([
      () => atom(),
      () => int(2 ** 31) * (next() < 0.5 ? -1 : 1),
      () => pick([null, true, false, 1e308, -0, 0.5]),
      () => (depth > 3 ? [] : Array.from({ length: int(5) }, () => json(depth + 1, keys))),
      () =>
        depth > 3
          ? {}
          : Object.fromEntries(Array.from({ length: int(6) }, () => [next() < 0.7 && keys.length > 0 ? pick(keys) : atom(), json(depth + 1, keys)])),
    ])()
  const form = (known: Record<string, readonly string[]>): string => {
    const names = Object.keys(known)
    const pairs: [string, string][] = []
    for (let i = 0, n = int(8); i < n; i++) {
      const name = next() < 0.85 ? pick(names) : atom()
      pairs.push([name, atom(known[name] ?? [])])
    }
    const body = new URLSearchParams(pairs).toString()
    return next() < 0.15 ? mangle(body) : body
  }
  const mangle = (text: string): string =>
    pick<() => string>([
      () => text.slice(0, int(text.length + 1)),
      () => text + pick(['%', '%z', '&&&', '=', '\u0000', '\ud800']),
      () => text.replace(/=/g, pick(['', '==', '%3D'])),
      () => text.split('').reverse().join(''),
    ])()
  return { next, int, pick, atom, json, form, mangle }
}

const TOKEN_FIELDS = {
  grant_type: ['authorization_code', 'refresh_token', 'client_credentials', 'urn:ietf:params:oauth:grant-type:jwt-bearer', 'urn:ietf:params:oauth:grant-type:token-exchange', 'password', 'implicit'],
  code: ['x'],
  code_verifier: ['x'.repeat(43)],
  redirect_uri: [REGISTERED_REDIRECT],
  client_id: [PUBLIC.id],
  client_secret: ['s'],
  refresh_token: ['x'],
  resource: [],
  scope: [],
  assertion: ['eyJhbGciOiJub25lIn0.e30.', 'a.b.c'],
  client_assertion: ['a.b.c'],
  client_assertion_type: ['urn:ietf:params:oauth:client-assertion-type:jwt-bearer'],
  subject_token: ['a.b.c'],
  subject_token_type: ['urn:ietf:params:oauth:token-type:id-jag', 'urn:ietf:params:oauth:token-type:access_token'],
  requested_token_type: [],
  audience: [],
}
const AUTHORIZE_FIELDS = {
  response_type: ['code', 'token', 'code id_token'],
  client_id: [PUBLIC.id, 'https://127.0.0.1/client.json'],
  redirect_uri: [REGISTERED_REDIRECT],
  code_challenge: ['E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM'],
  code_challenge_method: ['S256', 'plain'],
  scope: [],
  state: [],
  resource: [],
  prompt: ['none', 'login', 'consent'],
  request: ['a.b.c'],
  request_uri: ['urn:x'],
}
const REVOKE_FIELDS = { token: ['x'], token_type_hint: ['access_token', 'refresh_token'], client_id: [PUBLIC.id], client_secret: ['s'] }
const REGISTER_KEYS = ['redirect_uris', 'client_name', 'grant_types', 'response_types', 'token_endpoint_auth_method', 'scope', 'jwks', 'jwks_uri', 'logo_uri', 'client_uri', 'software_statement', 'contacts']
const CONTENT_TYPES = ['application/x-www-form-urlencoded', 'application/json', 'text/plain', 'multipart/form-data; boundary=x', 'application/x-www-form-urlencoded; charset=latin1', '']

interface Seen {
  status: number
  headers: Headers
  text: string
}

/** fetch refuses header values outside Latin-1 before sending, so the fuzzer keeps them to visible ASCII. */
const visible = (value: string) => value.replace(/[^\x20-\x7e]/g, '')

async function send(url: string, init: RequestInit & { headers?: Record<string, string> }): Promise<Seen> {
  const headers = Object.fromEntries(Object.entries(init.headers ?? {}).map(([k, v]) => [k, visible(v)]))
  const res = await fetch(url, { redirect: 'manual', ...init, headers })
  return { status: res.status, headers: res.headers, text: await res.text() }
}

function jsonOf(text: string): Record<string, unknown> | undefined {
  try {
    const v = JSON.parse(text) as unknown
    return v && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : undefined
  } catch {
    return undefined
  }
}

/** Only failures are reported, each with the seed and case that replay it; one pass per endpoint. */
function expectAll(t: Test, endpoint: string, failures: string[]) {
  t.same(failures.slice(0, 5), [], `${endpoint}: ${CASES} fuzzed requests, each refused in the protocol's form (seed ${SEED})`)
}

function oauthError(seen: Seen): string | undefined {
  if (seen.status >= 500) return `status ${seen.status}`
  if (seen.status < 400) return undefined
  const body = jsonOf(seen.text)
  if (!/^application\/json/.test(seen.headers.get('content-type') ?? '')) return `${seen.status} is not JSON: ${seen.text.slice(0, 80)}`
  if (typeof body?.error !== 'string' || !/^[a-z_]+$/.test(body.error)) return `${seen.status} without an error code: ${seen.text.slice(0, 80)}`
  return undefined
}

for (const [endpoint, fields] of [
  ['/oauth/token', TOKEN_FIELDS],
  ['/oauth/revoke', REVOKE_FIELDS],
  ['/oauth/introspect', REVOKE_FIELDS],
] as const) {
  t.test(`${endpoint}: fuzzed forms get OAuth error JSON, never a 5xx`, async (t) => {
    const g = generator(SEED + endpoint.length)
    const failures: string[] = []
    for (let i = 0; i < CASES; i++) {
      const headers: Record<string, string> = { 'content-type': g.next() < 0.8 ? CONTENT_TYPES[0]! : g.pick(CONTENT_TYPES) }
      if (g.next() < 0.3) headers.authorization = g.pick(['Basic ', 'Basic %%%', `Basic ${Buffer.from(`${g.atom()}:${g.atom()}`).toString('base64')}`, 'Bearer x', g.atom()])
      const body = g.form(fields)
      const seen = await send(`${gw.origin}${endpoint}`, { method: 'POST', headers, body })
      const problem = oauthError(seen)
      if (problem) failures.push(`case ${i}: ${problem} for ${JSON.stringify(body.slice(0, 200))}`)
    }
    expectAll(t, endpoint, failures)
  })
}

t.test('/oauth/register: fuzzed metadata gets 201 or RFC 7591 error JSON, never a 5xx', async (t) => {
  const g = generator(SEED + 1)
  const failures: string[] = []
  for (let i = 0; i < CASES; i++) {
    let body = JSON.stringify(g.json(0, REGISTER_KEYS))
    if (g.next() < 0.2) body = g.mangle(body)
    const seen = await send(`${gw.origin}/oauth/register`, { method: 'POST', headers: { 'content-type': g.next() < 0.9 ? 'application/json' : g.pick(CONTENT_TYPES) }, body })
    const problem = oauthError(seen)
    if (problem) failures.push(`case ${i}: ${problem} for ${body.slice(0, 200)}`)
    else if (seen.status === 201 && typeof jsonOf(seen.text)?.client_id !== 'string') failures.push(`case ${i}: 201 without a client_id`)
  }
  expectAll(t, '/oauth/register', failures)
})

t.test('/oauth/authorize: a fuzzed query gets an error page or a redirect to a registered URI only (O21-04)', async (t) => {
  const g = generator(SEED + 2)
  const failures: string[] = []
  for (let i = 0; i < CASES; i++) {
    const query = g.form(AUTHORIZE_FIELDS)
    const seen = await send(`${gw.origin}/oauth/authorize?${query}`, { method: g.next() < 0.8 ? 'GET' : 'POST' })
    const location = seen.headers.get('location')
    if (seen.status >= 500) failures.push(`case ${i}: status ${seen.status} for ${query.slice(0, 200)}`)
    else if (location !== null) {
      const to = new URL(location, gw.origin)
      const own = to.origin === gw.origin
      // Any loopback port matches a registered loopback redirect URI (O21-04, RFC 8252 §7.3).
      const registered = to.protocol === 'http:' && to.hostname === '127.0.0.1' && to.pathname === '/callback'
      if (!own && !registered) failures.push(`case ${i}: redirected to ${location.slice(0, 120)}`)
    }
  }
  expectAll(t, '/oauth/authorize', failures)
})

t.test('metadata documents: fuzzed paths and queries never get a 5xx', async (t) => {
  const g = generator(SEED + 3)
  const failures: string[] = []
  const roots = ['/.well-known/oauth-protected-resource', '/.well-known/oauth-authorization-server', '/.well-known/openid-configuration', '/oauth/jwks', '/healthz']
  for (let i = 0; i < CASES; i++) {
    const path = `${g.pick(roots)}${g.next() < 0.5 ? g.pick(['/mcp', '/', '//', '/%2e%2e', '/%zz', '/mcp/../x']) : ''}`
    const seen = await send(`${gw.origin}${path}?${g.form({ x: [] })}`, { method: g.pick(['GET', 'HEAD', 'POST', 'OPTIONS', 'PUT']) })
    if (seen.status >= 500) failures.push(`case ${i}: status ${seen.status} for ${path}`)
  }
  expectAll(t, 'metadata', failures)
})

t.test('MCP endpoint: fuzzed credentials get a 401 challenge; fuzzed bodies a JSON-RPC error (MCPA-41)', async (t) => {
  const g = generator(SEED + 4)
  const good = await gw.mint()
  const failures: string[] = []
  const rpcKeys = ['jsonrpc', 'id', 'method', 'params', 'result', 'error', 'name', 'arguments', '_meta']
  for (let i = 0; i < CASES; i++) {
    const credential = g.pick([
      `Bearer ${good}`,
      `Bearer ${good}`,
      `Bearer ${g.mangle(good)}`,
      `DPoP ${good}`,
      `Bearer ${good.split('.').slice(0, 2).join('.')}.${g.atom()}`,
      `bearer  ${good}`,
      g.atom(),
    ])
    const headers: Record<string, string> = { authorization: credential, accept: 'application/json, text/event-stream', 'content-type': 'application/json' }
    if (g.next() < 0.2) headers.dpop = g.pick(['a.b.c', g.atom()])
    if (g.next() < 0.2) headers['mcp-protocol-version'] = g.atom(['2025-11-25', '2025-06-18', '2026-07-28'])
    if (g.next() < 0.1) headers['mcp-session-id'] = g.atom()
    let body = JSON.stringify(
      g.next() < 0.5
        ? { jsonrpc: '2.0', id: g.json(3), method: g.atom(['tools/call', 'tools/list', 'ping', 'initialize', 'resources/read', 'subscriptions/listen']), params: g.json(1, rpcKeys) }
        : g.json(0, rpcKeys),
    )
    if (g.next() < 0.2) body = g.mangle(body)
    const method = g.next() < 0.9 ? 'POST' : g.pick(['GET', 'DELETE', 'PUT'])
    const seen = await send(gw.mcpUrl(), { method, headers, ...(method !== 'GET' && { body }) })
    if (seen.status >= 500) failures.push(`case ${i}: status ${seen.status} for ${body.slice(0, 160)}`)
    else if (seen.status === 401 && !/^(Bearer|DPoP) /.test(seen.headers.get('www-authenticate') ?? '')) failures.push(`case ${i}: 401 without a challenge`)
    else if (seen.status === 400 && /json/.test(seen.headers.get('content-type') ?? '')) {
      const rpc = jsonOf(seen.text)
      const oauth = typeof rpc?.error === 'string'
      const jsonRpc = rpc?.jsonrpc === '2.0' && typeof (rpc.error as { code?: unknown } | undefined)?.code === 'number'
      if (!oauth && !jsonRpc) failures.push(`case ${i}: 400 that is neither a JSON-RPC nor an OAuth error: ${seen.text.slice(0, 120)}`)
    }
  }
  expectAll(t, 'MCP endpoint', failures)
})

t.test('DPoP: fuzzed proofs, validly signed, get invalid_dpop_proof or a DPoP challenge, never a 5xx (RFC 9449 §4.3)', async (t) => {
  const g = generator(SEED + 5)
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' })
  const jwk = publicKey.export({ format: 'jwk' }) as Record<string, unknown>
  const b64 = (v: unknown) => Buffer.from(typeof v === 'string' ? v : JSON.stringify(v)).toString('base64url')
  // Signed by hand, so that any header (another alg, a broken jwk) still carries a real ES256 signature.
  const proof = (header: unknown, claims: unknown) => {
    const input = `${b64(header)}.${b64(claims)}`
    return `${input}.${sign('sha256', Buffer.from(input), { key: privateKey, dsaEncoding: 'ieee-p1363' }).toString('base64url')}`
  }
  const basic = `Basic ${Buffer.from(`bot:${BOT_SECRET}`).toString('base64')}`
  const tokenUrl = `${gw.origin}/oauth/token`
  const good = (htm: string, htu: string, extra: Record<string, unknown> = {}) => proof({ typ: 'dpop+jwt', alg: 'ES256', jwk }, { jti: randomUUID(), htm, htu, iat: Math.floor(Date.now() / 1000), ...extra })
  const issued = await send(tokenUrl, {
    method: 'POST',
    headers: { authorization: basic, 'content-type': 'application/x-www-form-urlencoded', dpop: good('POST', tokenUrl) },
    body: new URLSearchParams({ grant_type: 'client_credentials', resource: gw.mcpUrl(), scope: 'mcp' }).toString(),
  })
  t.equal(issued.status, 200, 'a well-formed proof gets a bound token')
  const bound = String(jsonOf(issued.text)?.access_token)
  const ath = createHash('sha256').update(bound).digest('base64url')

  const fuzzedProof = (htm: string, htu: string, withAth: boolean) => {
    const header: Record<string, unknown> = { typ: 'dpop+jwt', alg: 'ES256', jwk: { ...jwk } }
    const claims: Record<string, unknown> = { jti: randomUUID(), htm, htu, iat: Math.floor(Date.now() / 1000), ...(withAth && { ath }) }
    for (let i = 0, n = 1 + g.int(3); i < n; i++) {
      const target = g.next() < 0.5 ? header : claims
      const name = g.pick(target === header ? ['typ', 'alg', 'jwk', 'kid', 'jku', 'x5c', 'crit', 'b64', g.atom()] : ['jti', 'htm', 'htu', 'iat', 'ath', 'nonce', 'exp', 'nbf', g.atom()])
      target[name] = g.pick<() => unknown>([
        () => undefined,
        () => g.json(1),
        () => g.atom(['ES256', 'RS256', 'none', 'HS256', 'dpop+jwt', 'JWT', htm, htu, `${htu}/`, htu.toUpperCase(), `${htu}?x=1`]),
        () => Math.floor(Date.now() / 1000) + g.pick([-86_400, -301, 301, 86_400, 1e12]),
        () => ({ ...jwk, ...(g.json(1, ['kty', 'crv', 'x', 'y', 'd', 'n', 'e', 'k']) as object) }),
      ])()
    }
    return g.next() < 0.1 ? g.mangle(proof(header, claims)) : g.next() < 0.05 ? g.atom() : proof(header, claims)
  }

  const failures: string[] = []
  for (let i = 0; i < CASES; i++) {
    const dpop = fuzzedProof('POST', tokenUrl, false)
    const seen = await send(tokenUrl, {
      method: 'POST',
      headers: { authorization: basic, 'content-type': 'application/x-www-form-urlencoded', dpop },
      body: new URLSearchParams({ grant_type: 'client_credentials', resource: gw.mcpUrl(), scope: 'mcp' }).toString(),
    })
    const problem = oauthError(seen)
    if (problem) failures.push(`token case ${i}: ${problem}`)
    const atResource = await send(gw.mcpUrl(), {
      method: 'POST',
      headers: { authorization: `DPoP ${bound}`, dpop: fuzzedProof('POST', gw.mcpUrl(), true), accept: 'application/json, text/event-stream', 'content-type': 'application/json' },
      body: JSON.stringify({ jsonrpc: '2.0', id: i, method: 'ping' }),
    })
    if (atResource.status >= 500) failures.push(`resource case ${i}: status ${atResource.status}`)
    else if (atResource.status === 401 && !/DPoP /.test(atResource.headers.get('www-authenticate') ?? '')) failures.push(`resource case ${i}: 401 without a DPoP challenge`)
  }
  t.same(failures.slice(0, 5), [], `DPoP: ${CASES} fuzzed proofs at the token endpoint and at the resource (seed ${SEED})`)
})

t.test('CIMD: fuzzed metadata documents get an error page, never a 5xx or a redirect to an unchecked URI (SEC-26)', async (t) => {
  const g = generator(SEED + 6)
  const redirect = 'http://127.0.0.1:43299/callback'
  const docKeys = ['client_id', 'client_name', 'redirect_uris', 'token_endpoint_auth_method', 'grant_types', 'response_types', 'scope', 'jwks', 'jwks_uri', 'logo_uri', 'client_uri', 'software_statement']
  const failures: string[] = []
  for (let i = 0; i < CASES; i++) {
    const clientId = `${docs.origin}/clients/c${i}.json`
    const valid = { client_id: clientId, client_name: 'Fuzz', redirect_uris: [redirect], token_endpoint_auth_method: 'none' }
    const document = g.pick<() => unknown>([
      () => ({ ...valid, ...(g.json(1, docKeys) as object) }),
      () => ({ ...valid, [g.pick(docKeys)]: g.json(2, docKeys) }),
      () => g.json(0, docKeys),
      () => g.mangle(JSON.stringify(valid)),
    ])()
    const status = g.next() < 0.9 ? 200 : g.pick([201, 204, 301, 404, 500])
    const contentType = g.next() < 0.85 ? 'application/json' : g.pick(['text/html', 'application/jwt', 'application/json; charset=utf-16', ''])
    docs.routes.set(`/clients/c${i}.json`, (_req, res) => {
      res.writeHead(status, contentType ? { 'content-type': contentType } : {}).end(typeof document === 'string' ? document : JSON.stringify(document))
    })
    const url = new URL('/oauth/authorize', gw.origin)
    for (const [k, v] of Object.entries({ response_type: 'code', client_id: clientId, redirect_uri: redirect, code_challenge: 'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM', code_challenge_method: 'S256', state: 's', resource: gw.mcpUrl() })) {
      url.searchParams.set(k, v)
    }
    const seen = await send(url.href, {})
    const location = seen.headers.get('location')
    if (seen.status >= 500) failures.push(`case ${i}: status ${seen.status} for ${JSON.stringify(document).slice(0, 160)}`)
    else if (location !== null && new URL(location, gw.origin).origin !== gw.origin && !location.startsWith(`${redirect}?`)) failures.push(`case ${i}: redirected to ${location.slice(0, 120)}`)
  }
  t.same(failures.slice(0, 5), [], `CIMD: ${CASES} fuzzed documents (seed ${SEED})`)
})

t.test('what the HTTP parser refuses before any route is answered in OAuth error JSON too (RFC 6749 §5.2)', async (t) => {
  const raw = (request: string) =>
    new Promise<string>((resolve, reject) => {
      const socket = connect(Number(new URL(gw.origin).port), '127.0.0.1', () => socket.end(request))
      let answer = ''
      socket.on('data', (chunk) => (answer += chunk.toString('latin1')))
      socket.on('close', () => resolve(answer))
      socket.on('error', reject)
    })
  for (const [what, request, status] of [
    ['headers over 16 KiB', `GET /mcp HTTP/1.1\r\nHost: x\r\nX-Big: ${'A'.repeat(20_000)}\r\n\r\n`, 431],
    ['a malformed request line', 'GET /mcp HTTP/9.9 extra\r\n\r\n', 400],
    ['a header without a colon', 'POST /oauth/token HTTP/1.1\r\nHost: x\r\nbroken\r\n\r\n', 400],
  ] as const) {
    const answer = await raw(request)
    const [head = '', body = ''] = answer.split('\r\n\r\n')
    t.match(head, new RegExp(`^HTTP/1\\.1 ${status} `), `${what}: ${status}`)
    t.match(head, /content-type: application\/json/i, `${what}: JSON`)
    t.same(Object.keys(jsonOf(body) ?? {}), ['error', 'error_description'], `${what}: {error, error_description}`)
  }
})

t.test('afterwards: a full flow and an MCP call still work; no error logged', async (t) => {
  const tokens = await h.tokens(t, PUBLIC, { scope: 'mcp' })
  const call = await fetch(gw.mcpUrl(), {
    method: 'POST',
    headers: { authorization: `Bearer ${tokens.access_token}`, accept: 'application/json, text/event-stream', 'content-type': 'application/json' },
    body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'ping' }),
  })
  t.equal(call.status, 200, 'a tools call with a fresh token')
  t.equal((await h.refresh(t, PUBLIC, tokens.refresh_token!)).status, 200, 'the refresh token rotates')
  t.notMatch(gw.logText(), /"level":50/, 'no error-level log line')
})
