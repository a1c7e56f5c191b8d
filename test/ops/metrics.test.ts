/**
 * The metrics listener and the HTTP, upstream and event-stream families, through a real
 * gateway in front of real upstreams, scraped over HTTP like Prometheus does.
 */
import t, { type Test } from 'tap'
import { loadConfigObject } from '../../src/config/load.js'
import { postJsonRpc, readSseEvents } from '../fixtures/mcp-clients.js'
import { startSdk1Upstream } from '../fixtures/mcp-upstream.js'
import { rawUpstream } from '../fixtures/raw-upstream.js'
import { startTestGateway, type TestGatewayOptions } from '../helpers/gateway.js'
import { reservePort } from '../helpers/ports.js'
import { parseExposition, scrape, type Exposition } from './metrics-exposition.js'

const ping = { jsonrpc: '2.0', id: 1, method: 'ping' }
const METRICS = { enabled: true, listen: { host: '127.0.0.1', port: 0 } }

async function metricsGateway(t: Test, options: TestGatewayOptions) {
  const gw = await startTestGateway(t, { ...options, config: { ...options.config, metrics: METRICS } })
  const address = gw.gateway.metricsAddress
  if (!address) throw new Error('no metrics listener')
  return { ...gw, scrape: () => scrape(address), metricsAddress: address }
}

async function until(t: Test, what: string, check: () => Promise<boolean>, ms = 3000) {
  const deadline = Date.now() + ms
  while (!(await check())) {
    if (Date.now() > deadline) return t.fail(`timed out waiting: ${what}`)
    await new Promise((r) => setTimeout(r, 25))
  }
  return t.pass(what)
}

const delta = (before: Exposition, after: Exposition, name: string, labels: Record<string, string>) =>
  after.value(name, labels) - before.value(name, labels)

