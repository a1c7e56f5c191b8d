/**
 * Redis Cluster for real (issue 16): three masters with a replica each (redis-server processes on
 * loopback, test/helpers/redis-topology.ts). Every store operation works with keys spread over
 * the slots of all three masters (single-key commands and scripts only), `keys()` walks every
 * master, the revocation stream and refresh chains work; a master is SIGKILLed mid-run, and
 * until its replica takes over every request is answered 200 or 503 with Retry-After (never a
 * hang, a 500 or a wrong answer); then flows complete, nothing written before is lost, and
 * nothing raced during the failover was issued twice.
 */
import t from 'tap'
import { startSdk1Upstream } from '../fixtures/mcp-upstream.js'
import { RedisStore } from '../../src/store/redis.js'
import { storeContract } from '../store/contract.js'
import { clusterForTests } from '../helpers/redis-topology.js'
import { checkEverything, checkProbes, codeFlow, failoverGateway, prepareRaces, probeUntilRecovered, register, unexpectedErrors, writeEverything } from './failover-kit.js'

t.setTimeout(180_000)
const log = { warn: () => {}, error: () => {} }
const upstream = await startSdk1Upstream({ stateful: true, jsonResponse: true })
t.teardown(() => upstream.close())

const cluster = await clusterForTests(t, { password: 'cluster-data-pw' })
if (cluster) {
  t.test('Cluster: the store contract with keys on every slot', async (t) => {
    storeContract(t, async () => new RedisStore(cluster.storeConfig({ keyPrefix: 'contract:' }), log))
  })

  t.test('Cluster: the store contract with waitForReplicas (WAIT pipelined to each key\'s master)', async (t) => {
    const config = cluster.storeConfig({ keyPrefix: 'durable:', waitForReplicas: { replicas: 1, timeoutMs: 200 } })
    storeContract(t, async () => new RedisStore(config, log))
  })

  t.test('Cluster: keys spread over all three masters; keys() walks every master; the log works on any slot', async (t) => {
    const store = new RedisStore(cluster.storeConfig({ keyPrefix: 'spread:' }), log)
    t.teardown(() => store.close())
    for (let i = 0; i < 60; i++) await store.set(`item:${i}`, String(i), 60_000)
    const perMaster = await Promise.all((await cluster.masterPorts()).map(async (port) => (await cluster.admin(port).keys('spread:item:*')).length))
    t.equal(perMaster.length, 3, 'three masters')
    t.ok(perMaster.every((n) => n > 0), `every master holds some (${perMaster.join(', ')})`)
    const listed: string[] = []
    for await (const key of store.keys('item:')) listed.push(key)
    t.equal(new Set(listed).size, 60, 'keys() finds all 60, on whichever master')
    const ids = []
    for (let i = 0; i < 3; i++) ids.push(await store.append(`log:${i}`, `v${i}`, 60_000))
    for (let i = 0; i < 3; i++) t.same((await store.readLog(`log:${i}`, '', 10)).map((e) => e.value), [`v${i}`], `log ${i} on its own slot`)
  })

  t.test('Cluster: a master dies mid-run; 503 with Retry-After meanwhile, then everything works and nothing was lost', async (t) => {
    const gw = await failoverGateway(t, cluster.storeConfig(), upstream.url)
    const before = await writeEverything(t, gw, () => upstream.sessionIds())
    const races = await prepareRaces(gw, 6)
    // The victim is the master of the MCP session binding, so the probes depend on it.
    const masters = await cluster.masterPorts()
    let bindingKey: string | undefined
    for (const port of masters) bindingKey ??= (await cluster.admin(port).keys('cluster:mcp-session:*'))[0]
    const victim = await cluster.masterOf(bindingKey!)
    // Replication is asynchronous; the failover is measured here, not the lag (README: what a failover can lose).
    t.ok(Number(await cluster.admin(victim.port).call('WAIT', 1, 2000)) >= 1, 'the victim\'s replica acknowledged every write')

    const killedAt = Date.now()
    const raced = races.fire()
    await victim.kill()
    const run = await probeUntilRecovered(gw, before, killedAt)
    const healthyMs = await cluster.healthy()
    t.comment(`cluster failover: requests served again after ${run.recoveredAfterMs} ms; ${run.unavailable} of ${run.answers.length} probes answered 503; cluster ok ${healthyMs} ms after that`)
    t.notOk((await cluster.masterPorts()).includes(victim.port), 'the replica took over the dead master\'s slots')
    checkProbes(t, run, 'probes through the failover')
    await raced
    await races.check(t)

    const flow = await codeFlow(gw)
    t.ok(flow.tokens, `an authorization-code flow completes after the failover ${flow.failed ?? ''}`)
    t.equal((await register(gw, 'after the failover')).status, 201, 'a client registers after the failover')
    await checkEverything(t, gw, before)
    const later = await failoverGateway(t, cluster.storeConfig(), upstream.url, gw.origin)
    t.equal(later.gateway.keystore!.active.kid, before.kid, 'a replica started after the failover finds the same development signing key')
    t.equal((await fetch(`${gw.origin}/readyz`)).status, 200, 'ready')
    t.same(unexpectedErrors(gw), [], 'no error-level line other than connection reports and 503s')
  })
}
