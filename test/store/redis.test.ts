import { randomUUID } from 'node:crypto'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t, { type Test } from 'tap'
import type { RedisStoreConfig } from '../../src/config/schema.js'
import { RedisStore, redisClientPlan, type StoreLog } from '../../src/store/redis.js'
import { redisForTests } from '../helpers/redis.js'
import { storeContract } from './contract.js'

const log: StoreLog = { warn: () => {}, error: () => {} }

t.test('RedisStore contract', async (t) => {
  const redis = await redisForTests(t)
  if (!redis) return
  storeContract(t, async () => new RedisStore(redis.storeConfig(), log))
})

t.test('RedisStore against a shared Redis', async (t) => {
  const redis = await redisForTests(t)
  if (!redis) return
  const open = (t: Test): RedisStore => {
    const store = new RedisStore(redis.storeConfig(), log)
    t.teardown(() => store.close())
    return store
  }

  t.test('every key carries the configured prefix, with its TTL', async (t) => {
    const store = open(t)
    const key = `prefix-check:${randomUUID()}`
    await store.set(key, 'v', 60_000)
    t.equal(await redis.raw.get(`${redis.keyPrefix}${key}`), 'v', 'stored under the prefix')
    t.equal(await redis.raw.exists(key), 0, 'nothing stored without it')
    const pttl = await redis.raw.pttl(`${redis.keyPrefix}${key}`)
    t.ok(pttl > 55_000 && pttl <= 60_000, `PX applied (pttl ${pttl})`)
    await store.setIfAbsent(`${key}:nx`, 'v', 60_000)
    t.equal(await redis.raw.get(`${redis.keyPrefix}${key}:nx`), 'v', 'setIfAbsent too')
    t.equal(await store.take(key), 'v', 'take reads under the prefix')
    t.equal(await redis.raw.exists(`${redis.keyPrefix}${key}`), 0, 'and deletes under it')
  })

  t.test('take across replicas (separate connections): exactly one gets the value', async (t) => {
    const replicas = Array.from({ length: 5 }, () => open(t))
    const key = `replica-take:${randomUUID()}`
    await replicas[0]!.set(key, 'single-use', 60_000)
    const results = await Promise.all(Array.from({ length: 20 }, (_, i) => replicas[i % replicas.length]!.take(key)))
    t.same(
      results.filter((r) => r !== undefined),
      ['single-use'],
    )
  })

  t.test('setIfAbsent across replicas: exactly one writer (dev signing key at startup)', async (t) => {
    const replicas = Array.from({ length: 5 }, () => open(t))
    const key = `replica-nx:${randomUUID()}`
    const results = await Promise.all(replicas.map((r, i) => r.setIfAbsent(key, `replica-${i}`, 60_000)))
    t.equal(results.filter(Boolean).length, 1)
    t.equal(await replicas[4]!.get(key), `replica-${results.indexOf(true)}`)
  })

  t.test('the helper cleanup removes every key under the prefix', async (t) => {
    const store = open(t)
    await store.set(`cleanup:${randomUUID()}`, 'v', 60_000)
    await redis.cleanup()
    t.same(await redis.raw.keys(`${redis.keyPrefix}*`), [])
  })
})

