/**
 * Dynamic client registration refusals and limits (RFC 7591, RFC 7592; DCR-01..05, MCPA-F02),
 * on both stores: metadata validation, secrets, initial and registration access tokens,
 * id separation from pre-registered clients, the per-address rate limit, the global cap, and
 * deduplication of identical re-registration.
 */
import t, { type Test } from 'tap'
import { ConfigError, loadConfigObject } from '../../src/config/load.js'
import { MemoryStore } from '../../src/store/memory.js'
import type { Store } from '../../src/store/store.js'
import { isRegisteredClientId, RegisteredClients } from '../../src/oauth/clients/registered.js'
import { startTestGateway, type TestGateway } from '../helpers/gateway.js'
import { redisForTests } from '../helpers/redis.js'

type Json = Record<string, any>
const UPSTREAM = 'http://127.0.0.1:9/mcp' // never called here
const IAT = 'initial-access-token-0123456789abcdef'
const native = (extra: Json = {}) => ({
  client_name: 'CLI',
  redirect_uris: ['http://127.0.0.1:33333/callback'],
  ...extra,
})

async function start(t: Test, store: Json | undefined, registration: Json = {}, config: Json = {}): Promise<TestGateway> {
  return startTestGateway(t, {
    ...(store && { store }),
    resources: [{ upstream: UPSTREAM }],
    config: {
      registration: { enabled: true, rateLimit: { perAddress: 1000 }, ...registration },
      clients: [{ clientId: 'test-client', name: 'Pre-registered', redirectUris: ['http://127.0.0.1/callback'] }],
      ...config,
    },
  })
}

async function register(gw: TestGateway, body: unknown, headers: Record<string, string> = {}) {
  const res = await fetch(`${gw.origin}/oauth/register`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  })
  return { res, body: (res.status === 204 ? {} : await res.json()) as Json }
}

async function registeredKeys(gw: TestGateway): Promise<string[]> {
  const keys: string[] = []
  for await (const key of gw.gateway.store.keys('registered-client:')) keys.push(key)
  return keys
}

