/**
 * Optional OpenTelemetry tracing, checked end to end: a real gateway exports spans over
 * OTLP/HTTP (JSON) to a loopback receiver started here, and the upstream MCP server receives the
 * W3C traceparent of the `upstream` span. With tracing off, the SDK is never loaded and the
 * span helpers hand back what they were given.
 */
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { createRequire } from 'node:module'
import t, { type Test } from 'tap'
import { NO_SPAN, startSpan, tracingActive, withSpan } from '../../src/tracing/span.js'
import { startHttpDocServer } from '../cimd/servers.js'
import { postJsonRpc } from '../fixtures/mcp-clients.js'
import { startSdk1Upstream } from '../fixtures/mcp-upstream.js'
import { authorizeUrl } from '../helpers/authorize-url.js'
import { startTestGateway } from '../helpers/gateway.js'

interface ReceivedSpan {
  name: string
  traceId: string
  spanId: string
  parentSpanId?: string
  kind: number
  attributes: Record<string, unknown>
  status?: { code?: number; message?: string }
  service: unknown
}

/** An OTLP/HTTP traces receiver on loopback: accepts JSON export requests and keeps the spans. */
async function otlpReceiver(t: Test) {
  const spans: ReceivedSpan[] = []
  const contentTypes: string[] = []
  const server = createServer((req, res) => {
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', () => {
      contentTypes.push(String(req.headers['content-type']))
      if (req.method !== 'POST' || req.url !== '/v1/traces') return res.writeHead(404).end()
      const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as {
        resourceSpans: { resource: { attributes: Attr[] }; scopeSpans: { spans: (Omit<ReceivedSpan, 'attributes' | 'service'> & { attributes?: Attr[] })[] }[] }[]
      }
      for (const rs of body.resourceSpans) {
        const service = attrs(rs.resource.attributes)['service.name']
        for (const ss of rs.scopeSpans) for (const s of ss.spans) spans.push({ ...s, attributes: attrs(s.attributes ?? []), service })
      }
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}')
    })
  })
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  t.teardown(() => {
    server.closeAllConnections()
    server.close()
  })
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1/traces`, spans, contentTypes }
}

type Attr = { key: string; value: Record<string, unknown> }
function attrs(list: Attr[]): Record<string, unknown> {
  const out: Record<string, unknown> = {}
  for (const { key, value } of list) out[key] = Object.values(value)[0]
  return out
}

const loadedOtelSdk = () => Object.keys(createRequire(import.meta.url).cache).filter((p) => /@opentelemetry[\\/](sdk-trace|exporter)/.test(p))
const ping = { jsonrpc: '2.0', id: 1, method: 'ping' }
const CLIENT_TRACEPARENT = '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01'

// First, before any gateway in this process turns tracing on.
t.test('tracing off (the default): no SDK loaded, helpers pass through, the client traceparent is untouched', async (t) => {
  const upstream = await startSdk1Upstream({ stateful: false, jsonResponse: true })
  t.teardown(() => upstream.close())
  const gw = await startTestGateway(t, { resources: [{ upstream: upstream.url }] })
  t.equal(gw.config.tracing.enabled, false)
  t.notOk(tracingActive())
  const res = await postJsonRpc(gw.mcpUrl(), ping, { authorization: `Bearer ${await gw.mint()}`, traceparent: CLIENT_TRACEPARENT })
  t.equal(res.status, 200)
  t.equal(upstream.requests.at(-1)!.headers.traceparent, CLIENT_TRACEPARENT, 'passed on as any other header, as before')
  t.same(loadedOtelSdk(), [], 'the OpenTelemetry SDK and exporter were never loaded')

  const promise = Promise.resolve(42)
  t.equal(withSpan('x', { a: 1 }, () => promise), promise, 'withSpan returns the very promise of its function: no wrapping')
  t.equal(startSpan('x'), NO_SPAN, 'startSpan hands back the shared no-op handle')
  t.equal(NO_SPAN.run(() => 7), 7)
})

t.test('tracing on: authorize, token, cimd.fetch and upstream spans reach the OTLP receiver', async (t) => {
  t.setTimeout(60_000)
  const receiver = await otlpReceiver(t)
  const upstream = await startSdk1Upstream({ stateful: false, jsonResponse: true })
  t.teardown(() => upstream.close())
  const docs = await startHttpDocServer()
  t.teardown(() => docs.close())
  const clientId = `${docs.origin}/client.json`
  docs.routes.set('/client.json', (_req, res) => {
    res.writeHead(200, { 'content-type': 'application/json' }).end(
      JSON.stringify({ client_id: clientId, client_name: 'Traced', redirect_uris: ['http://127.0.0.1/callback'] }),
    )
  })
  const gw = await startTestGateway(t, {
    resources: [{ upstream: upstream.url }],
    config: {
      tracing: { enabled: true, otlpEndpoint: receiver.url, serviceName: 'gatehouse-under-test' },
      cimd: { enabled: true, allowHttp: true, allowPrivateAddresses: true, trust: { any: true } },
    },
  })
  t.ok(tracingActive(), 'a tracer is installed')

  const res = await postJsonRpc(gw.mcpUrl(), ping, { authorization: `Bearer ${await gw.mint()}`, traceparent: CLIENT_TRACEPARENT, tracestate: 'vendor=x' })
  t.equal(res.status, 200)
  const seen = upstream.requests.at(-1)!.headers
  t.match(seen.traceparent, /^00-[0-9a-f]{32}-[0-9a-f]{16}-0[01]$/, 'the upstream gets a W3C traceparent')
  t.not(seen.traceparent, CLIENT_TRACEPARENT, "the client's trace is not continued")
  t.notMatch(seen.traceparent, /0af7651916cd43dd8448eb211c80319c/, 'not even its trace id')
  t.equal(seen.tracestate, undefined, "the client's tracestate belongs to its trace and is dropped")

  const authorize = authorizeUrl(gw.origin, {
    client_id: clientId,
    redirect_uri: 'http://127.0.0.1:5555/callback',
    code_challenge: 'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM',
    state: 's',
  })
  const page = await fetch(authorize)
  t.ok(page.status < 500, `authorize answered ${page.status}`)
  t.equal(docs.hits.get('/client.json'), 1, 'the metadata document was fetched')
  const token = await fetch(`${gw.origin}/oauth/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: 'grant_type=authorization_code&code=nope&client_id=nobody',
  })
  t.ok(token.status >= 400 && token.status < 500, `token refused (${token.status})`)

  await gw.close() // flushes the batch
  t.notOk(tracingActive(), 'closing the gateway uninstalls its tracer')
  t.ok(receiver.contentTypes.every((c) => c.startsWith('application/json')), 'OTLP/HTTP with JSON bodies')

  const byName = (name: string) => receiver.spans.filter((s) => s.name === name)
  const [up] = byName('upstream')
  t.ok(up, 'an upstream span')
  t.equal(seen.traceparent, `00-${up!.traceId}-${up!.spanId}-01`, 'the traceparent the upstream saw names the upstream span')
  t.match(up!.attributes, { 'gatehouse.resource': 'r0', 'http.response.status_code': 200 })
  t.equal(up!.kind, 3, 'a client span')
  t.equal(up!.service, 'gatehouse-under-test', 'service.name from the configuration')

  const [auth] = byName('authorize')
  t.ok(auth, 'an authorize span')
  t.equal(auth!.kind, 2, 'a server span')
  const [fetchSpan] = byName('cimd.fetch')
  t.ok(fetchSpan, 'a cimd.fetch span')
  t.equal(fetchSpan?.parentSpanId, auth?.spanId, 'the document fetch is a child of the authorize span')
  t.equal(fetchSpan?.traceId, auth?.traceId)
  const [tok] = byName('token')
  t.ok(tok, 'a token span')
  t.match(tok!.attributes, { 'http.request.method': 'POST', 'http.route': '/oauth/token' })
  t.ok((tok!.attributes['http.response.status_code'] as number) >= 400)

  const everything = JSON.stringify(receiver.spans)
  for (const secret of ['nope', 'nobody', 'Bearer', CLIENT_TRACEPARENT]) t.notMatch(everything, secret, `no ${secret} in any span`)
})

t.test('a failing upstream ends its span as an error', async (t) => {
  const receiver = await otlpReceiver(t)
  const gw = await startTestGateway(t, {
    resources: [{ upstream: 'http://127.0.0.1:9/mcp' }],
    config: { tracing: { enabled: true, otlpEndpoint: receiver.url } },
  })
  t.equal((await postJsonRpc(gw.mcpUrl(), ping, { authorization: `Bearer ${await gw.mint()}` })).status, 502)
  await gw.close()
  const up = receiver.spans.find((s) => s.name === 'upstream')
  t.ok(up, 'an upstream span')
  t.equal(up?.status?.code, 2, 'status ERROR')
  t.equal(up?.attributes['error.type'], 'connection_refused')
  t.equal(up?.service, 'gatehouse', 'the default service name')
})