t.test('client options from the configuration', async (t) => {
  const base: RedisStoreConfig = {
    url: 'redis://127.0.0.1:6379',
    keyPrefix: 'gh:',
    connectTimeoutMs: 5000,
    commandTimeoutMs: 2000,
  }

  t.test('standalone: host, port, db and credentials from the URL; fail-fast settings', async (t) => {
    const plan = redisClientPlan({ ...base, url: 'redis://app%40x:p%40ss%3Aw0rd@redis.internal:6380/3' })
    if (plan.kind !== 'redis') throw new Error('expected a single-server plan')
    t.match(plan.options, {
      host: 'redis.internal',
      port: 6380,
      db: 3,
      username: 'app@x',
      password: 'p@ss:w0rd',
      keyPrefix: 'gh:',
      tls: undefined,
      enableOfflineQueue: false,
      maxRetriesPerRequest: 1,
      connectTimeout: 5000,
      commandTimeout: 2000,
      autoResendUnfulfilledCommands: false,
    })
    const retry = plan.options.retryStrategy!
    t.same([1, 5, 100, 10_000].map((n) => retry(n)), [100, 500, 2000, 2000], 'retries forever, at most every 2 s')
  })

  t.test('an IPv6 host and the default port', async (t) => {
    const plan = redisClientPlan({ ...base, url: 'redis://[::1]' })
    t.match(plan.options, { host: '::1', port: 6379, db: 0 })
  })

  t.test('a URL path that is not a database number is refused', async (t) => {
    t.throws(() => redisClientPlan({ ...base, url: 'redis://h:6379/cache' }), TypeError)
  })

  t.test('rediss:// turns TLS on; a tls block adds the CA and server name', async (t) => {
    t.match(redisClientPlan({ ...base, url: 'rediss://h:6380' }).options, { tls: {} })
    const dir = mkdtempSync(join(tmpdir(), 'gatehouse-ca-'))
    t.teardown(() => rmSync(dir, { recursive: true }))
    const caFile = join(dir, 'ca.pem')
    writeFileSync(caFile, '-----BEGIN CERTIFICATE-----\ntest\n-----END CERTIFICATE-----\n')
    const plan = redisClientPlan({ ...base, tls: { caFile, servername: 'redis.example' } })
    if (plan.kind !== 'redis') throw new Error('expected a single-server plan')
    t.equal(String(plan.options.tls?.ca), '-----BEGIN CERTIFICATE-----\ntest\n-----END CERTIFICATE-----\n')
    t.equal(plan.options.tls?.servername, 'redis.example')
    t.throws(
      () => redisClientPlan({ ...base, tls: { caFile: join(dir, 'missing.pem') } }),
      { code: 'ENOENT' },
      'a missing CA file fails at startup',
    )
  })

  t.test('sentinels: master name, URL credentials and db, TLS for the sentinels too', async (t) => {
    const sentinels = [{ host: 's1', port: 26379 }, { host: 's2', port: 26379 }]
    const plan = redisClientPlan({
      ...base,
      url: 'rediss://:pw@ignored:1/2',
      tls: { servername: 'primary.example' },
      sentinels,
      sentinelMasterName: 'gatehouse',
      sentinelPassword: 'sentinel-pw',
    })
    t.match(plan.options, {
      sentinels,
      name: 'gatehouse',
      sentinelPassword: 'sentinel-pw',
      password: 'pw',
      db: 2,
      keyPrefix: 'gh:',
      enableOfflineQueue: false,
      enableTLSForSentinelMode: true,
      tls: { servername: 'primary.example' },
      sentinelTLS: { servername: undefined },
      sentinelCommandTimeout: 2000,
    })
    t.notOk('host' in plan.options, 'the URL host is not used')
    t.throws(() => redisClientPlan({ ...base, sentinels }), /sentinelMasterName/)
  })

  t.test('waitForReplicas must leave the command time to answer', async (t) => {
    t.throws(() => new RedisStore({ ...base, waitForReplicas: { replicas: 1, timeoutMs: base.commandTimeoutMs } }, log), /shorter than commandTimeoutMs/)
  })

  t.test('cluster: seed nodes, prefix on the cluster, settings on every node', async (t) => {
    const clusterNodes = [{ host: 'c1', port: 7000 }, { host: 'c2', port: 7001 }]
    const plan = redisClientPlan({ ...base, url: 'rediss://:pw@ignored:1', clusterNodes })
    if (plan.kind !== 'cluster') throw new Error('expected a cluster plan')
    t.same(plan.nodes, clusterNodes)
    t.match(plan.options, {
      keyPrefix: 'gh:',
      enableOfflineQueue: false,
      retryDelayOnFailover: 0,
      retryDelayOnClusterDown: 0,
      redisOptions: { password: 'pw', tls: {}, commandTimeout: 2000, connectTimeout: 5000, maxRetriesPerRequest: 1 },
    })
    t.equal(plan.options.clusterRetryStrategy?.(50), 2000)
    t.type(plan.options.dnsLookup, 'function', 'TLS sees node names, not resolved addresses')
    t.throws(() => redisClientPlan({ ...base, url: 'redis://h/1', clusterNodes }), /database 0/)
  })
})