function suite(t: Test, store: () => Promise<Json | undefined>) {
  t.test('metadata advertises registration_endpoint only when enabled; disabled endpoint is 404 (DCR-01)', async (t) => {
    const on = await start(t, await store())
    const meta = (await (await fetch(`${on.origin}/.well-known/oauth-authorization-server`)).json()) as Json
    t.equal(meta.registration_endpoint, `${on.origin}/oauth/register`)
    const off = await start(t, await store(), { enabled: false })
    const offMeta = (await (await fetch(`${off.origin}/.well-known/oauth-authorization-server`)).json()) as Json
    t.notOk('registration_endpoint' in offMeta)
    const { res, body } = await register(off, native())
    t.equal(res.status, 404)
    t.equal(body.error, 'not_found')
  })

  t.test('redirect URIs are refused with invalid_redirect_uri (DCR-03, DCR-05, MCPA-F02)', async (t) => {
    const gw = await start(t, await store())
    const cases: [string, Json][] = [
      ['missing', { client_name: 'x' }],
      ['empty', { redirect_uris: [] }],
      ['not an array', { redirect_uris: 'https://app.example.com/cb' }],
      ['http, not loopback', { redirect_uris: ['http://app.example.com/cb'] }],
      ['fragment', { redirect_uris: ['https://app.example.com/cb#x'] }],
      ['javascript:', { redirect_uris: ['javascript:alert(1)'] }],
      ['data:', { redirect_uris: ['data:text/html,hi'] }],
      ['wildcard', { redirect_uris: ['https://*.example.com/cb'] }],
      ['credentials', { redirect_uris: ['https://user:pw@app.example.com/cb'] }],
      ['relative', { redirect_uris: ['/cb'] }],
      ['native with https', { application_type: 'native', redirect_uris: ['https://app.example.com/cb'] }],
      ['web with loopback', { application_type: 'web', redirect_uris: ['http://127.0.0.1/cb'] }],
      ['web with private-use scheme', { application_type: 'web', redirect_uris: ['com.example.app:/cb'] }],
      ['too many', { redirect_uris: Array.from({ length: 11 }, (_, i) => `https://app.example.com/cb${i}`) }],
    ]
    for (const [name, metadata] of cases) {
      const { res, body } = await register(gw, metadata)
      t.equal(res.status, 400, name)
      t.equal(body.error, 'invalid_redirect_uri', name)
      t.equal(res.headers.get('cache-control'), 'no-store', `${name}: no-store`)
      t.match(res.headers.get('content-type'), /^application\/json/, `${name}: JSON`)
    }
    t.same(await registeredKeys(gw), [], 'nothing was stored')
  })

  t.test('application_type: given, or inferred from the redirect URIs; a mix needs it (MCPA-F02)', async (t) => {
    const gw = await start(t, await store())
    t.equal((await register(gw, native())).body.application_type, 'native', 'loopback → native')
    t.equal((await register(gw, { redirect_uris: ['com.example.app:/cb'] })).body.application_type, 'native', 'private-use → native')
    t.equal((await register(gw, { redirect_uris: ['https://app.example.com/cb'] })).body.application_type, 'web', 'https → web')
    const mixed = await register(gw, { redirect_uris: ['https://app.example.com/cb', 'http://127.0.0.1/cb'] })
    t.equal(mixed.res.status, 400)
    t.equal(mixed.body.error, 'invalid_client_metadata')
    t.match(mixed.body.error_description, /application_type is required/)
    const bad = await register(gw, native({ application_type: 'desktop' }))
    t.equal(bad.body.error, 'invalid_client_metadata')
  })

  t.test('unsupported grant, response types and auth methods are refused (DCR-03, DCR-04)', async (t) => {
    const gw = await start(t, await store())
    const cases: [string, Json][] = [
      ['client_credentials', { grant_types: ['client_credentials'] }],
      ['implicit', { grant_types: ['authorization_code', 'implicit'] }],
      ['refresh_token alone', { grant_types: ['refresh_token'] }],
      ['grant_types not an array', { grant_types: 'authorization_code' }],
      ['response type token', { response_types: ['token'] }],
      ['response types empty', { response_types: [] }],
      ['private_key_jwt', { token_endpoint_auth_method: 'private_key_jwt' }],
      ['client_secret_jwt', { token_endpoint_auth_method: 'client_secret_jwt' }],
      ['jwks and jwks_uri', { jwks: { keys: [] }, jwks_uri: 'https://app.example.com/jwks' }],
      ['client_name too long', { client_name: 'x'.repeat(101) }],
      ['client_name with control characters', { client_name: 'Good\u0000App' }],
      ['client_name not a string', { client_name: 42 }],
    ]
    for (const [name, extra] of cases) {
      const { res, body } = await register(gw, native(extra))
      t.equal(res.status, 400, name)
      t.equal(body.error, 'invalid_client_metadata', name)
    }
    for (const [name, raw] of [['array body', '[]'], ['null body', 'null']] as const) {
      const { res, body } = await register(gw, raw)
      t.equal(res.status, 400, name)
      t.equal(body.error, 'invalid_client_metadata', name)
    }
    const form = await fetch(`${gw.origin}/oauth/register`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: 'redirect_uris=http%3A%2F%2F127.0.0.1%2Fcb',
    })
    t.equal(form.status, 415, 'only JSON is read')
    const restricted = await start(t, await store(), { grantTypes: ['authorization_code'], tokenEndpointAuthMethods: ['none'] })
    t.equal((await register(restricted, native({ grant_types: ['authorization_code', 'refresh_token'] }))).body.error, 'invalid_client_metadata', 'refresh_token not allowed by config')
    t.equal((await register(restricted, native({ token_endpoint_auth_method: 'client_secret_basic' }))).body.error, 'invalid_client_metadata', 'confidential not allowed by config')
    t.same(await registeredKeys(gw), [], 'nothing was stored')
  })

  t.test('defaults, echo, and unknown metadata ignored (DCR-02, DCR-04)', async (t) => {
    const gw = await start(t, await store())
    const { res, body } = await register(gw, native({ logo_uri: 'https://evil.example/x.png', scope: 'admin', software_statement: 'x.y.z', extra: 1 }))
    t.equal(res.status, 201)
    t.equal(res.headers.get('cache-control'), 'no-store')
    t.match(body, {
      client_id: /^dcr\./,
      client_name: 'CLI',
      redirect_uris: ['http://127.0.0.1:33333/callback'],
      grant_types: ['authorization_code'],
      response_types: ['code'],
      token_endpoint_auth_method: 'none',
      application_type: 'native',
    })
    for (const key of ['logo_uri', 'scope', 'software_statement', 'extra', 'client_secret', 'client_secret_expires_at']) {
      t.notOk(key in body, `${key} not echoed`)
    }
    const stored = await gw.gateway.store.get(`registered-client:${body.client_id}`)
    t.notMatch(stored, /evil\.example|software_statement/, 'unknown metadata is not stored')
    t.notMatch(stored, body.registration_access_token, 'the registration access token is stored hashed')
  })

  t.test('a secret only for confidential clients, hashed, checked at the token endpoints (DCR-02)', async (t) => {
    const gw = await start(t, await store())
    const pub = await register(gw, native({ token_endpoint_auth_method: 'none' }))
    t.notOk('client_secret' in pub.body, 'no secret for a public client')
    const conf = await register(gw, { redirect_uris: ['https://app.example.com/cb'], token_endpoint_auth_method: 'client_secret_basic' })
    t.equal(conf.res.status, 201)
    t.match(conf.body.client_secret, /^[A-Za-z0-9_-]{43}$/)
    t.equal(conf.body.client_secret_expires_at, 0)
    const stored = (await gw.gateway.store.get(`registered-client:${conf.body.client_id}`))!
    t.notMatch(stored, conf.body.client_secret, 'the secret is stored hashed')
    // Revocation authenticates the client and answers 200 for any token (RFC 7009 §2.2).
    const revoke = (secret: string) =>
      fetch(`${gw.origin}/oauth/revoke`, {
        method: 'POST',
        headers: {
          'content-type': 'application/x-www-form-urlencoded',
          authorization: `Basic ${Buffer.from(`${conf.body.client_id}:${secret}`).toString('base64')}`,
        },
        body: 'token=nothing',
      })
    t.equal((await revoke(conf.body.client_secret)).status, 200, 'the issued secret authenticates')
    // One character changed, the first: the last of a base64url secret carries only some bits, and
    // it ended in the very 'A' this once wrote into it (1 run in 16), so 'another' was the same.
    const secret = conf.body.client_secret as string
    const other = (secret.startsWith('A') ? 'B' : 'A') + secret.slice(1)
    t.equal((await revoke(other)).status, 401, 'another does not')
    const introspection = await fetch(`${gw.origin}/oauth/introspect`, {
      method: 'POST',
      headers: {
        'content-type': 'application/x-www-form-urlencoded',
        authorization: `Basic ${Buffer.from(`${conf.body.client_id}:${conf.body.client_secret}`).toString('base64')}`,
      },
      body: 'token=nothing',
    })
    t.equal(introspection.status, 401, 'INT-01: a self-registered client may not introspect (no token scanning)')
    t.notMatch(gw.logText(), conf.body.client_secret, 'the secret is not logged')
    const read = await fetch(conf.body.registration_client_uri, { headers: { authorization: `Bearer ${conf.body.registration_access_token}` } })
    const info = (await read.json()) as Json
    t.notOk('client_secret' in info, 'a read cannot return the secret (only its hash is kept)')
    t.equal(info.client_secret_expires_at, 0)
  })

  t.test('an initial access token, when configured, is required and checked (DCR-01)', async (t) => {
    const gw = await start(t, await store(), { initialAccessToken: IAT })
    const none = await register(gw, native())
    t.equal(none.res.status, 401)
    t.equal(none.body.error, 'invalid_token')
    t.equal(none.res.headers.get('www-authenticate'), 'Bearer')
    const wrong = await register(gw, native(), { authorization: `Bearer ${IAT}x` })
    t.equal(wrong.res.status, 401)
    t.equal(wrong.res.headers.get('www-authenticate'), 'Bearer error="invalid_token"')
    const basic = await register(gw, native(), { authorization: `Basic ${Buffer.from(`a:${IAT}`).toString('base64')}` })
    t.equal(basic.res.status, 401)
    t.same(await registeredKeys(gw), [])
    const right = await register(gw, native(), { authorization: `Bearer ${IAT}` })
    t.equal(right.res.status, 201)
  })

  t.test('read and delete need the registration access token of that client (RFC 7592)', async (t) => {
    const gw = await start(t, await store())
    const a = (await register(gw, native({ client_name: 'A' }))).body
    const b = (await register(gw, native({ client_name: 'B' }))).body
    const call = (uri: string, method: string, token?: string) =>
      fetch(uri, { method, headers: token === undefined ? {} : { authorization: `Bearer ${token}` } })
    for (const method of ['GET', 'DELETE']) {
      const missing = await call(a.registration_client_uri, method)
      t.equal(missing.status, 401, `${method} without a token`)
      t.equal(missing.headers.get('www-authenticate'), 'Bearer error="invalid_token"')
      t.equal(((await missing.json()) as Json).error, 'invalid_token')
      t.equal((await call(a.registration_client_uri, method, 'wrong')).status, 401, `${method} with a wrong token`)
      t.equal((await call(a.registration_client_uri, method, b.registration_access_token)).status, 401, `${method} with another client's token`)
      t.equal((await call(`${gw.origin}/oauth/register/dcr.AAAAAAAAAAAAAAAAAAAAAA`, method, a.registration_access_token)).status, 401, `${method} of an unknown client`)
      t.equal((await call(`${gw.origin}/oauth/register/test-client`, method, a.registration_access_token)).status, 401, `${method} of a pre-registered client`)
    }
    t.ok(await gw.gateway.store.get(`registered-client:${a.client_id}`), 'refused deletes deleted nothing')
    const put = await fetch(a.registration_client_uri, {
      method: 'PUT',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${a.registration_access_token}` },
      body: JSON.stringify(native()),
    })
    t.equal(put.status, 405, 'no update')
    t.equal(put.headers.get('allow'), 'GET, DELETE')
    const read = await call(a.registration_client_uri, 'GET', a.registration_access_token)
    t.equal(read.status, 200)
    t.match(await read.json(), { client_id: a.client_id, client_name: 'A', registration_access_token: a.registration_access_token })
    t.equal((await call(a.registration_client_uri, 'DELETE', a.registration_access_token)).status, 204)
    t.equal((await call(a.registration_client_uri, 'GET', a.registration_access_token)).status, 401, 'gone after delete')
    const authorize = await fetch(
      `${gw.origin}/oauth/authorize?response_type=code&client_id=${a.client_id}&redirect_uri=${encodeURIComponent('http://127.0.0.1:1234/callback')}&code_challenge=${'a'.repeat(43)}&code_challenge_method=S256`,
      { redirect: 'manual' },
    )
    t.equal(authorize.status, 400, 'a deleted client cannot authorize')
    t.match(await authorize.text(), /not known to the gateway/)
    t.equal((await call(b.registration_client_uri, 'GET', b.registration_access_token)).status, 200, 'the other client is untouched')
  })

  t.test('the per-address rate limit answers 429 with Retry-After (DCR-05)', async (t) => {
    const gw = await start(t, await store(), { rateLimit: { perAddress: 3, windowSeconds: 600 } })
    for (let i = 0; i < 3; i++) t.equal((await register(gw, native({ client_name: `c${i}` }))).res.status, 201)
    const refused = await register(gw, native({ client_name: 'c4' }))
    t.equal(refused.res.status, 429)
    t.equal(refused.body.error, 'too_many_requests')
    const retry = Number(refused.res.headers.get('retry-after'))
    t.ok(retry > 0 && retry <= 600, `Retry-After ${retry}`)
    t.equal((await register(gw, { redirect_uris: ['nope'] })).res.status, 429, 'invalid requests count too')
    t.equal((await registeredKeys(gw)).length, 3)
  })

  t.test('the global cap refuses with a clear error once reached (DCR-05)', async (t) => {
    const gw = await start(t, await store(), { maxClients: 2 })
    t.equal((await register(gw, native({ client_name: 'one' }))).res.status, 201)
    t.equal((await register(gw, { redirect_uris: ['https://a.example.com/cb'], token_endpoint_auth_method: 'client_secret_post' })).res.status, 201)
    const refused = await register(gw, native({ client_name: 'three' }))
    t.equal(refused.res.status, 429)
    t.equal(refused.body.error, 'registration_limit_reached')
    t.match(refused.body.error_description, /limit of 2 dynamic client registrations/)
    t.ok(Number(refused.res.headers.get('retry-after')) > 0)
    t.equal((await registeredKeys(gw)).length, 2)
    const again = await register(gw, native({ client_name: 'one', redirect_uris: ['http://127.0.0.1:9999/callback'] }))
    t.equal(again.res.status, 201, 'an identical re-registration is still answered at the cap')
  })

  t.test('identical re-registration returns the same client and does not grow the store (DCR-05)', async (t) => {
    const gw = await start(t, await store())
    const first = (await register(gw, native())).body
    let last = first
    for (let port = 40000; port < 40020; port++) {
      // A CLI picks a new loopback port per run; the port does not matter when matching.
      last = (await register(gw, native({ redirect_uris: [`http://127.0.0.1:${port}/callback`] }))).body
      t.equal(last.client_id, first.client_id)
    }
    t.equal(last.client_id_issued_at, first.client_id_issued_at)
    t.same((await registeredKeys(gw)).length, 1, 'one record')
    let dedupe = 0
    for await (const _ of gw.gateway.store.keys('registration-dedupe:')) dedupe++
    t.equal(dedupe, 1, 'one dedupe record')
    const old = await fetch(first.registration_client_uri, { headers: { authorization: `Bearer ${first.registration_access_token}` } })
    t.equal(old.status, 401, 'the earlier registration access token was replaced')
    const current = await fetch(last.registration_client_uri, { headers: { authorization: `Bearer ${last.registration_access_token}` } })
    t.equal(current.status, 200)
    const other = (await register(gw, native({ client_name: 'Other' }))).body
    t.not(other.client_id, first.client_id, 'different metadata, different client')
    const conf1 = (await register(gw, { redirect_uris: ['https://a.example.com/cb'], token_endpoint_auth_method: 'client_secret_basic' })).body
    const conf2 = (await register(gw, { redirect_uris: ['https://a.example.com/cb'], token_endpoint_auth_method: 'client_secret_basic' })).body
    t.not(conf1.client_id, conf2.client_id, 'confidential clients are never merged (each has its own secret)')
    // After deletion the same metadata registers a new client.
    await fetch(last.registration_client_uri, { method: 'DELETE', headers: { authorization: `Bearer ${last.registration_access_token}` } })
    t.not((await register(gw, native())).body.client_id, first.client_id)
  })

  t.test('pre-registered ids always win and cannot be shadowed (DCR-05, SEC-05)', async (t) => {
    const gw = await start(t, await store())
    const { body } = await register(gw, native({ client_id: 'test-client', client_name: 'Impostor' }))
    t.match(body.client_id, /^dcr\./, 'a requested client_id is ignored')
    const authorize = await fetch(
      `${gw.origin}/oauth/authorize?response_type=code&client_id=test-client&redirect_uri=${encodeURIComponent('http://127.0.0.1:33333/callback')}&code_challenge=${'a'.repeat(43)}&code_challenge_method=S256`,
      { redirect: 'manual' },
    )
    t.equal(authorize.status, 200)
    t.match(await authorize.text(), /Pre-registered/)
  })
}

