/**
 * Store metrics: every operation of the memory and the Redis store counted and timed through
 * the InstrumentedStore the gateway wraps around its store when metrics are on, and failures
 * of an unreachable Redis counted as errors.
 */
import t, { type Test } from 'tap'
import type { StoreOperation } from '../../src/metrics/gateway-metrics.js'
import type { Store } from '../../src/store/store.js'
import { startTestGateway } from '../helpers/gateway.js'
import { redisForTests, redisServerForTests } from '../helpers/redis.js'
import { scrape, type Exposition } from './metrics-exposition.js'

const UPSTREAM = 'http://127.0.0.1:9/mcp' // never called
const METRICS = { enabled: true, listen: { host: '127.0.0.1', port: 0 } }

async function exercise(t: Test, store: Store, read: () => Promise<Exposition>) {
  const before = await read()
  await store.set('metrics-test:a', 'one', 60_000)
  t.equal(await store.get('metrics-test:a'), 'one')
  t.equal(await store.get('metrics-test:absent'), undefined)
  t.equal(await store.setIfAbsent('metrics-test:a', 'two', 60_000), false)
  t.same((await store.increment('metrics-test:n', 60_000)).count, 1)
  t.equal(await store.compareAndSet('metrics-test:a', 'one', 'one', 60_000), true)
  t.equal(await store.take('metrics-test:a'), 'one')
  await store.delete('metrics-test:n')
  const listed: string[] = []
  for await (const key of store.keys('metrics-test:')) listed.push(key)
  await store.ping()
  const after = await read()

  const expected: [StoreOperation, number][] = [
    ['set', 1],
    ['get', 2],
    ['set_if_absent', 1],
    ['increment', 1],
    ['take', 1],
    ['compare_and_set', 1],
    ['delete', 1],
    ['keys', 1],
    ['ping', 1],
  ]
  for (const [operation, n] of expected) {
    const d = (name: string, labels: Record<string, string>) => after.value(name, labels) - before.value(name, labels)
    t.equal(d('gatehouse_store_operations_total', { operation, outcome: 'ok' }), n, `${operation}: ${n} ok`)
    t.equal(d('gatehouse_store_operation_duration_seconds_count', { operation }), n, `${operation}: ${n} timed`)
    t.equal(d('gatehouse_store_operations_total', { operation, outcome: 'error' }), 0, `${operation}: no error`)
  }
  t.ok(after.value('gatehouse_store_operation_duration_seconds_sum', { operation: 'get' }) > 0, 'a positive latency')
}

t.test('memory store: every operation counted and timed', async (t) => {
  const gw = await startTestGateway(t, { resources: [{ upstream: UPSTREAM }], config: { metrics: METRICS } })
  t.equal(gw.gateway.store.constructor.name, 'InstrumentedStore')
  await exercise(t, gw.gateway.store, () => scrape(gw.gateway.metricsAddress!))
})

t.test('Redis store: every operation counted and timed; the requests that use it too', async (t) => {
  const redis = await redisForTests(t)
  if (!redis) return
  const gw = await startTestGateway(t, {
    resources: [{ upstream: UPSTREAM }],
    store: { type: 'redis', redis: redis.storeConfig() },
    config: { metrics: METRICS },
  })
  const read = () => scrape(gw.gateway.metricsAddress!)
  await exercise(t, gw.gateway.store, read)
  const before = await read()
  t.equal((await fetch(`${gw.origin}/readyz`)).status, 200)
  const after = await read()
  t.equal(
    after.value('gatehouse_store_operations_total', { operation: 'ping', outcome: 'ok' }) -
      before.value('gatehouse_store_operations_total', { operation: 'ping', outcome: 'ok' }),
    1,
    'the readiness probe pings the store once',
  )
})

t.test('Redis down: operations counted as errors, and still timed', async (t) => {
  const server = await redisServerForTests(t)
  if (!server) return
  const gw = await startTestGateway(t, {
    resources: [{ upstream: UPSTREAM }],
    store: { type: 'redis', redis: { url: server.url, keyPrefix: 'metrics-outage:', connectTimeoutMs: 300, commandTimeoutMs: 300 } },
    config: { metrics: METRICS },
  })
  const read = () => scrape(gw.gateway.metricsAddress!)
  const before = await read()
  await server.kill()
  await t.rejects(gw.gateway.store.get('x'), { name: 'StoreUnavailableError' })
  t.equal((await fetch(`${gw.origin}/readyz`)).status, 503, 'not ready')
  const after = await read()
  const d = (name: string, labels: Record<string, string>) => after.value(name, labels) - before.value(name, labels)
  t.equal(d('gatehouse_store_operations_total', { operation: 'get', outcome: 'error' }), 1)
  t.equal(d('gatehouse_store_operations_total', { operation: 'ping', outcome: 'error' }), 1)
  t.equal(d('gatehouse_store_operation_duration_seconds_count', { operation: 'get' }), 1)
})
