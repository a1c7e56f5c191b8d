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
  t.ok(
    after.value('gatehouse_store_operations_total', { operation: 'ping', outcome: 'ok' }) -
      before.value('gatehouse_store_operations_total', { operation: 'ping', outcome: 'ok' }) <= 1,
    'a probe answers from the last check: at most one ping, in the background',
  )
  t.equal(after.value('gatehouse_store_up', {}), 1, 'gatehouse_store_up: the store answers')
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
  t.equal((await fetch(`${gw.origin}/readyz`)).status, 200, 'still ready: a store outage is not this replica\'s')
  const deadline = Date.now() + 5000
  while ((await read()).value('gatehouse_store_up', {}) !== 0 && Date.now() < deadline) {
    await fetch(`${gw.origin}/healthz`)
    await new Promise((r) => setTimeout(r, 50))
  }
  const after = await read()
  t.equal(after.value('gatehouse_store_up', {}), 0, 'gatehouse_store_up says the store is down')
  t.equal(before.value('gatehouse_store_up', {}), 1, 'and said it was up before')
  const d = (name: string, labels: Record<string, string>) => after.value(name, labels) - before.value(name, labels)
  t.equal(d('gatehouse_store_operations_total', { operation: 'get', outcome: 'error' }), 1)
  t.ok(d('gatehouse_store_operations_total', { operation: 'ping', outcome: 'error' }) >= 1, 'the failed health checks are counted')
  t.equal(d('gatehouse_store_operation_duration_seconds_count', { operation: 'get' }), 1)
})