t.test('memory store', async (t) => {
  suite(t, async () => undefined)
})

t.test('Redis store', async (t) => {
  const redis = await redisForTests(t)
  if (!redis) return
  // Each gateway gets its own prefix under the test's, so counts and listings do not mix.
  let n = 0
  suite(t, async () => ({ type: 'redis', redis: redis.storeConfig({ keyPrefix: `${redis.keyPrefix}${n++}:` }) }))
})

t.test('configuration: the dcr. prefix is reserved; registration needs the built-in server', async (t) => {
  const base = { publicUrl: 'https://gw.example.com', resources: [{ id: 'r', name: 'R', path: '/mcp', upstream: UPSTREAM }] }
  const problems = (raw: Json) => {
    try {
      loadConfigObject(raw, 'test')
    } catch (err) {
      if (err instanceof ConfigError) return err.problems
      throw err
    }
    return []
  }
  t.match(problems({ ...base, clients: [{ clientId: 'dcr.mine', name: 'x', redirectUris: ['https://a.example.com/cb'] }] }), [
    { path: 'clients[0].clientId', message: /reserved for dynamically registered clients/ },
  ])
  t.match(problems({ ...base, clients: [{ clientId: 'DCR.mine', name: 'x', redirectUris: ['https://a.example.com/cb'] }] }), [
    { path: 'clients[0].clientId' },
  ])
  t.match(
    problems({ ...base, registration: { enabled: true }, externalIssuer: { issuer: 'https://idp.example.com', jwksUri: 'https://idp.example.com/jwks' } }),
    [{ path: 'registration.enabled' }],
  )
  t.match(problems({ ...base, registration: { enabled: true, initialAccessToken: 'short' } }), [{ path: 'registration.initialAccessToken' }])
  const config = loadConfigObject({ ...base, registration: { enabled: true } }, 'test')
  t.equal(config.registration.maxClients, 10000)
  t.equal(config.registration.unusedTtlSeconds, 2592000)
  t.ok(config.warnings.some((w) => /registration is open/.test(w)), 'open registration is warned about')
  t.notOk(loadConfigObject(base, 'test').warnings.some((w) => /registration/.test(w)))
})

