/**
 * Scale-out soak (issue 16): three gateway replicas on one Redis, standalone and Cluster (three
 * masters with a replica each), and SOAK_AGENTS agents running whole flows spread round-robin
 * over the replicas for SOAK_SECONDS (./soak-kit.ts): authorization at one replica, the code
 * exchange and refresh at another, MCP calls with streamed answers at a third, while watchers
 * hold notification streams open at every replica. Halfway through, one replica (a child
 * process) is SIGKILLed and leaves the pool.
 *
 * Asserted: no failure other than steps at the killed replica (at most one flow per agent, the
 * one in flight); no code issued twice, no refresh token rotated into two successors, every raced
 * code's grant revoked; every grant issued still refreshes at the end (none lost); the streams at
 * the other replicas carry on while the killed replica's end; flows go on at both survivors.
 * The figures are printed as TAP comments. GATEHOUSE_SOAK_SECONDS / GATEHOUSE_SOAK_AGENTS
 * make the run longer or wider.
 */
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { exportPKCS8, generateKeyPair } from 'jose'
import t, { type Test } from 'tap'
import { startSdk1Upstream } from '../fixtures/mcp-upstream.js'
import { childReplica } from '../helpers/child-replica.js'
import { startTestGateway, type TestGateway } from '../helpers/gateway.js'
import { reservePort } from '../helpers/ports.js'
import { redisServerForTests } from '../helpers/redis.js'
import { clusterForTests } from '../helpers/redis-topology.js'
import { watchStrayErrors } from '../helpers/stray-errors.js'
import { AS_CONFIG, tokenRequest } from '../faults/fault-kit.js'
import { holdStream, openSession, Pool, runAgent, SOAK_AGENTS, SOAK_SECONDS, Tally, type Replica, type Watcher } from './soak-kit.js'

t.setTimeout(120_000 + 4 * SOAK_SECONDS * 1000)
const WATCHERS_PER_REPLICA = 2
/** High enough never to answer 429 here, so the counters still run in the store on every request. */
const roomy = { requests: 1_000_000, windowSeconds: 60 }
const RATE_LIMITS = { authorize: { perAddress: roomy, perClient: roomy }, token: { perAddress: roomy, perClient: roomy } }

