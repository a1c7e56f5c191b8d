/**
 * Revocation reaches every replica (§11.4 REV-01, REV-02): replicas on one Redis refuse a revoked
 * grant's access tokens within a second, whichever replica or the CLI revoked it, without a
 * store round trip per call; a replica that starts later refuses them from its first request;
 * one cut off from Redis catches up as soon as it can read again.
 */
import { createServer, connect, type Server, type Socket } from 'node:net'
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import t, { type Test } from 'tap'
import { postJsonRpc } from '../fixtures/mcp-clients.js'
import { startSdk1Upstream } from '../fixtures/mcp-upstream.js'
import { mintAccessToken } from '../../src/keys/tokens.js'
import { Grants } from '../../src/oauth/grants/grants.js'
import { RedisStore } from '../../src/store/redis.js'
import { runInProcess } from '../helpers/cli.js'
import { startTestGateway, type TestGateway } from '../helpers/gateway.js'
import { reservePort } from '../helpers/ports.js'
import { redisForTests, redisServerForTests } from '../helpers/redis.js'

const SECRET = 'revocation-bot-secret-5d1f0c9a7e3b2d4f6a8c0e1b'
const upstream = await startSdk1Upstream({ stateful: false, jsonResponse: true })
t.teardown(() => upstream.close())

const config = {
  clients: [
    { clientId: 'bot', name: 'Bot', grantTypes: ['client_credentials'], tokenEndpointAuthMethod: 'client_secret_basic', secret: SECRET },
  ],
}

function replica(t: Test, store: Record<string, unknown>, publicUrl?: string): Promise<TestGateway> {
  return startTestGateway(t, { store, resources: [{ upstream: upstream.url }], config: { ...config, ...(publicUrl && { publicUrl }) } })
}

const basic = `Basic ${Buffer.from(`bot:${SECRET}`).toString('base64')}`

async function machineToken(gw: TestGateway): Promise<string> {
  const res = await fetch(`${gw.origin}/oauth/token`, {
    method: 'POST',
    headers: { authorization: basic, 'content-type': 'application/x-www-form-urlencoded' },
    body: 'grant_type=client_credentials',
  })
  if (res.status !== 200) throw new Error(`token: ${res.status} ${await res.text()}`)
  return ((await res.json()) as { access_token: string }).access_token
}

/**
 * A stateless MCP call to this replica (its own origin: mcpUrl() is the shared public URL): it
 * needs no store, so only the in-memory list can refuse it.
 */
const call = (gw: TestGateway, token: string) =>
  postJsonRpc(`${gw.origin}/mcp`, { jsonrpc: '2.0', id: 1, method: 'ping' }, { authorization: `Bearer ${token}` })

async function revokeAt(gw: TestGateway, token: string): Promise<void> {
  const res = await fetch(`${gw.origin}/oauth/revoke`, {
    method: 'POST',
    headers: { authorization: basic, 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ token }).toString(),
  })
  if (res.status !== 200) throw new Error(`revoke: ${res.status}`)
}

/** Milliseconds until `gw` refuses `token`, or undefined when it still accepts it after `withinMs`. */
async function refusedWithin(gw: TestGateway, token: string, withinMs: number): Promise<number | undefined> {
  const started = Date.now()
  while (Date.now() - started <= withinMs) {
    const res = await call(gw, token)
    if (res.status === 401) {
      if (!/error="invalid_token"/.test(res.headers.get('www-authenticate') ?? '')) throw new Error('401 without invalid_token')
      return Date.now() - started
    }
    await new Promise((r) => setTimeout(r, 20))
  }
  return undefined
}

t.test('§11.4 REV-01, REV-02: revoked at one replica, refused at the others within a second; other grants unaffected', async (t) => {
  // A Redis of its own: the store-read count below is server-wide, and the shared Redis also
  // serves whatever test runs beside this one.
  const server = await redisServerForTests(t)
  if (!server) return
  const store = { type: 'redis', redis: { url: server.url, keyPrefix: 'rev:' } }
  const a = await replica(t, store)
  const b = await replica(t, store, a.origin)
  const c = await replica(t, store, a.origin)
  const revoked = await machineToken(a)
  const kept = await machineToken(a)
  for (const gw of [a, b, c]) t.equal((await call(gw, revoked)).status, 200, 'accepted everywhere before')

  await revokeAt(a, revoked)
  t.equal((await call(a, revoked)).status, 401, 'refused at once where it was revoked')
  for (const [name, gw] of [['B', b], ['C', c]] as const) {
    const ms = await refusedWithin(gw, revoked, 1000)
    t.ok(ms !== undefined, `refused at ${name} within 1 s (after ${ms} ms)`)
  }
  for (const gw of [a, b, c]) t.equal((await call(gw, kept)).status, 200, 'another grant of the same client still works')

  // The hot path reads memory: a burst of calls adds no GET per call, only the poll's XRANGEs.
  const gets = (stats: string) => Number(/cmdstat_get:calls=(\d+)/.exec(stats)?.[1] ?? 0)
  const before = gets(await server.admin().info('commandstats'))
  await Promise.all(Array.from({ length: 50 }, () => call(b, kept)))
  t.ok(gets(await server.admin().info('commandstats')) - before < 10, 'fifty calls, (almost) no store reads')

  const late = await replica(t, store, a.origin)
  t.equal((await call(late, revoked)).status, 401, 'a replica started after the revocation refuses from its first request')
  t.equal((await call(late, kept)).status, 200)
})