t.test('registered ids: shape, and no store access for other ids', async (t) => {
  t.notOk(isRegisteredClientId('test-client'))
  t.notOk(isRegisteredClientId('https://app.example.com/client.json'))
  t.notOk(isRegisteredClientId('dcr.short'))
  const reads: string[] = []
  const store = new MemoryStore()
  t.teardown(() => store.close())
  const spy = new Proxy(store, {
    get: (target, prop, receiver) => {
      const v = Reflect.get(target, prop, receiver)
      return typeof v === 'function' ? (...args: unknown[]) => (reads.push(`${String(prop)} ${String(args[0])}`), v.apply(target, args)) : v
    },
  }) as Store
  const clients = new RegisteredClients(spy, loadConfigObject({ publicUrl: 'https://gw.example.com', resources: [{ id: 'r', name: 'R', path: '/mcp', upstream: UPSTREAM }] }, 't').registration)
  t.equal(await clients.find('https://app.example.com/client.json'), undefined)
  t.equal(await clients.find('test-client'), undefined)
  t.same(reads, [], 'the store is not asked about ids that cannot be registered ones')
})

t.test('use renews a registration, with at most one write per tenth of its TTL (DCR-05)', async (t) => {
  const store = new MemoryStore()
  t.teardown(() => store.close())
  const writes: [string, number][] = []
  const spy = Object.assign(Object.create(store) as Store, {
    set: async (key: string, value: string, ttl: number) => {
      writes.push([key, ttl])
      return store.set(key, value, ttl)
    },
    setIfAbsent: store.setIfAbsent.bind(store),
    get: store.get.bind(store),
    increment: store.increment.bind(store),
    delete: store.delete.bind(store),
  })
  let now = Date.UTC(2026, 0, 1)
  const ttlSeconds = 1000
  const reg = { ...loadConfigObject({ publicUrl: 'https://gw.example.com', resources: [{ id: 'r', name: 'R', path: '/mcp', upstream: UPSTREAM }] }, 't').registration, unusedTtlSeconds: ttlSeconds }
  const clients = new RegisteredClients(spy, reg, () => now)
  const { record } = await clients.register(
    { redirect_uris: ['http://127.0.0.1/cb'], grant_types: ['authorization_code'], response_types: ['code'], token_endpoint_auth_method: 'none', application_type: 'native' },
    '127.0.0.1',
  )
  writes.length = 0
  const found = await clients.find(record.clientId)
  t.equal(found?.source, 'registered')
  t.match(found?.verifiedAs, /^registered itself on 2026-01-01; nothing about it was verified$/)
  now += 99_000
  await clients.find(record.clientId)
  t.same(writes, [], 'no write within a tenth of the TTL')
  now += 2_000
  await clients.find(record.clientId)
  t.same(writes.map(([k, ttl]) => [k.split(':')[0], ttl]), [['registered-client', ttlSeconds * 1000], ['registration-dedupe', ttlSeconds * 1000]], 'renewed with the full TTL')
  writes.length = 0
  await clients.find(record.clientId)
  t.same(writes, [], 'and not again right away')
})
