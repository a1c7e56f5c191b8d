/**
 * The store-backed parts of private_key_jwt and the fetch limit, on the memory store and on a
 * real Redis (where replicas share them): the jti replay cache (SEC-31), the per-host fetch
 * limit (SEC-14) and the unknown-kid refetch interval (SEC-32). Documents and key sets come from
 * a loopback https server through the real SafeFetcher (test CA passed as its trust anchor).
 */
import t, { type Test } from 'tap'
import { exportJWK, generateKeyPair, SignJWT, type CryptoKey } from 'jose'
import { loadConfigObject } from '../../src/config/load.js'
import { AssertionRejected, ClientAssertions } from '../../src/oauth/clients/assertion.js'
import { SafeFetcher } from '../../src/oauth/clients/cimd/fetch.js'
import { ClientKeySets, KeySetError } from '../../src/oauth/clients/cimd/jwks.js'
import { FetchRateLimiter } from '../../src/oauth/clients/cimd/rate-limit.js'
import { CimdRefusal } from '../../src/oauth/clients/cimd/refusal.js'
import { CimdClients } from '../../src/oauth/clients/cimd/resolve.js'
import { MemoryStore } from '../../src/store/memory.js'
import { RedisStore } from '../../src/store/redis.js'
import type { Store } from '../../src/store/store.js'
import { redisForTests } from '../helpers/redis.js'
import { json, makeTestCertificates, startHttpsDocServer, type DocServer } from './servers.js'

const ISSUER = 'https://gw.example.net'
const tls = makeTestCertificates()
t.teardown(() => tls.cleanup())

const { privateKey, publicKey } = await generateKeyPair('ES256', { extractable: true })
const publicJwk = { ...(await exportJWK(publicKey)), kid: 'k1', alg: 'ES256', use: 'sig' }

type StoreFactory = (t: Test) => Promise<Store | undefined>
const stores: [string, StoreFactory][] = [
  ['memory', async () => new MemoryStore()],
  [
    'redis',
    async (t) => {
      const redis = await redisForTests(t)
      if (!redis) return undefined
      const store = new RedisStore(redis.storeConfig(), { warn: () => {}, error: () => {} })
      t.teardown(() => store.close())
      return store
    },
  ],
]

function cimdConfig(docs: DocServer[], cimd: Record<string, unknown> = {}) {
  return loadConfigObject(
    {
      publicUrl: ISSUER,
      resources: [{ id: 'r', name: 'R', path: '/mcp', upstream: 'http://127.0.0.1:9' }],
      cimd: { enabled: true, allowPrivateAddresses: true, trust: { allow: docs.map((d) => ({ prefix: `${d.origin}/` })) }, ...cimd },
    },
    'test',
  ).cimd
}

function parts(t: Test, store: Store, config: ReturnType<typeof cimdConfig>) {
  const fetcher = new SafeFetcher({ ...config.fetch, allowPrivateAddresses: true, ca: tls.caPem })
  t.teardown(() => fetcher.close())
  const limiter = new FetchRateLimiter(store, config.fetchRateLimit)
  const clients = new CimdClients({ config, store, fetcher, limiter, selfOrigin: ISSUER })
  const keySets = new ClientKeySets({ config, store, fetcher, limiter })
  const assertions = new ClientAssertions({ issuer: ISSUER, tokenEndpoint: `${ISSUER}/oauth/token`, settings: config.privateKeyJwt, keySets, store })
  return { clients, keySets, assertions }
}

const sign = (clientId: string, jti: string, kid = 'k1', key: CryptoKey = privateKey) =>
  new SignJWT({ jti })
    .setProtectedHeader({ alg: 'ES256', kid })
    .setIssuer(clientId)
    .setSubject(clientId)
    .setAudience(ISSUER)
    .setIssuedAt()
    .setExpirationTime('2m')
    .sign(key)

const rejection = async (p: Promise<unknown>) => {
  try {
    await p
    return undefined
  } catch (err) {
    if (err instanceof AssertionRejected || err instanceof CimdRefusal || err instanceof KeySetError) return err
    throw err
  }
}

