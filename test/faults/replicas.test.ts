/**
 * Three gateway replicas on one Redis behind one public origin (a small load balancer), and
 * one of them crashing (a child process SIGKILLed: no graceful shutdown, its connections to
 * clients, upstream and Redis simply gone) in the middle of an authorization flow, a stateful
 * MCP session and open notification streams. The survivors carry every flow on: what the
 * crashed replica stored is in Redis, its streams end for their clients (who reconnect), and
 * the streams of the other replicas never notice.
 */
import { writeFile } from 'node:fs/promises'
import { connect, createServer as createTcpServer, type AddressInfo, type Socket } from 'node:net'
import { join } from 'node:path'
import { exportPKCS8, generateKeyPair } from 'jose'
import { LoggingMessageNotificationSchema } from '@modelcontextprotocol/sdk/types.js'
import t, { type Test } from 'tap'
import { Agent, fetch as undiciFetch } from 'undici'
import { connectSdk1Client, readSseEvents } from '../fixtures/mcp-clients.js'
import { startSdk1Upstream } from '../fixtures/mcp-upstream.js'
import { FormBrowser } from '../helpers/form-browser.js'
import { childReplica } from '../helpers/child-replica.js'
import { startTestGateway, type TestGateway } from '../helpers/gateway.js'
import { redisServerForTests } from '../helpers/redis.js'
import { watchStrayErrors } from '../helpers/stray-errors.js'
import {
  AS_CONFIG,
  codeOf,
  eventually,
  exchangeCode,
  FAST_STORE,
  startAuthorization,
  timed,
  tokenRequest,
  USER,
} from './fault-kit.js'

/**
 * One public origin in front of the replicas, balancing connections as a Kubernetes Service does
 * (layer 4): each new connection goes to the replica chosen at that moment and stays with it; a
 * replica that dies takes its connections with it, and the client's next connection goes elsewhere.
 */
async function loadBalancer(t: Test) {
  let target = 0
  const sockets = new Set<Socket>()
  const server = createTcpServer((client) => {
    const replica = connect(target, '127.0.0.1')
    for (const s of [client, replica]) {
      sockets.add(s)
      s.once('close', () => sockets.delete(s))
      s.on('error', () => {})
    }
    client.pipe(replica).pipe(client)
    client.once('close', () => replica.destroy())
    replica.once('close', () => client.destroy())
  })
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  t.teardown(() => {
    for (const s of sockets) s.destroy()
    server.close()
  })
  return { origin: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, to: (port: number) => void (target = port) }
}

async function replicas(t: Test) {
  const redis = await redisServerForTests(t)
  if (!redis) return undefined
  const upstream = await startSdk1Upstream({ stateful: true, jsonResponse: false })
  t.teardown(() => upstream.close())
  const lb = await loadBalancer(t)
  const dir = t.testdir({})
  const keyFile = join(dir, 'signing.pem')
  await writeFile(keyFile, await exportPKCS8((await generateKeyPair('ES256', { extractable: true })).privateKey))
  const shared = {
    ...AS_CONFIG,
    publicUrl: lb.origin,
    keys: [{ file: keyFile, alg: 'ES256', kid: 'replicas' }],
    shutdown: { graceSeconds: 1 },
  }
  const store = { type: 'redis', redis: { url: redis.url, keyPrefix: 'replicas:', ...FAST_STORE } }
  const resource = { id: 'r0', name: 'Files', path: '/mcp', upstream: upstream.url, scopes: [{ name: 'mcp' }], requiredScopes: ['mcp'] }
  const [crashing, a, b] = await Promise.all([
    childReplica(t, dir, { ...shared, store, resources: [resource] }),
    startTestGateway(t, { store, resources: [resource], config: shared }),
    startTestGateway(t, { store, resources: [resource], config: shared }),
  ])
  const port = (gw: TestGateway) => Number(new URL(gw.origin).port)
  return { upstream, lb, crashing, a, b, portOf: port, mcpUrl: `${lb.origin}/mcp` }
}