async function soak(t: Test, what: string, redis: Record<string, unknown>): Promise<void> {
  const phase = (s: string) => process.env.GATEHOUSE_SOAK_DEBUG && console.error(`${new Date().toISOString()} soak ${what}: ${s}`)
  phase('start')
  const noStray = watchStrayErrors(t)
  const upstream = await startSdk1Upstream({ stateful: true, jsonResponse: false })
  t.teardown(() => upstream.close())
  const dir = t.testdir({})
  const keyFile = join(dir, 'signing.pem')
  await writeFile(keyFile, await exportPKCS8((await generateKeyPair('ES256', { extractable: true })).privateKey))
  const portA = await reservePort(t)
  const publicUrl = `http://127.0.0.1:${portA}`
  const shared = { ...AS_CONFIG, publicUrl, keys: [{ file: keyFile, alg: 'ES256', kid: 'soak' }], rateLimits: RATE_LIMITS, shutdown: { graceSeconds: 1 } }
  const store = { type: 'redis', redis }
  const resource = { id: 'r0', name: 'Files', path: '/mcp', upstream: upstream.url, scopes: [{ name: 'mcp' }], requiredScopes: ['mcp'] }
  const [child, a, b] = await Promise.all([
    childReplica(t, dir, { ...shared, store, resources: [resource] }),
    startTestGateway(t, { port: portA, store, resources: [resource], config: shared }),
    startTestGateway(t, { store, resources: [resource], config: shared }),
  ])
  phase('replicas up')
  const victim: Replica = { name: 'C', origin: child.origin }
  const replicas: Replica[] = [{ name: 'A', origin: a.origin }, { name: 'B', origin: b.origin }, victim]
  const gateways: TestGateway[] = [a, b]

  // Notification streams held at every replica for the whole run, fed by the upstream every 300 ms.
  const token = await a.mint({ ttlSeconds: 3600 })
  const sessions = await Promise.all(replicas.flatMap((r) => Array.from({ length: WATCHERS_PER_REPLICA }, async () => ({ r, id: await openSession(r, token) }))))
  const opening = Promise.all(sessions.map((s) => holdStream(s.r, token, s.id)))
  await upstream.waitForGetStreams(sessions.length, 10_000)
  await upstream.notifyResourcesChanged()
  const watchers: Watcher[] = await opening
  t.teardown(() => watchers.forEach((w) => w.close()))
  phase('watchers open')
  let pumping = true
  const pump = (async () => {
    while (pumping) {
      await upstream.notifyResourcesChanged()
      await sleep(300)
    }
  })()

  const pool = new Pool(replicas)
  const tally = new Tally()
  const started = Date.now()
  const until = started + SOAK_SECONDS * 1000
  const agents = Promise.all(Array.from({ length: SOAK_AGENTS }, (_, i) => runAgent(i, pool, tally, until, `${publicUrl}/mcp`)))
  await sleep(SOAK_SECONDS * 500)
  tally.killedAt = Date.now()
  await child.crash()
  pool.remove(victim)
  const killedLog = child.output()
  phase('killed')
  await agents
  phase('agents done')
  const seconds = (Date.now() - started) / 1000
  await sleep(600) // a last notification or two reaches the survivors' streams
  pumping = false
  await pump
  for (const line of tally.figures(what, seconds)) t.comment(line)

  const cut = tally.failures.filter((f) => f.replicas.includes(victim.name))
  t.comment(`soak ${what}: the kill cost ${cut.length} flow steps at C (${[...new Set(cut.map((f) => f.op))].join(', ') || 'none'})`)
  t.same(tally.failures.filter((f) => !f.replicas.includes(victim.name)), [], 'no failure of a step that only involved replicas that stayed up')
  t.ok(cut.length <= SOAK_AGENTS, `the kill cost at most the flow each agent had in flight at C (${cut.length})`)
  t.ok(tally.flows >= SOAK_AGENTS, `flows completed (${tally.flows})`)
  t.equal(tally.codesIssuedTwice, 0, `no code issued twice (${tally.races} codes raced at two replicas)`)
  t.same(tally.replaysNotRevoked, [], 'every raced code\'s grant revoked by the replay, at another replica')
  t.equal(tally.refreshesRotatedTwice, 0, 'no refresh token rotated into two successors')
  for (const r of ['A', 'B']) t.ok((tally.afterKillAt.get(r) ?? 0) > 0, `new flows go on at ${r} after the kill (${tally.afterKillAt.get(r) ?? 0})`)

  for (const w of watchers) {
    if (w.replica === victim.name) {
      t.ok(w.endedAt !== undefined && w.endedAt - tally.killedAt < 3000, `a stream at C ended with it (${w.endedAt === undefined ? 'still open' : `${w.endedAt - tally.killedAt} ms`})`)
    } else {
      const after = w.events.filter((at) => at > tally.killedAt + 500).length
      t.ok(w.endedAt === undefined && after > 0, `a stream at ${w.replica} carries on after the kill (${after} events since, ${w.events.length} in all)`)
    }
  }

  phase('checking grants')
  // None lost: every grant issued, at whichever replica, refreshes at a survivor.
  let lost = 0
  for (let i = 0; i < tally.grants.length; i += 8) {
    const batch = tally.grants.slice(i, i + 8).map((rt, j) => tokenRequest(gateways[(i + j) % 2]!.origin, { grant_type: 'refresh_token', refresh_token: rt }))
    lost += (await Promise.all(batch)).filter((r) => r.status !== 200).length
  }
  t.equal(lost, 0, `every one of the ${tally.grants.length} grants still refreshes: none lost`)
  for (const gw of gateways) {
    t.same(gw.logs.filter((l) => Number(l.level) >= 50).map((l) => JSON.stringify(l).slice(0, 300)), [], `no error-level log line at ${gw.origin}`)
  }
  t.notMatch(killedLog, /"level":(50|60)/, 'no error-level log line at C before it was killed')
  noStray()
}

t.test('soak: three replicas on one standalone Redis', { skip: process.env.GATEHOUSE_SOAK_ONLY === 'cluster' }, async (t) => {
  const redis = await redisServerForTests(t)
  if (!redis) return
  await soak(t, 'standalone', { url: redis.url, keyPrefix: 'soak:', commandTimeoutMs: 1000, connectTimeoutMs: 2000 })
})

t.test('soak: three replicas on Redis Cluster (three masters, a replica each)', async (t) => {
  const cluster = await clusterForTests(t, { password: 'soak-cluster-pw' })
  if (!cluster) return
  await soak(t, 'cluster', cluster.storeConfig({ keyPrefix: 'soak:', commandTimeoutMs: 1000 }))
})