t.test('metrics are served on their own listener, never on the main port', async (t) => {
  const upstream = await startSdk1Upstream({ stateful: false, jsonResponse: true })
  t.teardown(() => upstream.close())
  const gw = await metricsGateway(t, { resources: [{ upstream: upstream.url }] })
  t.not(new URL(gw.metricsAddress).port, new URL(gw.origin).port, 'a separate port')

  const main = await fetch(`${gw.origin}/metrics`)
  t.equal(main.status, 404, 'the main listener has no /metrics')
  t.notMatch(await main.text(), /gatehouse_http_requests_total/)

  const res = await fetch(`${gw.metricsAddress}/metrics`)
  t.equal(res.status, 200)
  t.match(res.headers.get('content-type'), /^text\/plain; version=0\.0\.4/)
  const text = await res.text()
  t.match(text, /^# TYPE gatehouse_http_requests_total counter$/m)
  t.match(text, /^# TYPE gatehouse_http_request_duration_seconds histogram$/m)
  t.match(text, /^process_cpu_user_seconds_total /m, 'process metrics')
  t.match(text, /^nodejs_eventloop_lag_seconds /m, 'Node.js metrics')
  t.match(text, /^gatehouse_sse_streams_open\{resource="r0"\} 0$/m, 'the stream gauge exists at 0 from the start')

  t.equal((await fetch(`${gw.metricsAddress}/other`)).status, 404, 'only the configured path')
  t.equal((await fetch(`${gw.metricsAddress}/metrics`, { method: 'POST' })).status, 405)
  t.equal((await fetch(`${gw.metricsAddress}/metrics`, { method: 'HEAD' })).status, 200)

  const types = (await gw.scrape()).types()
  for (const [name, type] of types) {
    if (!name.startsWith('gatehouse_')) continue
    if (type === 'counter') t.match(name, /_total$/, `${name}: counters end in _total`)
    if (type === 'histogram') t.match(name, /_seconds$/, `${name}: histograms are in seconds`)
  }
})

t.test('metrics off (the default): no listener, nothing instrumented', async (t) => {
  const upstream = await startSdk1Upstream({ stateful: false, jsonResponse: true })
  t.teardown(() => upstream.close())
  const gw = await startTestGateway(t, { resources: [{ upstream: upstream.url }] })
  t.equal(gw.config.metrics.enabled, false)
  t.equal(gw.gateway.metricsAddress, undefined)
  t.equal(gw.gateway.store.constructor.name, 'MemoryStore', 'the store is not wrapped')
  t.equal((await fetch(`${gw.origin}/metrics`)).status, 404)
})

t.test('requests by route class, resource and status; upstream outcome and latency', async (t) => {
  const upstream = await startSdk1Upstream({ stateful: false, jsonResponse: true })
  t.teardown(() => upstream.close())
  const gw = await metricsGateway(t, { resources: [{ upstream: upstream.url }, { upstream: upstream.url }] })
  const auth = { authorization: `Bearer ${await gw.mint()}` }
  const before = await gw.scrape()

  const call = { jsonrpc: '2.0', id: 2, method: 'tools/call', params: { name: 'echo', arguments: { text: 'hi' } } }
  t.equal((await postJsonRpc(gw.mcpUrl(), call, auth)).status, 200)
  t.equal((await postJsonRpc(gw.mcpUrl(), ping, auth)).status, 200)
  t.equal((await postJsonRpc(gw.mcpUrl(), ping)).status, 401, 'no token')
  t.equal((await fetch(`${gw.origin}/.well-known/oauth-protected-resource/r1/mcp`)).status, 200)
  t.equal((await fetch(`${gw.origin}/.well-known/oauth-authorization-server`)).status, 200)
  t.equal((await fetch(`${gw.origin}/oauth/jwks`)).status, 200)
  t.equal((await fetch(`${gw.origin}/healthz`)).status, 200)
  t.equal((await fetch(`${gw.origin}/no/such/path?user=carol`)).status, 404)
  const after = await gw.scrape()

  const requests = 'gatehouse_http_requests_total'
  t.equal(delta(before, after, requests, { route: 'mcp', resource: 'r0', status: '200' }), 2, 'two answered MCP calls')
  t.equal(delta(before, after, requests, { route: 'mcp', resource: 'r0', status: '401' }), 1, 'one refused')
  t.equal(delta(before, after, requests, { route: 'prm', resource: 'r1', status: '200' }), 1, 'metadata of the second resource')
  t.equal(delta(before, after, requests, { route: 'as_metadata', resource: '', status: '200' }), 1)
  t.equal(delta(before, after, requests, { route: 'jwks', resource: '', status: '200' }), 1)
  t.equal(delta(before, after, requests, { route: 'health', resource: '', status: '200' }), 1)
  t.equal(delta(before, after, requests, { route: 'other', resource: '', status: '404' }), 1, 'an unknown path is `other`')
  t.equal(
    delta(before, after, 'gatehouse_http_request_duration_seconds_count', { route: 'mcp', resource: 'r0', status: '200' }),
    2,
    'both timed',
  )
  t.equal(
    delta(before, after, 'gatehouse_http_request_duration_seconds_bucket', { route: 'mcp', resource: 'r0', status: '200', le: '+Inf' }),
    2,
  )

  t.equal(delta(before, after, 'gatehouse_upstream_requests_total', { resource: 'r0', outcome: 'ok' }), 2, 'the refused call never went upstream')
  t.equal(delta(before, after, 'gatehouse_upstream_response_duration_seconds_count', { resource: 'r0' }), 2)
  t.ok(after.value('gatehouse_upstream_response_duration_seconds_sum', { resource: 'r0' }) > 0, 'a positive latency')
  t.equal(delta(before, after, 'gatehouse_upstream_requests_total', { resource: 'r1', outcome: 'ok' }), 0)
  t.equal(upstream.requests.length, 2)
})

t.test('an upstream that is down or silent is counted by outcome', async (t) => {
  // Reserved and never listened on: connecting is refused, and no other test can open it meanwhile.
  const down = `http://127.0.0.1:${await reservePort(t)}/mcp`
  const silent = await rawUpstream(t, () => {})
  const gw = await metricsGateway(t, {
    resources: [{ upstream: down }, { upstream: silent, timeouts: { responseHeadersMs: 300 } }],
  })
  const before = await gw.scrape()
  t.equal((await postJsonRpc(gw.mcpUrl('r0'), ping, { authorization: `Bearer ${await gw.mint({ resource: 'r0' })}` })).status, 502)
  t.equal((await postJsonRpc(gw.mcpUrl('r1'), ping, { authorization: `Bearer ${await gw.mint({ resource: 'r1' })}` })).status, 504)
  const after = await gw.scrape()
  const upstreams = 'gatehouse_upstream_requests_total'
  t.equal(delta(before, after, upstreams, { resource: 'r0', outcome: 'connection_refused' }), 1, 'refused connection')
  t.equal(delta(before, after, upstreams, { resource: 'r1', outcome: 'timeout' }), 1, 'no response headers in time')
  t.equal(delta(before, after, upstreams, { resource: 'r0', outcome: 'ok' }), 0)
  t.equal(delta(before, after, 'gatehouse_upstream_response_duration_seconds_count', { resource: 'r0' }), 0, 'failures are not latency')
  t.equal(delta(before, after, 'gatehouse_http_requests_total', { route: 'mcp', resource: 'r0', status: '502' }), 1)
  t.equal(delta(before, after, 'gatehouse_http_requests_total', { route: 'mcp', resource: 'r1', status: '504' }), 1)
})

t.test('the open-streams gauge follows event streams and returns to 0', async (t) => {
  let endStream: (() => void) | undefined
  const url = await rawUpstream(t, (req, res) => {
    req.resume()
    res.writeHead(200, { 'content-type': 'text/event-stream' })
    res.write('event: message\ndata: {"n":1}\n\n')
    endStream = () => res.end('event: message\ndata: {"n":2}\n\n')
  })
  const gw = await metricsGateway(t, { resources: [{ upstream: url }] })
  const auth = { authorization: `Bearer ${await gw.mint()}`, 'content-type': 'application/json', accept: 'text/event-stream' }
  const open = async () => (await gw.scrape()).value('gatehouse_sse_streams_open', { resource: 'r0' })
  const before = await gw.scrape()

  // 1. The client goes away.
  const controller = new AbortController()
  const first = await fetch(gw.mcpUrl(), { method: 'POST', headers: auth, body: JSON.stringify(ping), signal: controller.signal })
  t.match((await readSseEvents(first).next()).value, { data: '{"n":1}' })
  t.equal(await open(), 1, 'one stream open')
  // 2. A second stream, which the upstream ends.
  const second = await fetch(gw.mcpUrl(), { method: 'POST', headers: auth, body: JSON.stringify(ping) })
  const events = readSseEvents(second)
  t.match((await events.next()).value, { data: '{"n":1}' })
  t.equal(await open(), 2, 'two streams open')

  controller.abort()
  await until(t, 'the aborted stream is no longer open', async () => (await open()) === 1)
  endStream!()
  t.match((await events.next()).value, { data: '{"n":2}' })
  t.equal((await events.next()).done, true, 'the upstream ended the second stream')
  await until(t, 'the gauge is back to 0', async () => (await open()) === 0)

  const after = await gw.scrape()
  t.equal(delta(before, after, 'gatehouse_sse_streams_total', { resource: 'r0' }), 2, 'two streams opened')
  // Fastify's onResponse runs when a response finishes; one the client abandons never does.
  t.equal(delta(before, after, 'gatehouse_http_requests_total', { route: 'mcp', resource: 'r0', status: '200' }), 1, 'the finished one is a request')
  t.equal(
    delta(before, after, 'gatehouse_http_request_duration_seconds_count', { route: 'mcp', resource: 'r0', status: '200' }),
    0,
    'a stream lifetime is not a request latency',
  )
  t.equal(delta(before, after, 'gatehouse_upstream_response_duration_seconds_count', { resource: 'r0' }), 2, 'time to first byte is')
})

t.test('a notification stream cut by shutdown leaves the gauge at 0', async (t) => {
  const upstream = await startSdk1Upstream({ stateful: true, jsonResponse: true })
  t.teardown(() => upstream.close())
  const gw = await metricsGateway(t, { resources: [{ upstream: upstream.url }] })
  const token = await gw.mint()
  const init = {
    jsonrpc: '2.0',
    id: 1,
    method: 'initialize',
    params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'metrics-test', version: '1' } },
  }
  const initRes = await postJsonRpc(gw.mcpUrl(), init, { authorization: `Bearer ${token}`, accept: 'application/json, text/event-stream' })
  const session = initRes.headers.get('mcp-session-id')!
  t.ok(session, 'a session')
  const stream = await fetch(gw.mcpUrl(), {
    headers: { authorization: `Bearer ${token}`, accept: 'text/event-stream', 'mcp-session-id': session, 'mcp-protocol-version': '2025-11-25' },
  })
  t.equal(stream.status, 200)
  await upstream.waitForGetStreams(1)
  await until(t, 'the GET stream is counted', async () => (await gw.scrape()).value('gatehouse_sse_streams_open', { resource: 'r0' }) === 1)
  const reading = stream.text().catch(() => '')
  await gw.close()
  await reading
  // The listener closed with the gateway; the registry is still there to read.
  const after = parseExposition(await gw.gateway.metrics!.exposition())
  t.equal(after.value('gatehouse_sse_streams_open', { resource: 'r0' }), 0, 'shutdown ended the stream and the gauge followed')
  t.equal(after.value('gatehouse_sse_streams_total', { resource: 'r0' }), 1)
})