t.test('a replica crashes mid-authorization: the flow goes on on the others, and nothing is issued twice', async (t) => {
  t.setTimeout(60_000)
  const noStray = watchStrayErrors(t)
  const r = await replicas(t)
  if (!r) return
  const browser = new FormBrowser(r.lb.origin)

  r.lb.to(r.crashing.port)
  const { verifier, page } = await startAuthorization(browser, r.lb.origin, r.mcpUrl)
  t.equal(page.status, 200, 'the login page, from the replica about to crash')
  await r.crashing.crash()

  r.lb.to(r.portOf(r.a))
  const consent = await browser.submit(page, USER)
  t.equal(consent.status, 200, 'the login form is accepted by another replica')
  t.match(consent.html, /decision/, 'and the consent page shown')
  r.lb.to(r.portOf(r.b))
  const done = await browser.submit(consent, { decision: 'allow' })
  const code = codeOf(done)
  t.ok(code, 'consent on a third replica ends with a code')
  r.lb.to(r.portOf(r.a))
  const tokens = await exchangeCode(r.lb.origin, code!, verifier)
  t.equal(tokens.status, 200, 'the code is exchanged on yet another replica')
  // Two replicas racing one refresh token: exactly one rotation; the other gets the same successor (REF-03).
  const refresh = (gw: TestGateway, refreshToken: string) => tokenRequest(gw.origin, { grant_type: 'refresh_token', refresh_token: refreshToken })
  const raced = await Promise.all([refresh(r.a, tokens.body.refresh_token), refresh(r.b, tokens.body.refresh_token)])
  t.same(raced.map((x) => x.status), [200, 200], 'both racers are answered (REF-03)')
  t.equal(raced[0]!.body.refresh_token, raced[1]!.body.refresh_token, 'with one refresh token: one rotation')
  const rotated = raced[0]!.body.refresh_token as string

  r.lb.to(r.portOf(r.b))
  const replay = await exchangeCode(r.lb.origin, code!, verifier)
  t.equal(replay.body.error, 'invalid_grant', 'the code is single use across replicas')
  t.equal((await refresh(r.a, rotated)).body.error, 'invalid_grant', 'and its replay revoked the grant on every replica')
  const stale = await browser.submit(consent, { decision: 'allow' })
  t.equal(stale.status, 400, 'the consent form, submitted again: refused (the request was used)')
  t.equal(stale.location, undefined, 'no second code')
  noStray()
})

t.test('a replica crashes under a stateful MCP session: the session goes on through the survivors', async (t) => {
  t.setTimeout(60_000)
  const noStray = watchStrayErrors(t)
  const r = await replicas(t)
  if (!r) return
  r.lb.to(r.crashing.port)
  const token = await r.a.mint()
  const client = await connectSdk1Client(r.mcpUrl, {
    token,
    transport: { reconnectionOptions: { initialReconnectionDelay: 100, maxReconnectionDelay: 200, reconnectionDelayGrowFactor: 1, maxRetries: 50 } },
  })
  t.teardown(() => client.close().catch(() => {}))
  client.setNotificationHandler(LoggingMessageNotificationSchema, () => {})
  await client.listTools()
  await r.upstream.waitForGetStreams(1)
  const sessions = r.upstream.sessionIds().length

  // The crash happens while a call runs through the crashing replica.
  // The SDK tries to resume a cut answer stream; without an event store upstream, the answer is lost
  // and only the request timeout ends the wait.
  const inFlight = client.callTool({ name: 'countdown', arguments: { count: 20, intervalMs: 100 } }, undefined, { timeout: 2500 }).then(
    () => 'completed',
    () => 'failed',
  )
  await new Promise((res) => setTimeout(res, 150))
  r.lb.to(r.portOf(r.a))
  await r.crashing.crash()
  t.equal(await inFlight, 'failed', 'the call cut by the crash fails for the client (it may retry it)')
  const after = await timed(() => client.callTool({ name: 'echo', arguments: { text: 'still here' } }))
  t.match(after.value, { content: [{ text: 'still here' }] }, 'the same session serves the next call through a survivor')
  t.equal(r.upstream.sessionIds().length, sessions, 'no new session was needed')
  r.lb.to(r.portOf(r.b))
  const third = await client.callTool({ name: 'echo', arguments: { text: 'and here' } })
  t.match(third, { content: [{ text: 'and here' }] }, 'and through the other survivor')
  t.equal((await fetch(`${r.a.origin}/readyz`)).status, 200, 'the survivors stay ready')
  noStray()
})