for (const [storeName, makeStore] of stores) {
  t.test(`${storeName} store`, async (t) => {
    const store = await makeStore(t)
    if (!store) return
    const docs = await startHttpsDocServer(tls, '127.0.0.1')
    t.teardown(() => docs.close())
    const other = await startHttpsDocServer(tls, '127.0.0.1')
    t.teardown(() => other.close())
    const hits = (server: DocServer, path: string) => server.hits.get(path) ?? 0
    const doc = (server: DocServer, path: string, extra: Record<string, unknown>) => ({
      client_id: `${server.origin}${path}`,
      client_name: 'Key client',
      redirect_uris: ['http://127.0.0.1/callback'],
      token_endpoint_auth_method: 'private_key_jwt',
      ...extra,
    })

    t.test('SEC-31: a jti is single use, also between two replicas and under concurrency', async (t) => {
      const config = cimdConfig([docs])
      const inline = doc(docs, '/inline.json', { jwks: { keys: [publicJwk] } })
      docs.routes.set('/inline.json', json(inline))
      const one = parts(t, store, config)
      const two = parts(t, store, config)
      const client = (await one.clients.find(inline.client_id))!
      const assertion = await sign(client.clientId, `jti-${storeName}-${Date.now()}`)
      t.match(await one.assertions.verify(assertion, client), { alg: 'ES256', kid: 'k1' }, 'the first use is accepted')
      t.match(await rejection(one.assertions.verify(assertion, client)), { check: 'replay' }, 'SEC-31: replayed on the same replica')
      t.match(await rejection(two.assertions.verify(assertion, client)), { check: 'replay' }, 'SEC-31: replayed on another replica sharing the store')

      const racing = await sign(client.clientId, `race-${storeName}-${Date.now()}`)
      const outcomes = await Promise.allSettled(Array.from({ length: 10 }, (_, i) => (i % 2 ? one : two).assertions.verify(racing, client)))
      t.equal(outcomes.filter((o) => o.status === 'fulfilled').length, 1, 'SEC-31: ten concurrent uses, exactly one accepted')
    })

    t.test('SEC-14: fetches per client-id host are limited; cache hits are not counted; other hosts are unaffected', async (t) => {
      // A host of its own: the window counts every fetch for that host, whichever test made it.
      const docs = await startHttpsDocServer(tls, '127.0.0.1')
      t.teardown(() => docs.close())
      const limited = cimdConfig([docs, other], { fetchRateLimit: { perHost: 3, windowSeconds: 600 }, cache: { enabled: false } })
      const a = doc(docs, '/limited.json', { jwks_uri: `${docs.origin}/limited-jwks.json` })
      docs.routes.set('/limited.json', json(a))
      docs.routes.set('/limited-jwks.json', json({ keys: [publicJwk] }))
      const b = doc(other, '/elsewhere.json', { jwks: { keys: [publicJwk] } })
      other.routes.set('/elsewhere.json', json(b))
      const { clients, keySets } = parts(t, store, limited)
      const before = hits(docs, '/limited.json')
      for (let i = 0; i < 3; i++) t.ok(await clients.find(a.client_id), `fetch ${i + 1} of 3 is allowed`)
      t.equal(hits(docs, '/limited.json') - before, 3)
      const refused = await rejection(clients.find(a.client_id))
      t.match(refused, { code: 'invalid_client', step: 'fetch', rule: 'cimd.fetchRateLimit', description: /fetched metadata for applications hosted at 127\.0\.0\.1:\d+ too often; try again in \d+ s/ })
      t.equal(hits(docs, '/limited.json') - before, 3, 'SEC-14: over the limit, no fetch happens')
      const jwksBefore = hits(docs, '/limited-jwks.json')
      t.match(await rejection(keySets.keys(a.client_id, { jwksUri: `${docs.origin}/limited-jwks.json` })), { check: 'jwks_rate_limit' }, 'key set fetches count against the same host')
      t.equal(hits(docs, '/limited-jwks.json'), jwksBefore, 'and are not made either')
      t.ok(await clients.find(b.client_id), 'a client on another host is still fetched')

      const cached = parts(t, store, cimdConfig([other], { fetchRateLimit: { perHost: 2, windowSeconds: 600 } }))
      const c = doc(other, '/cached.json', { jwks: { keys: [publicJwk] } })
      other.routes.set('/cached.json', json(c, { 'cache-control': 'max-age=600' }))
      for (let i = 0; i < 5; i++) t.ok(await cached.clients.find(c.client_id))
      t.equal(hits(other, '/cached.json'), 1, 'five uses, one fetch: cache hits are not counted')
    })

    t.test('SEC-32: an unknown kid refetches jwks_uri once per interval per client, then refuses', async (t) => {
      const config = cimdConfig([docs], { privateKeyJwt: { jwksRefetchIntervalSeconds: 600 } })
      const d = doc(docs, '/rotating.json', { jwks_uri: `${docs.origin}/rotating-jwks.json` })
      docs.routes.set('/rotating.json', json(d))
      docs.routes.set('/rotating-jwks.json', json({ keys: [publicJwk] }, { 'cache-control': 'max-age=600' }))
      const { clients, assertions } = parts(t, store, config)
      const client = (await clients.find(d.client_id))!
      t.ok(await assertions.verify(await sign(client.clientId, `a-${Date.now()}`), client))
      t.equal(hits(docs, '/rotating-jwks.json'), 1)
      const stranger = (await generateKeyPair('ES256')).privateKey
      t.match(await rejection(assertions.verify(await sign(client.clientId, `b-${Date.now()}`, 'unknown-1', stranger), client)), { check: 'unknown_kid', detail: /also after refetching/ })
      t.equal(hits(docs, '/rotating-jwks.json'), 2, 'exactly one refetch')
      t.match(await rejection(assertions.verify(await sign(client.clientId, `c-${Date.now()}`, 'unknown-2', stranger), client)), { check: 'unknown_kid', detail: /less than the interval ago/ })
      t.equal(hits(docs, '/rotating-jwks.json'), 2, 'a second unknown kid within the interval: no fetch')
    })
  })
}