t.test('label values are bounded: no client id, subject, token, URL or path ever becomes one', async (t) => {
  const upstream = await startSdk1Upstream({ stateful: false, jsonResponse: true })
  t.teardown(() => upstream.close())
  const gw = await metricsGateway(t, {
    resources: [{ upstream: upstream.url }],
    config: { registration: { enabled: true } },
  })
  const clientId = 'https://client.example.com/oauth/metadata.json'
  const token = await gw.mint({ sub: 'carol@example.com', clientId })
  const secrets = [token, clientId, 'carol', 'example.com', 'secret-path-segment', 'evil.example', 'PLANTED']
  await postJsonRpc(gw.mcpUrl(), ping, { authorization: `Bearer ${token}` })
  await postJsonRpc(`${gw.mcpUrl()}?user=carol`, ping, { authorization: `Bearer ${token}` })
  await postJsonRpc(gw.mcpUrl(), ping, { authorization: `Bearer ${token}x` })
  await fetch(`${gw.origin}/secret-path-segment/carol`)
  await fetch(`${gw.origin}/oauth/authorize?client_id=${encodeURIComponent('https://evil.example/c.json')}&redirect_uri=x`)
  await fetch(`${gw.origin}/oauth/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: `grant_type=PLANTED&client_id=${encodeURIComponent(clientId)}`,
  })
  await fetch(`${gw.origin}/oauth/register`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ redirect_uris: ['https://evil.example/cb'], client_name: 'PLANTED' }),
  })
  const exposition = await gw.scrape()
  for (const s of secrets) t.notOk(exposition.text.includes(s), `${s.slice(0, 40)}… appears nowhere in the exposition`)

  const allowed: Record<string, RegExp> = {
    route: /^(mcp|prm|as_metadata|jwks|authorize|token|register|revoke|introspect|login|health|other)$/,
    resource: /^(r0|other|)$/,
    status: /^[1-5]\d\d$/,
    le: /^(\d+(\.\d+)?(e-?\d+)?|\+Inf)$/,
  }
  const offending: string[] = []
  for (const sample of exposition.samples) {
    for (const [label, value] of Object.entries(sample.labels)) {
      const rule = sample.name.startsWith('gatehouse_') ? allowed[label] : undefined
      if (!/^[A-Za-z0-9_.+-]*$/.test(value) || (rule && !rule.test(value))) offending.push(`${sample.name}{${label}="${value}"}`)
    }
  }
  t.ok(exposition.samples.length > 100, `${exposition.samples.length} samples checked`)
  t.same(offending, [], 'every label value is a plain word from a bounded set')
})

t.test('the metrics listener cannot share the main port', async (t) => {
  const base = { publicUrl: 'http://127.0.0.1:8080', resources: [{ id: 'r', name: 'R', path: '/mcp', upstream: 'http://127.0.0.1:9/mcp' }] }
  t.throws(() => loadConfigObject({ ...base, metrics: { enabled: true, listen: { port: 8080 } } }, 'test'), {
    name: 'ConfigError',
    problems: [{ path: 'metrics.listen.port', message: /must differ from listen\.port/ }],
  })
  const ok = loadConfigObject({ ...base, metrics: { enabled: true } }, 'test')
  t.same(ok.metrics, { enabled: true, listen: { host: '0.0.0.0', port: 9464 }, path: '/metrics' }, 'the defaults')
  t.same(loadConfigObject(base, 'test').tracing, {
    enabled: false,
    otlpEndpoint: 'http://127.0.0.1:4318/v1/traces',
    serviceName: 'gatehouse',
    sampleRatio: 1,
  })
})