t.test('a replica crashes with notification streams open: its streams end, the others never notice', async (t) => {
  t.setTimeout(60_000)
  const noStray = watchStrayErrors(t)
  const r = await replicas(t)
  if (!r) return
  const token = await r.a.mint()
  const sessionOf = async (port: number) => {
    r.lb.to(port)
    const client = await connectSdk1Client(r.mcpUrl, { token, transport: { reconnectionOptions: { initialReconnectionDelay: 60_000, maxReconnectionDelay: 60_000, reconnectionDelayGrowFactor: 1, maxRetries: 0 } } })
    t.teardown(() => client.close().catch(() => {}))
    client.setNotificationHandler(LoggingMessageNotificationSchema, () => {})
    return { client, sessionId: r.upstream.sessionIds().at(-1)! }
  }
  // Raw GET streams (one per session), so the test sees exactly when each ends.
  // Straight to each replica (the public URL is the balancer's; the replicas answer on any address).
  const openStream = async (port: number, sessionId: string) => {
    const dispatcher = new Agent()
    t.teardown(() => dispatcher.destroy())
    const res = await undiciFetch(`http://127.0.0.1:${port}/mcp`, {
      dispatcher,
      headers: { authorization: `Bearer ${token}`, accept: 'text/event-stream', 'mcp-session-id': sessionId, 'mcp-protocol-version': '2025-11-25' },
    })
    t.equal(res.status, 200, `a stream through replica port ${port}`)
    return readSseEvents(res as unknown as Response)
  }
  const onCrashing = await sessionOf(r.crashing.port)
  const onA = await sessionOf(r.portOf(r.a))
  await onCrashing.client.close()
  await onA.client.close()
  t.ok(await eventually(async () => r.upstream.openGetStreams() === 0, 3000), 'the SDK clients’ own streams are closed')
  // The upstream sends an idle stream's headers with its first event: open, then notify.
  const changed = { json: { method: 'notifications/resources/list_changed' } }
  const doomedOpening = openStream(r.crashing.port, onCrashing.sessionId)
  const survivorOpening = openStream(r.portOf(r.a), onA.sessionId)
  await r.upstream.waitForGetStreams(2)
  await r.upstream.notifyResourcesChanged()
  const doomed = await doomedOpening
  const survivor = await survivorOpening
  t.match((await doomed.next()).value, changed)
  t.match((await survivor.next()).value, changed)

  await r.crashing.crash()
  const ended = await timed(() => doomed.next().then((x) => (x.done ? 'ended' : 'event'), () => 'ended'))
  t.equal(ended.value, 'ended', 'the crashed replica’s stream ends for its client')
  t.ok(ended.ms < 3000, `within ${ended.ms} ms`)
  t.ok(await eventually(async () => r.upstream.openGetStreams() === 1, 3000), 'the upstream saw that stream go, and only that one')

  const reconnecting = openStream(r.portOf(r.b), onCrashing.sessionId)
  await r.upstream.waitForGetStreams(2)
  await r.upstream.notifyResourcesChanged()
  t.match((await survivor.next()).value, changed, 'the stream on a surviving replica carries on')
  const reconnected = await reconnecting
  t.match((await reconnected.next()).value, changed, 'the cut client reconnects through another replica')
  await reconnected.return(undefined)
  await survivor.return(undefined)
  for (const gw of [r.a, r.b]) {
    t.equal((await fetch(`${gw.origin}/readyz`)).status, 200, 'the survivors stay ready')
  }
  noStray()
})