t.test('§11.4 REV-01: `gatehouse grants revoke` reaches running replicas within a second', async (t) => {
  const redis = await redisForTests(t)
  if (!redis) return
  const store = { type: 'redis', redis: redis.storeConfig() }
  const a = await replica(t, store)
  const b = await replica(t, store, a.origin)
  // A person's grant as the authorization endpoint stores it, and an access token issued under it.
  const operatorStore = new RedisStore(redis.storeConfig(), { warn() {}, error() {} })
  t.teardown(() => operatorStore.close())
  const grants = new Grants(operatorStore, a.config.authorizationServer)
  const grant = grants.newGrant({ sub: 'static:alice', clientId: 'app', resourceId: 'r0', scopes: ['mcp'] })
  await grants.start(grant, false)
  const token = await mintAccessToken(a.gateway.keystore!, a.config.issuer, {
    sub: grant.sub, clientId: grant.clientId, audience: a.mcpUrl(), scopes: ['mcp'], grantId: grant.grantId,
  }, 300)
  t.equal((await call(b, token)).status, 200, 'accepted before')

  const file = join(t.testdir(), 'gatehouse.yaml')
  await writeFile(file, `publicUrl: ${a.origin}\nstore: { type: redis, redis: { url: "${redis.url}", keyPrefix: "${redis.keyPrefix}" } }\n` +
    'resources:\n  - { id: r0, name: R, path: /mcp, upstream: "http://127.0.0.1:1/mcp" }\n')
  const run = await runInProcess(['grants', 'revoke', '--config', file, grant.grantId])
  t.equal(run.code, 0, run.stderr)
  t.match(run.stdout, `revoked ${grant.grantId}`)
  const ms = await refusedWithin(b, token, 1000)
  t.ok(ms !== undefined, `refused at B within 1 s (after ${ms} ms)`)
  const atA = await refusedWithin(a, token, 1000)
  t.ok(atA !== undefined, `and at A within 1 s (after ${atA} ms): each replica reads the log on its own clock`)
})

t.test('§11.4 REV-02: a replica cut off from Redis catches up as soon as it reads again', async (t) => {
  const server = await redisServerForTests(t)
  if (!server) return
  const cut = await tcpForwarder(t, server.port)
  const fast = { commandTimeoutMs: 500, connectTimeoutMs: 2000 }
  const a = await replica(t, { type: 'redis', redis: { url: server.url, keyPrefix: 'rev:', ...fast } })
  const d = await replica(t, { type: 'redis', redis: { url: `redis://127.0.0.1:${cut.port}`, keyPrefix: 'rev:', ...fast } }, a.origin)
  const token = await machineToken(a)
  t.equal((await call(d, token)).status, 200)

  cut.sever()
  await revokeAt(a, token)
  // D cannot know yet: it keeps serving the calls that need no store, with what it last read.
  const cutOff = await call(d, token)
  t.equal(cutOff.status, 200, `cut off: D has not heard of it (${cutOff.status} ${cutOff.text.slice(0, 200)})`)
  cut.restore()
  const ms = await refusedWithin(d, token, 5000)
  t.ok(ms !== undefined, `refused at D once it reconnected and read the log (after ${ms} ms)`)
})

/** A loopback TCP forwarder to `port` that can drop every connection and refuse new ones, then let them through again. */
async function tcpForwarder(t: Test, port: number) {
  const listenPort = await reservePort(t)
  const sockets = new Set<Socket>()
  let open = true
  let server: Server | undefined
  const listen = () =>
    new Promise<void>((resolve) => {
      server = createServer((client) => {
        const target = connect(port, '127.0.0.1')
        for (const s of [client, target]) {
          sockets.add(s)
          s.on('error', () => {})
          s.on('close', () => sockets.delete(s))
        }
        client.pipe(target).pipe(client)
      })
      server.listen(listenPort, '127.0.0.1', resolve)
    })
  await listen()
  t.teardown(() => {
    for (const s of sockets) s.destroy()
    server?.close()
  })
  return {
    port: listenPort,
    sever() {
      open = false
      server?.close()
      for (const s of sockets) s.destroy()
    },
    restore() {
      if (!open) void listen()
      open = true
    },
  }
}
