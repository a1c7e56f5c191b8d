/**
 * Red team: the registration endpoint's tokens, methods, ids and limits (RFC 7591 §3,
 * RFC 7592; DCR-01, DCR-05, SEC-05, CIMD-33). Real HTTP, real gateway, memory store (both
 * stores run the same checks in test/oauth/register.test.ts).
 */
import t, { type Test } from 'tap'
import { isRegisteredClientId } from '../../src/oauth/clients/registered.js'
import { startTestGateway, type TestGateway } from '../helpers/gateway.js'

type Json = Record<string, any>
const IAT = 'initial-access-token-0123456789abcdefghij'
const native = (name: string, port = 33333) => ({ client_name: name, redirect_uris: [`http://127.0.0.1:${port}/callback`] })

async function start(t: Test, registration: Json = {}): Promise<TestGateway> {
  return startTestGateway(t, {
    resources: [{ upstream: 'http://127.0.0.1:9/mcp' }],
    config: {
      registration: { enabled: true, rateLimit: { perAddress: 10_000 }, ...registration },
      clients: [{ clientId: 'static-app', name: 'Operator registered', redirectUris: ['http://127.0.0.1/callback'] }],
    },
  })
}

async function register(gw: TestGateway, body: unknown, headers: Record<string, string> = {}) {
  const res = await fetch(`${gw.origin}/oauth/register`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify(body),
  })
  return { res, body: (await res.json()) as Json }
}

const call = (url: string, method: string, headers: Record<string, string> = {}) => fetch(url, { method, headers })
const bearer = (token: string) => ({ authorization: `Bearer ${token}` })

async function count(gw: TestGateway, prefix: string): Promise<number> {
  let n = 0
  for await (const _ of gw.gateway.store.keys(prefix)) n++
  return n
}

t.test('the registration access token: exactly this client\'s, in the header, until deleted (RFC 7592 §2, §3)', async (t) => {
  const gw = await start(t)
  const a = (await register(gw, native('A'))).body
  const b = (await register(gw, native('B'))).body
  const uri = a.registration_client_uri as string
  t.equal(uri, `${gw.origin}/oauth/register/${a.client_id}`)
  const refusedWith = async (what: string, res: Response) => {
    t.equal(res.status, 401, `${what}: 401`)
    t.equal(res.headers.get('www-authenticate'), 'Bearer error="invalid_token"', `${what}: challenge`)
    t.equal(((await res.json()) as Json).error, 'invalid_token', `${what}: OAuth error JSON`)
  }
  const token = a.registration_access_token as string
  await refusedWith('in the query', await call(`${uri}?access_token=${token}`, 'GET'))
  const form = await fetch(uri, { method: 'DELETE', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: `access_token=${token}` })
  t.equal(form.status, 415, 'in a form body: not read at all')
  t.equal(((await form.json()) as Json).error, 'unsupported_media_type')
  t.ok(await gw.gateway.store.get(`registered-client:${a.client_id}`), 'in a form body: nothing deleted')
  await refusedWith('another client\'s', await call(uri, 'GET', bearer(b.registration_access_token)))
  await refusedWith('truncated', await call(uri, 'GET', bearer(token.slice(0, -1))))
  await refusedWith('with a suffix', await call(uri, 'GET', bearer(`${token}x`)))
  await refusedWith('as Basic', await call(uri, 'GET', { authorization: `Basic ${Buffer.from(`${a.client_id}:${token}`).toString('base64')}` }))
  await refusedWith('two tokens', await call(uri, 'GET', { authorization: `Bearer ${token} ${token}` }))
  await refusedWith('for the pre-registered client', await call(`${gw.origin}/oauth/register/static-app`, 'GET', bearer(token)))
  await refusedWith('for a metadata-document id', await call(`${gw.origin}/oauth/register/${encodeURIComponent('https://app.example.com/client.json')}`, 'GET', bearer(token)))
  await refusedWith('for an id that is a path', await call(`${gw.origin}/oauth/register/${a.client_id}%2F..%2F${b.client_id}`, 'GET', bearer(token)))
  t.equal((await call(uri, 'GET', { authorization: `bearer ${token}` })).status, 200, 'the scheme is case-insensitive (RFC 9110 §11.1)')
  t.equal((await call(uri, 'DELETE', bearer(token))).status, 204)
  await refusedWith('reused after delete (GET)', await call(uri, 'GET', bearer(token)))
  await refusedWith('reused after delete (DELETE)', await call(uri, 'DELETE', bearer(token)))
  t.equal((await call(b.registration_client_uri, 'GET', bearer(b.registration_access_token))).status, 200, 'the other client is untouched')
  t.notMatch(gw.logText(), token, 'the registration access token is never logged')
})

