/**
 * Several gateway replicas on one Redis behave as one gateway (design §4): they share the
 * development key and the session bindings. When Redis goes away the gateway answers 503 and
 * reports not-ready, never crashes, and recovers by itself.
 */
import t from 'tap'
import { connectSdk1Client, postJsonRpc } from '../fixtures/mcp-clients.js'
import { startSdk1Upstream } from '../fixtures/mcp-upstream.js'
import { startTestGateway } from '../helpers/gateway.js'
import { redisForTests, redisServerForTests } from '../helpers/redis.js'

const upstream = await startSdk1Upstream({ stateful: true, jsonResponse: true })
t.teardown(() => upstream.close())

t.test('two replicas share the development key and session bindings', async (t) => {
  const redis = await redisForTests(t)
  if (!redis) return
  const store = { type: 'redis', redis: redis.storeConfig() }
  const a = await startTestGateway(t, { store, resources: [{ upstream: upstream.url }] })
  // Replica B serves the same public URL as A, as replicas behind one load balancer do.
  const b = await startTestGateway(t, { store, resources: [{ upstream: upstream.url }], config: { publicUrl: a.origin } })
  t.equal(a.gateway.keystore!.active.kid, b.gateway.keystore!.active.kid, 'one development key for both')

  const alice = await a.mint({ sub: 'alice' })
  const client = await connectSdk1Client(a.mcpUrl(), { token: alice })
  t.teardown(() => client.close())
  await client.listTools()
  const sessionId = upstream.sessionIds().at(-1)!
  const viaB = (token: string) =>
    postJsonRpc(`${b.origin}/mcp`, { jsonrpc: '2.0', id: 2, method: 'tools/list' }, {
      authorization: `Bearer ${token}`,
      'mcp-session-id': sessionId,
      'mcp-protocol-version': '2025-11-25',
    })
  t.equal((await viaB(alice)).status, 200, 'a token minted on A, a session opened on A, used on B')
  t.equal((await viaB(await b.mint({ sub: 'bob' }))).status, 404, 'B refuses another user on that session')
  const keys = await redis.raw.keys(`${redis.keyPrefix}*`)
  t.ok(keys.some((k) => k.includes('mcp-session:')), 'the binding lives in Redis')
  t.notOk(keys.some((k) => k.includes(sessionId)), 'the session id itself is not stored, only its hash')
})

t.test('Redis down: 503 and not ready, no crash; back: recovers by itself', async (t) => {
  const server = await redisServerForTests(t)
  if (!server) return
  const gw = await startTestGateway(t, {
    // connectTimeoutMs only bounds the start's wait for the first connection (loopback connects or
    // is refused at once); 300 ms of it failed starts on a busy machine, as in test/faults.
    store: { type: 'redis', redis: { url: server.url, keyPrefix: 'outage:', commandTimeoutMs: 300, connectTimeoutMs: 2000 } },
    resources: [{ upstream: upstream.url }],
  })
  const token = await gw.mint()
  const client = await connectSdk1Client(gw.mcpUrl(), { token })
  t.teardown(() => client.close())
  await client.listTools()
  const sessionId = upstream.sessionIds().at(-1)!
  const call = () =>
    postJsonRpc(gw.mcpUrl(), { jsonrpc: '2.0', id: 3, method: 'tools/list' }, {
      authorization: `Bearer ${token}`,
      'mcp-session-id': sessionId,
      'mcp-protocol-version': '2025-11-25',
    })

  await server.kill()
  const started = Date.now()
  const down = await call()
  t.equal(down.status, 503, 'a request that needs the store gets 503')
  t.ok(Date.now() - started < 2000, 'promptly, not after a hang')
  t.equal(down.headers.get('retry-after'), '5')
  t.match(JSON.parse(down.text), { jsonrpc: '2.0', error: { message: /try again/ } })
  const ready = await fetch(`${gw.origin}/readyz`)
  t.equal(ready.status, 200, 'still ready: an outage every replica shares must not empty the Service')
  const health = async () => ((await (await fetch(`${gw.origin}/healthz`)).json()) as { store: string }).store
  let store = await health()
  for (let i = 0; i < 50 && store !== 'down'; i++) {
    await new Promise((r) => setTimeout(r, 100))
    store = await health()
  }
  t.equal(store, 'down', 'and /healthz (still 200) reports the store down')
  const stateless = await postJsonRpc(gw.mcpUrl(), { jsonrpc: '2.0', id: 4, method: 'ping' }, { authorization: `Bearer ${token}` })
  t.not(stateless.status, 503, 'a request without a session needs no store round trip')

  await server.start()
  const deadline = Date.now() + 10_000
  while (Date.now() < deadline && (await health()) !== 'up') await new Promise((r) => setTimeout(r, 100))
  t.equal(await health(), 'up', 'the store is reported up again once Redis is back')
  // The restarted Redis is empty: the binding is gone, so the session reads as unknown (404), not 503.
  t.equal((await call()).status, 404)
})
