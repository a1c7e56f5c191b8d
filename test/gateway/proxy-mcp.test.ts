/**
 * Real MCP clients of both SDK generations talk to real upstream MCP servers through the
 * gateway: JSON and SSE responses, stateful and stateless, GET streams and
 * subscriptions/listen (MCPT-03, MCPT-10, MCPT-16), with the client's credentials stripped
 * and identity sent only in the configured headers (MCPA-60, BCP-13).
 */
import t from 'tap'
import { LoggingMessageNotificationSchema, ResourceListChangedNotificationSchema } from '@modelcontextprotocol/sdk/types.js'
import {
  connectSdk1Client,
  connectSdk2Client,
  MODERN_PROTOCOL_VERSION,
  modernRequest,
  openJsonRpcStream,
  postJsonRpc,
  readSseEvents,
  type SseEvent,
} from '../fixtures/mcp-clients.js'
import { startSdk1Upstream, startSdk2Upstream } from '../fixtures/mcp-upstream.js'
import { startTestGateway } from '../helpers/gateway.js'

const IDENTITY = { subject: 'X-User', clientId: 'X-Client', scope: 'X-Scopes' }
const textOf = (result: unknown) =>
  ((result as { content?: { text?: string }[] }).content ?? []).map((c) => c.text ?? '').join('')
const waitUntil = async (cond: () => boolean, ms = 3000) => {
  const end = Date.now() + ms
  while (!cond()) {
    if (Date.now() > end) throw new Error('condition not met in time')
    await new Promise((r) => setTimeout(r, 10))
  }
}

for (const stateful of [true, false]) {
  for (const jsonResponse of [false, true]) {
    const label = `SDK1 client → gateway → SDK1 ${stateful ? 'stateful' : 'stateless'} ${jsonResponse ? 'JSON' : 'SSE'} server`
    t.test(label, async (t) => {
      const upstream = await startSdk1Upstream({ stateful, jsonResponse })
      t.teardown(() => upstream.close())
      const gw = await startTestGateway(t, { resources: [{ upstream: upstream.url, identityHeaders: IDENTITY }] })
      const token = await gw.mint({ sub: 'alice', clientId: 'client-a', scopes: ['mcp', 'admin'] })
      const client = await connectSdk1Client(gw.mcpUrl(), { token })
      t.teardown(() => client.close())

      const { tools } = await client.listTools()
      t.ok(tools.some((tool) => tool.name === 'echo'))
      t.equal(textOf(await client.callTool({ name: 'echo', arguments: { text: 'héllo ✓' } })), 'héllo ✓')
      const seen = JSON.parse(textOf(await client.callTool({ name: 'whoami', arguments: {} }))) as Record<string, string>
      t.equal(seen['x-user'], 'alice', 'subject header')
      t.equal(seen['x-client'], 'client-a', 'client id header')
      t.equal(seen['x-scopes'], 'mcp admin', 'scope header')
      for (const r of upstream.requests) {
        t.equal(r.headers['authorization'], undefined, `${r.method} ${r.url}: the token never reaches the upstream (MCPA-60)`)
      }
      if (stateful) t.equal(upstream.sessionIds().length, 1, 'one upstream session')
    })
  }
}

t.test('SDK2 client pinned to 2026-07-28 → gateway → SDK2 server (stateless generation)', async (t) => {
  const upstream = await startSdk2Upstream()
  t.teardown(() => upstream.close())
  const gw = await startTestGateway(t, { resources: [{ upstream: upstream.url }] })
  const client = await connectSdk2Client(gw.mcpUrl(), { token: await gw.mint(), protocolVersion: MODERN_PROTOCOL_VERSION })
  t.teardown(() => client.close())
  const { tools } = await client.listTools()
  t.ok(tools.some((tool) => tool.name === 'read_file'))
  t.equal(textOf(await client.callTool({ name: 'echo', arguments: { text: 'modern' } })), 'modern')
  const call = upstream.requests.find((r) => r.headers['mcp-method'] === 'tools/call')!
  t.equal(call.headers['mcp-name'], 'echo', 'Mcp-Name reaches the upstream (MCPT-11)')
  t.equal(call.headers['mcp-protocol-version'], MODERN_PROTOCOL_VERSION)
  t.notOk(upstream.requests.some((r) => 'authorization' in r.headers))
})

