/**
 * Graceful shutdown: in-flight calls finish, notification streams are ended (clients
 * reconnect elsewhere), the listener stops, and close() returns within the grace period.
 */
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import t from 'tap'
import { LoggingMessageNotificationSchema } from '@modelcontextprotocol/sdk/types.js'
import { connectSdk1Client } from '../fixtures/mcp-clients.js'
import { startSdk1Upstream } from '../fixtures/mcp-upstream.js'
import { startTestGateway } from '../helpers/gateway.js'

t.test('close(): in-flight call completes, GET stream ends, new connections refused', async (t) => {
  const upstream = await startSdk1Upstream({ stateful: true, jsonResponse: false })
  t.teardown(() => upstream.close())
  const gw = await startTestGateway(t, { resources: [{ upstream: upstream.url }] })
  const client = await connectSdk1Client(gw.mcpUrl(), { token: await gw.mint() })
  t.teardown(() => client.close().catch(() => undefined))
  client.setNotificationHandler(LoggingMessageNotificationSchema, () => {})
  await upstream.waitForGetStreams(1)

  const inFlight = client.callTool({ name: 'countdown', arguments: { count: 3, intervalMs: 200 } })
  await new Promise((r) => setTimeout(r, 100))
  const started = Date.now()
  await gw.gateway.close()
  const took = Date.now() - started
  const result = await inFlight
  t.match(result, { content: [{ text: 'countdown of 3 done' }] }, 'the call that was running finished')
  t.ok(took < 1500, `closed in ${took} ms: as soon as the running call ended, not at the 2 s grace deadline`)
  const deadline = Date.now() + 2000
  while (upstream.openGetStreams() > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20))
  t.equal(upstream.openGetStreams(), 0, 'the standalone GET stream was ended upstream too')
  await t.rejects(fetch(`${gw.origin}/healthz`), 'no longer listening')
})

t.test('close(): a call that outlives the grace period is cut at its end, not waited for', async (t) => {
  const server = createServer((req, res) => {
    req.resume()
    res.writeHead(200, { 'content-type': 'text/event-stream' })
    res.write('data: {"started":true}\n\n')
  })
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  t.teardown(() => {
    server.closeAllConnections()
    server.close()
  })
  const gw = await startTestGateway(t, { resources: [{ upstream: `http://127.0.0.1:${(server.address() as AddressInfo).port}/mcp` }] })
  const response = await fetch(gw.mcpUrl(), {
    method: 'POST',
    headers: { authorization: `Bearer ${await gw.mint()}`, 'content-type': 'application/json' },
    body: '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"forever"}}',
  })
  const reading = response.text().catch(() => 'cut')
  const started = Date.now()
  await gw.gateway.close()
  const took = Date.now() - started
  t.ok(took >= 1900 && took < 3500, `closed after ${took} ms: the 2 s grace period, then the cut`)
  t.equal(await reading, 'cut', 'the client saw its stream end')
})