t.test('methods: PUT, PATCH and POST on a registration, GET on the endpoint are 405 with Allow (RFC 7592 §2.2, RFC 9110 §15.5.6)', async (t) => {
  const gw = await start(t)
  const a = (await register(gw, native('A'))).body
  for (const method of ['PUT', 'PATCH', 'POST']) {
    const res = await fetch(a.registration_client_uri, {
      method,
      headers: { 'content-type': 'application/json', ...bearer(a.registration_access_token) },
      body: JSON.stringify({ ...native('Renamed'), client_id: a.client_id }),
    })
    t.equal(res.status, 405, `${method}: 405`)
    t.equal(res.headers.get('allow'), 'GET, DELETE', `${method}: Allow`)
    t.equal(((await res.json()) as Json).error, 'method_not_allowed', `${method}: OAuth error JSON`)
  }
  t.equal(((await (await call(a.registration_client_uri, 'GET', bearer(a.registration_access_token))).json()) as Json).client_name, 'A', 'nothing was updated')
  for (const method of ['GET', 'PUT', 'DELETE', 'PATCH']) {
    const res = await call(`${gw.origin}/oauth/register`, method)
    t.equal(res.status, 405, `${method} /oauth/register: 405`)
    t.equal(res.headers.get('allow'), 'POST')
  }
})

t.test('the initial access token: required, exact, and guessing it is rate-limited (DCR-01, DCR-05)', async (t) => {
  const gw = await start(t, { initialAccessToken: IAT, rateLimit: { perAddress: 5, windowSeconds: 600 } })
  const attempts: [string, Record<string, string>][] = [
    ['missing', {}],
    ['wrong', bearer(`${IAT.slice(0, -1)}X`)],
    ['a prefix', bearer(IAT.slice(0, 10))],
    ['in Basic', { authorization: `Basic ${Buffer.from(`x:${IAT}`).toString('base64')}` }],
  ]
  for (const [what, headers] of attempts) {
    const { res, body } = await register(gw, native(what), headers)
    t.equal(res.status, 401, `${what}: 401`)
    t.equal(body.error, 'invalid_token', `${what}: invalid_token`)
  }
  const inQuery = await fetch(`${gw.origin}/oauth/register?access_token=${IAT}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(native('query')),
  })
  t.equal(inQuery.status, 401, 'in the query: 401')
  const guess = await register(gw, native('sixth'), bearer(`${IAT}0`))
  t.equal(guess.res.status, 429, 'the sixth attempt from the address is rate-limited before the token is compared')
  t.equal(guess.body.error, 'too_many_requests')
  t.equal((await register(gw, native('right'), bearer(IAT))).res.status, 429, 'the limit holds for the right token too')
  t.equal(await count(gw, 'registered-client:'), 0, 'nothing was registered')
  t.notMatch(gw.logText(), IAT, 'the initial access token is never logged')
  const fresh = await start(t, { initialAccessToken: IAT })
  t.equal((await register(fresh, native('right'), bearer(IAT))).res.status, 201, 'the right token registers')
})

t.test('generated client ids are never URL-shaped and never collide with other sources (CIMD-33, SEC-05)', async (t) => {
  const gw = await start(t, { maxClients: 1000 })
  const ids = new Set<string>()
  for (let i = 0; i < 60; i++) {
    const { body } = await register(gw, { ...native(`c${i}`), client_id: i % 2 ? 'static-app' : `https://evil.example/${i}` })
    t.match(body.client_id, /^dcr\.[A-Za-z0-9_-]{22}$/)
    t.notOk(/[:/]/.test(body.client_id), 'no scheme, no path')
    t.ok(isRegisteredClientId(body.client_id))
    ids.add(body.client_id)
  }
  t.equal(ids.size, 60, 'all distinct')
  const authorize = await fetch(
    `${gw.origin}/oauth/authorize?response_type=code&client_id=static-app&redirect_uri=${encodeURIComponent('http://127.0.0.1:4444/callback')}&code_challenge=${'a'.repeat(43)}&code_challenge_method=S256`,
    { redirect: 'manual' },
  )
  t.match(await authorize.text(), /Operator registered/, 'the operator\'s client still answers to its id')
})

t.test('identical re-registration does not grow the store; the cap and the rate limit still hold (DCR-05)', async (t) => {
  const gw = await start(t, { maxClients: 3 })
  const first = (await register(gw, native('Same'))).body
  for (let port = 41000; port < 41030; port++) {
    const { res, body } = await register(gw, native('Same', port))
    t.equal(res.status, 201)
    t.equal(body.client_id, first.client_id, `port ${port}: same client`)
  }
  t.equal(await count(gw, 'registered-client:'), 1, 'one record')
  t.equal(await count(gw, 'registration-dedupe:'), 1, 'one dedupe record')
  // A different name, a different client: the cap counts those.
  t.equal((await register(gw, native('Two'))).res.status, 201)
  t.equal((await register(gw, native('Three'))).res.status, 201)
  const over = await register(gw, native('Four'))
  t.equal(over.res.status, 429)
  t.equal(over.body.error, 'registration_limit_reached')
  t.equal(await count(gw, 'registered-client:'), 3, 'the cap holds')
  t.equal(await count(gw, 'registration-dedupe:'), 3, 'a refused registration leaves no dedupe record behind')
  const confidential = { redirect_uris: ['https://app.example.com/cb'], token_endpoint_auth_method: 'client_secret_post' }
  t.equal((await register(gw, confidential)).res.status, 429, 'a confidential client is never merged, so it counts')

  const limited = await start(t, { rateLimit: { perAddress: 3, windowSeconds: 600 } })
  for (let i = 0; i < 3; i++) await register(limited, native('Same'))
  t.equal((await register(limited, native('Same'))).res.status, 429, 'identical re-registrations count against the per-address limit')
})
