/**
 * Redis Sentinel for real (issue 16): one master, one replica, three sentinels (redis-server
 * processes on loopback, test/helpers/redis-topology.ts). The gateway finds the master through the
 * sentinels and passes the store contract; the master is SIGKILLed mid-run, the sentinels promote
 * the replica, and meanwhile every request is answered 200 or 503 with Retry-After (never a hang,
 * a 500 or a wrong answer); then flows complete again and what was written before the failover
 * is still there. Concurrent code exchanges and refreshes during the failover never issue twice.
 * A Client ID Metadata Document cached before the failover is served from the cache after it.
 */
import { setTimeout as sleep } from 'node:timers/promises'
import t from 'tap'
import { startSdk1Upstream } from '../fixtures/mcp-upstream.js'
import { RedisStore } from '../../src/store/redis.js'
import { storeContract } from '../store/contract.js'
import { sentinelForTests } from '../helpers/redis-topology.js'
import { startTestGateway } from '../helpers/gateway.js'
import { FormBrowser } from '../helpers/form-browser.js'
import { json, startHttpDocServer } from '../cimd/servers.js'
import { AS_CONFIG, REDIRECT } from '../faults/fault-kit.js'
import { checkEverything, checkProbes, codeFlow, failoverGateway, prepareRaces, probeUntilRecovered, register, unexpectedErrors, writeEverything } from './failover-kit.js'

t.setTimeout(180_000)
const log = { warn: () => {}, error: () => {} }
const upstream = await startSdk1Upstream({ stateful: true, jsonResponse: true })
t.teardown(() => upstream.close())

t.test('Sentinel: the store contract through sentinels that require a password of their own', async (t) => {
  const sentinel = await sentinelForTests(t, { password: 'sentinel-data-pw', sentinelPassword: 'sentinel-own-pw' })
  if (!sentinel) return
  /** Whether a write through `config` succeeds within 2 s (the first ones fail while it connects). */
  const writes = async (config: ReturnType<typeof sentinel.storeConfig>) => {
    const store = new RedisStore(config, log)
    try {
      for (const deadline = Date.now() + 2000; Date.now() < deadline; await sleep(100)) {
        if (await store.set('k', 'v', 1000).then(() => true, () => false)) return true
      }
      return false
    } finally {
      await store.close()
    }
  }
  t.test('sentinelPassword is what lets the store find the master', async (t) => {
    const { sentinelPassword: _, ...withoutIt } = sentinel.storeConfig({ keyPrefix: 'contract:' })
    t.equal(await writes(withoutIt), false, 'without it the sentinels refuse to name the master: no write')
    t.equal(await writes(sentinel.storeConfig({ keyPrefix: 'contract:' })), true, 'with it, writes go through')
  })
  storeContract(t, async () => new RedisStore(sentinel.storeConfig({ keyPrefix: 'contract:' }), log))
})

t.test('Sentinel: the master dies mid-run; 503 with Retry-After meanwhile, then everything works and nothing was lost', async (t) => {
  const sentinel = await sentinelForTests(t, { password: 'sentinel-data-pw' })
  if (!sentinel) return
  const gw = await failoverGateway(t, sentinel.storeConfig(), upstream.url)
  const before = await writeEverything(t, gw, () => upstream.sessionIds())

  const races = await prepareRaces(gw)

  // Replication is asynchronous: these tests measure the failover, not the replication lag
  // (README: what a failover can lose), so the replica has everything before the kill.
  const master = sentinel.admin(await sentinel.masterPort())
  t.ok(Number(await master.call('WAIT', 1, 2000)) >= 1, 'the replica acknowledged every write')

  const oldPort = await sentinel.masterPort()
  const killedAt = Date.now()
  // In flight as the master dies: two exchanges of each code, two refreshes of one token.
  const raced = races.fire()
  await sentinel.master.kill()
  const [run, promotedMs] = await Promise.all([probeUntilRecovered(gw, before, killedAt), sentinel.promoted(oldPort)])
  t.comment(`sentinel failover: promoted after ${promotedMs} ms; requests served again after ${run.recoveredAfterMs} ms; ${run.unavailable} of ${run.answers.length} probes answered 503`)
  checkProbes(t, run, 'probes through the failover')

  await raced
  await races.check(t)

  // After the promotion: every kind of flow completes, and what was written before is there.
  const flow = await codeFlow(gw)
  t.ok(flow.tokens, `an authorization-code flow completes after the failover ${flow.failed ?? ''}`)
  t.equal((await register(gw, 'after the failover')).status, 201, 'a client registers after the failover')
  await checkEverything(t, gw, before)
  const later = await failoverGateway(t, sentinel.storeConfig(), upstream.url, gw.origin)
  t.equal(later.gateway.keystore!.active.kid, before.kid, 'a replica started after the failover finds the same development signing key')
  t.equal((await fetch(`${gw.origin}/readyz`)).status, 200, 'ready')
  t.same(unexpectedErrors(gw), [], 'no error-level line other than the connection report')
})