t.test('subscriptions/listen: a long-lived notification stream flows through (MCPT-10)', async (t) => {
  const upstream = await startSdk2Upstream()
  t.teardown(() => upstream.close())
  const gw = await startTestGateway(t, { resources: [{ upstream: upstream.url }] })
  const client = await connectSdk2Client(gw.mcpUrl(), { token: await gw.mint(), protocolVersion: MODERN_PROTOCOL_VERSION })
  t.teardown(() => client.close())
  const seen: unknown[] = []
  client.setNotificationHandler('notifications/resources/list_changed', (n) => {
    seen.push(n)
  })
  const sub = await client.listen({ resourcesListChanged: true })
  await upstream.waitForListeners(1)
  upstream.notifyResourcesChanged()
  await waitUntil(() => seen.length === 1)
  upstream.notifyResourcesChanged()
  await waitUntil(() => seen.length === 2)
  t.pass('two notifications arrived on the open listen stream')
  await sub.close()
  await upstream.waitForListeners(0).catch(() => undefined)
  await waitUntil(() => upstream.listenerCount() === 0)
  t.pass('closing the stream at the client ends it upstream (MCPT-16 cancellation)')
})

t.test('SSE is streamed, not buffered: the first event arrives before the call ends (MCPT-16)', async (t) => {
  const upstream = await startSdk1Upstream({ stateful: false, jsonResponse: false })
  t.teardown(() => upstream.close())
  const gw = await startTestGateway(t, { resources: [{ upstream: upstream.url }] })
  const INTERVAL = 300
  const { response } = await openJsonRpcStream(
    gw.mcpUrl(),
    { jsonrpc: '2.0', id: 7, method: 'tools/call', params: { name: 'countdown', arguments: { count: 3, intervalMs: INTERVAL } } },
    { authorization: `Bearer ${await gw.mint()}`, 'mcp-protocol-version': '2025-11-25' },
  )
  t.equal(response.status, 200)
  t.equal(response.headers.get('content-type'), 'text/event-stream')
  t.equal(response.headers.get('x-accel-buffering'), 'no')
  t.equal(response.headers.get('content-encoding'), null, 'never compressed')
  const events: SseEvent[] = []
  for await (const ev of readSseEvents(response)) events.push(ev)
  t.equal(events.length, 4)
  t.match(events[0]!.json, { method: 'notifications/message' })
  t.match(events.at(-1)!.json, { id: 7, result: {} })
  const spread = events.at(-1)!.receivedAt - events[0]!.receivedAt
  t.ok(spread >= INTERVAL * 2 * 0.8, `first event ${Math.round(spread)} ms before the result`)
})

t.test('notifications on the standalone GET stream reach the client (2025-11-25)', async (t) => {
  const upstream = await startSdk1Upstream({ stateful: true, jsonResponse: false })
  t.teardown(() => upstream.close())
  const gw = await startTestGateway(t, { resources: [{ upstream: upstream.url }] })
  const client = await connectSdk1Client(gw.mcpUrl(), { token: await gw.mint() })
  t.teardown(() => client.close())
  const seen: number[] = []
  client.setNotificationHandler(ResourceListChangedNotificationSchema, () => {
    seen.push(Date.now())
  })
  client.setNotificationHandler(LoggingMessageNotificationSchema, () => {})
  await upstream.waitForGetStreams(1)
  t.equal(await upstream.notifyResourcesChanged(), 1)
  await waitUntil(() => seen.length === 1)
  t.pass('list_changed arrived over the proxied GET stream')
  const get = upstream.requests.find((r) => r.method === 'GET')!
  t.equal(get.headers['authorization'], undefined)
})