t.test('Sentinel: a planned failover (SENTINEL FAILOVER, as in an upgrade) costs at most a few 503s', async (t) => {
  const sentinel = await sentinelForTests(t)
  if (!sentinel) return
  const gw = await failoverGateway(t, sentinel.storeConfig(), upstream.url)
  const before = await writeEverything(t, gw, () => upstream.sessionIds())
  const oldPort = await sentinel.masterPort()
  const started = Date.now()
  await sentinel.admin(sentinel.sentinels[0]!.port).call('SENTINEL', 'FAILOVER', 'gatehouse')
  const [run, promotedMs] = await Promise.all([probeUntilRecovered(gw, before, started), sentinel.promoted(oldPort)])
  t.comment(`planned failover: promoted after ${promotedMs} ms; served again after ${run.recoveredAfterMs} ms; ${run.unavailable} of ${run.answers.length} probes answered 503`)
  checkProbes(t, run, 'probes through the planned failover')
  // The old master is a replica now; writes must reach the new one (READONLY makes the client reconnect).
  t.ok((await codeFlow(gw)).tokens, 'a flow that writes completes after the switch')
  await checkEverything(t, gw, before)
})

t.test('Sentinel with waitForReplicas: writes wait for the replica; without one they fail (503) instead of risking loss', async (t) => {
  const sentinel = await sentinelForTests(t)
  if (!sentinel) return
  const config = sentinel.storeConfig({ keyPrefix: 'durable:', waitForReplicas: { replicas: 1, timeoutMs: 200 } })
  t.test('the store contract holds with every write acknowledged by the replica', async (t) => {
    storeContract(t, async () => new RedisStore(config, log))
  })
  t.test('the replica gone: writes fail within the wait, reads still work', async (t) => {
    const store = new RedisStore(config, log)
    t.teardown(() => store.close())
    await store.set('kept', 'v', 60_000)
    await sentinel.replica.kill()
    const started = Date.now()
    await t.rejects(store.set('unsure', 'v', 60_000), { name: 'StoreUnavailableError', message: /acknowledged by 0 of 1 replicas/ })
    t.ok(Date.now() - started < 450, `bounded by the wait (${Date.now() - started} ms)`)
    await t.rejects(store.take('kept'), { name: 'StoreUnavailableError' }, 'a take too: the caller does not get a value a failover could bring back')
    t.equal(await store.get('unsure'), 'v', 'the write is on the primary all the same: waiting bounds the loss, it cannot undo')
  })
})

t.test('Sentinel: a metadata document cached before the failover is served from the cache after it (CIMD)', async (t) => {
  const sentinel = await sentinelForTests(t)
  if (!sentinel) return
  const docs = await startHttpDocServer()
  t.teardown(() => docs.close())
  // A host name, not an IP literal (CIMD-06); plain HTTP on loopback needs the development switches.
  const clientId = `http://localhost:${docs.port}/client.json`
  docs.routes.set('/client.json', json({ client_id: clientId, client_name: 'Cached Before Failover', redirect_uris: [REDIRECT], grant_types: ['authorization_code'], token_endpoint_auth_method: 'none' }))
  const gw = await startTestGateway(t, {
    store: { type: 'redis', redis: sentinel.storeConfig() },
    resources: [{ upstream: upstream.url }],
    config: { ...AS_CONFIG, cimd: { enabled: true, allowHttp: true, allowPrivateAddresses: true, trust: { any: true } } },
  })
  const page = async () => {
    const browser = new FormBrowser(gw.origin)
    const url = new URL(`${gw.origin}/oauth/authorize`)
    const query = { response_type: 'code', client_id: clientId, redirect_uri: REDIRECT, code_challenge: 'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM', code_challenge_method: 'S256', resource: gw.mcpUrl(), scope: 'mcp' }
    for (const [k, v] of Object.entries(query)) url.searchParams.set(k, v)
    return browser.get(url.href)
  }
  const first = await page()
  t.equal(first.status, 200, 'the login page for the metadata-document client')
  t.match(first.html, /Cached Before Failover/, 'naming the client from its document')
  t.equal(docs.hits.get('/client.json'), 1, 'the document was fetched once, and cached')
  const master = sentinel.admin(await sentinel.masterPort())
  // Replication is asynchronous: the cache entry must have reached the replica to survive (README: what a failover can lose).
  t.ok(Number(await master.call('WAIT', 1, 2000)) >= 1, 'the replica acknowledged the cache entry')

  const oldPort = await sentinel.masterPort()
  await sentinel.master.kill()
  await sentinel.promoted(oldPort)
  docs.routes.delete('/client.json') // a fetch now would fail: only the cache can answer
  let after = await page()
  for (const deadline = Date.now() + 20_000; after.status === 503 && Date.now() < deadline; ) {
    await new Promise((resolve) => setTimeout(resolve, 200))
    after = await page()
  }
  t.equal(after.status, 200, 'after the failover the client is still known')
  t.match(after.html, /Cached Before Failover/, 'from the document cached before it')
  t.equal(docs.hits.get('/client.json'), 1, 'without fetching the document again')
})