t.test('upstream-bound headers: credentials, cookies and spoofed identity removed (MCPA-60, BCP-13)', async (t) => {
  const upstream = await startSdk1Upstream({ stateful: false, jsonResponse: true })
  t.teardown(() => upstream.close())
  const gw = await startTestGateway(t, { resources: [{ upstream: upstream.url, identityHeaders: IDENTITY }] })
  const token = await gw.mint({ sub: 'alice' })
  const res = await postJsonRpc(
    gw.mcpUrl(),
    { jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'whoami', arguments: {} } },
    {
      authorization: `Bearer ${token}`,
      'x-user': 'mallory',
      'X-Client': 'spoofed',
      'x-forwarded-for': '6.6.6.6',
      'x-forwarded-host': 'evil.example.com',
      forwarded: 'for=6.6.6.6',
      'proxy-authorization': 'Basic eDp5',
      cookie: '__Host-gatehouse-session=secret1; theme=dark; gatehouse_csrf=secret2',
      'mcp-param-region': 'eu',
    },
  )
  t.equal(res.status, 200)
  const seen = JSON.parse(textOf(JSON.parse(res.text).result)) as Record<string, string>
  t.equal(seen['x-user'], 'alice', 'inbound identity header replaced by the verified one')
  t.equal(seen['x-client'], 'test-client', 'inbound client header replaced by the verified one')
  t.equal(seen['x-forwarded-for'], '127.0.0.1', 'forwarding headers come from the gateway')
  t.equal(seen['x-forwarded-host'], new URL(gw.origin).host)
  t.equal(seen['forwarded'], undefined)
  t.equal(seen['authorization'], undefined)
  t.equal(seen['proxy-authorization'], undefined)
  t.equal(seen['cookie'], 'theme=dark', "only the gateway's own cookies are removed")
  t.equal(seen['mcp-param-region'], 'eu', 'unknown Mcp-Param-* headers pass untouched (MCPT-15)')
  const raw = JSON.stringify(upstream.requests)
  t.notMatch(raw, token)
  t.notMatch(raw, /secret1|secret2/)
})

t.test('the body reaches the upstream byte for byte', async (t) => {
  const upstream = await startSdk1Upstream({ stateful: false, jsonResponse: true })
  t.teardown(() => upstream.close())
  const gw = await startTestGateway(t, { resources: [{ upstream: upstream.url }] })
  const body = '{ "jsonrpc" : "2.0",\n  "id": "x-1", "method":"tools/call", "params": {"name":"echo","arguments":{"text":"\\u00e9 ✓ \\"q\\""}} }  '
  const res = await postJsonRpc(gw.mcpUrl(), body, { authorization: `Bearer ${await gw.mint()}`, 'content-type': 'application/json; charset=utf-8' })
  t.equal(res.status, 200)
  t.equal(textOf(JSON.parse(res.text).result), 'é ✓ "q"')
  const post = upstream.requests.find((r) => r.method === 'POST')!
  t.equal(post.body, body)
  t.equal(post.headers['content-type'], 'application/json; charset=utf-8')
  t.equal(post.headers['content-length'], String(Buffer.byteLength(body)))
})

t.test('version negotiation answers of the upstream reach the client unchanged (MCPT-03, MCPT-17)', async (t) => {
  const upstream = await startSdk2Upstream()
  t.teardown(() => upstream.close())
  const gw = await startTestGateway(t, { resources: [{ upstream: upstream.url }] })
  const token = await gw.mint()
  const direct = await fetch(upstream.url, { method: 'GET', headers: { accept: 'text/event-stream' } })
  const proxied = await fetch(gw.mcpUrl(), { method: 'GET', headers: { accept: 'text/event-stream', authorization: `Bearer ${token}` } })
  t.equal(proxied.status, direct.status, `GET answered ${direct.status} both ways`)
  t.equal(await proxied.text(), await direct.text())

  const bad = modernRequest(1, 'tools/list')
  const headers = { ...bad.headers, 'mcp-protocol-version': '1999-01-01' }
  const d = await postJsonRpc(upstream.url, bad.body, headers)
  const p = await postJsonRpc(gw.mcpUrl(), bad.body, { ...headers, authorization: `Bearer ${token}` })
  t.equal(p.status, d.status, `unsupported version answered ${d.status} both ways`)
  t.equal(p.text, d.text)
})

t.test('an upstream with DNS-rebinding protection accepts proxied browser calls (Host and Origin are the gateway’s)', async (t) => {
  const upstream = await startSdk1Upstream({ stateful: false, jsonResponse: true, dnsRebindingProtection: true })
  t.teardown(() => upstream.close())
  const gw = await startTestGateway(t, { resources: [{ upstream: upstream.url, allowedOrigins: ['https://inspector.example.com'] }] })
  const res = await postJsonRpc(gw.mcpUrl(), { jsonrpc: '2.0', id: 1, method: 'ping' }, {
    authorization: `Bearer ${await gw.mint()}`,
    origin: 'https://inspector.example.com',
  })
  t.equal(res.status, 200)
  const seen = upstream.requests.at(-1)!
  t.equal(seen.headers['host'], new URL(upstream.url).host, 'Host names the upstream')
  t.equal(seen.headers['origin'], undefined, 'the checked browser Origin stays at the gateway')
})
