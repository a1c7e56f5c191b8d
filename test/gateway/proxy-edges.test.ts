/**
 * The proxy under stress and abuse: oversized bodies, session hijacking (MCPS-10..12), an
 * upstream that is down, slow or idle, and clients that hang up (MCPT-16).
 */
import t from 'tap'
import { connectSdk1Client, postJsonRpc, readSseEvents } from '../fixtures/mcp-clients.js'
import { startSdk1Upstream } from '../fixtures/mcp-upstream.js'
import { rawUpstream } from '../fixtures/raw-upstream.js'
import { startTestGateway } from '../helpers/gateway.js'
import { reservePort } from '../helpers/ports.js'

const ping = { jsonrpc: '2.0', id: 1, method: 'ping' }

t.test('bodies over maxBodyBytes are refused with 413 before the upstream sees them', async (t) => {
  const upstream = await startSdk1Upstream({ stateful: false, jsonResponse: true })
  t.teardown(() => upstream.close())
  const gw = await startTestGateway(t, { resources: [{ upstream: upstream.url, maxBodyBytes: 2048 }] })
  const auth = { authorization: `Bearer ${await gw.mint()}` }
  const big = { jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'echo', arguments: { text: 'x'.repeat(4096) } } }
  const res = await postJsonRpc(gw.mcpUrl(), big, auth)
  t.equal(res.status, 413)
  t.match(JSON.parse(res.text), { jsonrpc: '2.0', error: { message: /too large/ } })

  // Without Content-Length (chunked), the limit still holds while reading.
  const chunked = await fetch(gw.mcpUrl(), {
    method: 'POST',
    headers: { ...auth, 'content-type': 'application/json' },
    body: new ReadableStream({
      start(c) {
        for (let i = 0; i < 8; i++) c.enqueue(new TextEncoder().encode('x'.repeat(512)))
        c.close()
      },
    }),
    duplex: 'half',
  } as RequestInit)
  t.equal(chunked.status, 413)
  t.equal(upstream.requests.length, 0)
})

t.test("one user's token cannot ride another user's session (MCPS-10, MCPS-11, MCPS-12)", async (t) => {
  const upstream = await startSdk1Upstream({ stateful: true, jsonResponse: true })
  t.teardown(() => upstream.close())
  const gw = await startTestGateway(t, { resources: [{ upstream: upstream.url }] })
  const alice = await gw.mint({ sub: 'alice', clientId: 'client-a' })
  const client = await connectSdk1Client(gw.mcpUrl(), { token: alice })
  t.teardown(() => client.close())
  await client.listTools()
  const sessionId = upstream.sessionIds()[0]!
  t.ok(sessionId)
  const before = upstream.requests.length
  const call = (token: string) =>
    postJsonRpc(gw.mcpUrl(), { jsonrpc: '2.0', id: 9, method: 'tools/list' }, {
      authorization: `Bearer ${token}`,
      'mcp-session-id': sessionId,
      'mcp-protocol-version': '2025-11-25',
    })

  const bob = await call(await gw.mint({ sub: 'bob', clientId: 'client-a' }))
  t.equal(bob.status, 404, 'another subject: as if the session did not exist')
  const otherClient = await call(await gw.mint({ sub: 'alice', clientId: 'client-b' }))
  t.equal(otherClient.status, 404, 'same subject through another client: refused too')
  const invented = await postJsonRpc(gw.mcpUrl(), ping, { authorization: `Bearer ${alice}`, 'mcp-session-id': 'guessed-session' })
  t.equal(invented.status, 404, 'an unbound session id is refused by the gateway')
  t.equal(upstream.requests.length, before, 'none of these reached the upstream')
  const noToken = await postJsonRpc(gw.mcpUrl(), ping, { 'mcp-session-id': sessionId })
  t.equal(noToken.status, 401, 'a session id is never authentication (MCPS-10)')

  t.equal((await call(alice)).status, 200, 'the owner still gets through')

  const del = await fetch(gw.mcpUrl(), {
    method: 'DELETE',
    headers: { authorization: `Bearer ${alice}`, 'mcp-session-id': sessionId, 'mcp-protocol-version': '2025-11-25' },
  })
  t.equal(del.status, 200, 'DELETE ends the session')
  t.equal((await call(alice)).status, 404, 'an ended session is no longer bound')
})

t.test('an unreachable upstream: 502 with a JSON-RPC error, no internal address in it', async (t) => {
  // Reserved and never listened on: connecting is refused, and no other test can open it meanwhile.
  const port = await reservePort(t)
  const gw = await startTestGateway(t, { resources: [{ upstream: `http://127.0.0.1:${port}/mcp` }] })
  const res = await postJsonRpc(gw.mcpUrl(), ping, { authorization: `Bearer ${await gw.mint()}` })
  t.equal(res.status, 502)
  const body = JSON.parse(res.text)
  t.match(body, { jsonrpc: '2.0', id: null, error: { code: -32001, message: 'the MCP server is unavailable' } })
  t.notMatch(res.text, String(port))
  t.ok(gw.logs.some((l) => /ECONNREFUSED|UND_ERR/.test(JSON.stringify(l))), 'the cause is logged for the operator')
})

t.test('an upstream that never answers: 504 after responseHeadersMs', async (t) => {
  const url = await rawUpstream(t, () => {})
  const gw = await startTestGateway(t, { resources: [{ upstream: url, timeouts: { responseHeadersMs: 300 } }] })
  const started = Date.now()
  const res = await postJsonRpc(gw.mcpUrl(), ping, { authorization: `Bearer ${await gw.mint()}` })
  t.equal(res.status, 504)
  t.match(JSON.parse(res.text), { error: { code: -32001 } })
  t.ok(Date.now() - started < 3000, 'no hang')
})

t.test('an idle SSE stream is not cut by the headers timeout; a hang-up cancels the upstream (MCPT-16)', async (t) => {
  let upstreamClosed = false
  let sendMore: (() => void) | undefined
  const url = await rawUpstream(t, (req, res) => {
    req.resume()
    res.writeHead(200, { 'content-type': 'text/event-stream' })
    res.write('event: message\ndata: {"n":1}\n\n')
    res.on('close', () => {
      upstreamClosed = true
    })
    sendMore = () => res.write('event: message\ndata: {"n":2}\n\n')
  })
  const gw = await startTestGateway(t, { resources: [{ upstream: url, timeouts: { responseHeadersMs: 200 } }] })
  const controller = new AbortController()
  const response = await fetch(gw.mcpUrl(), {
    method: 'POST',
    headers: { authorization: `Bearer ${await gw.mint()}`, 'content-type': 'application/json', accept: 'text/event-stream' },
    body: JSON.stringify(ping),
    signal: controller.signal,
  })
  const events = readSseEvents(response)
  t.match((await events.next()).value, { data: '{"n":1}' })
  await new Promise((r) => setTimeout(r, 1200)) // six times the headers timeout, idle
  sendMore!()
  t.match((await events.next()).value, { data: '{"n":2}' }, 'the stream survived the idle period')
  t.notOk(upstreamClosed)
  controller.abort()
  const deadline = Date.now() + 2000
  while (!upstreamClosed && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20))
  t.ok(upstreamClosed, 'the upstream request ended when the client went away')
})

t.test('an event stream\'s head reaches the client before its first event (MCPT-03)', async (t) => {
  // The upstream answers 200 with its head flushed and then stays silent, as a GET notification
  // stream does until something changes.
  let release!: () => void
  const silent = new Promise<void>((r) => (release = r))
  t.teardown(() => release())
  const upstream = await rawUpstream(t, (_req, res) => {
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' }).flushHeaders()
    void silent.then(() => res.end('data: {"jsonrpc":"2.0","method":"notifications/x"}\n\n'))
  })
  const gw = await startTestGateway(t, { resources: [{ upstream }] })
  const started = Date.now()
  const aborted = AbortSignal.timeout(5000)
  const res = await fetch(gw.mcpUrl(), {
    headers: { authorization: `Bearer ${await gw.mint()}`, accept: 'text/event-stream', 'mcp-protocol-version': '2025-11-25' },
    signal: aborted,
  })
  t.equal(res.status, 200, 'the head arrived while the stream is silent')
  t.ok(Date.now() - started < 4000, `within ${Date.now() - started} ms`)
  t.equal(res.headers.get('content-type'), 'text/event-stream')
  release()
  t.match(await res.text(), /notifications\/x/, 'the event follows on the same stream')
})

t.test('sseKeepAliveSeconds: a quiet stream gets comments between events, never inside one; the events arrive unchanged', async (t) => {
  let send!: (text: string) => void
  const upstream = await rawUpstream(t, (_req, res) => {
    res.writeHead(200, { 'content-type': 'text/event-stream' }).flushHeaders()
    send = (text) => res.write(text)
  })
  const gw = await startTestGateway(t, { resources: [{ upstream, sseKeepAliveSeconds: 1 }] })
  const res = await fetch(gw.mcpUrl(), {
    headers: { authorization: `Bearer ${await gw.mint()}`, accept: 'text/event-stream', 'mcp-protocol-version': '2025-11-25' },
    signal: AbortSignal.timeout(30_000),
  })
  const reader = res.body!.pipeThrough(new TextDecoderStream()).getReader()
  let received = ''
  void (async () => {
    for (;;) {
      const { value, done } = await reader.read().catch(() => ({ value: undefined, done: true }))
      if (done) return
      received += value
    }
  })()
  const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))
  const until = async (what: () => boolean) => {
    for (const deadline = Date.now() + 8_000; !what() && Date.now() < deadline; ) await sleep(20)
  }
  const EVENT = 'event: message\ndata: {"jsonrpc":"2.0","method":"notifications/a"}\n'
  await until(() => received.length > 0)
  t.equal(received, ': keep-alive\n\n', 'a quiet stream: a comment after a second')
  send(EVENT)
  await sleep(2_500)
  t.notMatch(received.slice(received.indexOf('notifications/a')), /keep-alive/, 'no comment inside the event still being sent')
  send('\n')
  await until(() => /notifications\/a"}\n\n: keep-alive/.test(received))
  t.match(
    received,
    /^(: keep-alive\n\n)+event: message\ndata: \{"jsonrpc":"2\.0","method":"notifications\/a"\}\n\n(: keep-alive\n\n)+$/,
    'the event passed byte for byte; once it ended, comments again',
  )
  await reader.cancel()
})

t.test('an upstream cannot set the gateway’s own cookies', async (t) => {
  const url = await rawUpstream(t, (req, res) => {
    req.resume()
    res.setHeader('set-cookie', ['__Host-gatehouse-session=planted; Path=/', 'upstream=ok'])
    res.writeHead(200, { 'content-type': 'application/json' }).end('{"jsonrpc":"2.0","id":1,"result":{}}')
  })
  const gw = await startTestGateway(t, { resources: [{ upstream: url }] })
  const res = await postJsonRpc(gw.mcpUrl(), ping, { authorization: `Bearer ${await gw.mint()}` })
  t.equal(res.status, 200)
  t.same(res.headers.getSetCookie(), ['upstream=ok'])
})

t.test('one Set-Cookie from the upstream is checked and passed on like several', async (t) => {
  let cookie = 'upstream=ok; Path=/'
  const url = await rawUpstream(t, (req, res) => {
    req.resume()
    res.setHeader('set-cookie', cookie)
    res.writeHead(200, { 'content-type': 'application/json' }).end('{"jsonrpc":"2.0","id":1,"result":{}}')
  })
  const gw = await startTestGateway(t, { resources: [{ upstream: url }] })
  const token = await gw.mint()
  const passed = await postJsonRpc(gw.mcpUrl(), ping, { authorization: `Bearer ${token}` })
  t.equal(passed.status, 200)
  t.same(passed.headers.getSetCookie(), ['upstream=ok; Path=/'])
  cookie = 'gatehouse-session=planted; Path=/'
  const refused = await postJsonRpc(gw.mcpUrl(), ping, { authorization: `Bearer ${token}` })
  t.equal(refused.status, 200)
  t.same(refused.headers.getSetCookie(), [], 'the gateway’s own cookie name is dropped when it comes alone too')
})

t.test('an upstream 503 to a GET stream reaches the client at once: the gateway does not retry on its own', async (t) => {
  let asked = 0
  const url = await rawUpstream(t, (req, res) => {
    req.resume()
    asked++
    res.writeHead(503, { 'content-type': 'application/json', 'retry-after': '1' }).end('{"error":"busy"}')
  })
  const gw = await startTestGateway(t, { resources: [{ upstream: url }] })
  const res = await fetch(gw.mcpUrl(), {
    headers: { authorization: `Bearer ${await gw.mint()}`, accept: 'text/event-stream', 'mcp-protocol-version': '2025-11-25' },
    signal: AbortSignal.timeout(5000),
  })
  t.equal(res.status, 503)
  t.equal(res.headers.get('retry-after'), '1', 'the upstream\'s Retry-After is the client\'s to honour')
  t.equal(await res.text(), '{"error":"busy"}')
  t.equal(asked, 1, 'one request upstream, not reply-from\'s ten retries')
})

t.test('odd upstream response headers (repeats, inherited names, __proto__, a Connection list) are answered, never a hang', async (t) => {
  const url = await rawUpstream(t, (req, res) => {
    req.resume()
    res.socket!.write(
      'HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-type: application/json\r\nconnection: keep-alive, x-hop\r\n' +
        'x-hop: secret-hop\r\nconstructor: c\r\n__proto__: p\r\nset-cookie: a=1\r\nset-cookie: gatehouse-session=x\r\nx-twice: 1\r\nx-twice: 2\r\n' +
        'content-length: 36\r\n\r\n{"jsonrpc":"2.0","id":1,"result":{}}',
    )
  })
  const gw = await startTestGateway(t, { resources: [{ upstream: url }] })
  const res = await postJsonRpc(gw.mcpUrl(), ping, { authorization: `Bearer ${await gw.mint()}` })
  t.equal(res.status, 200)
  t.equal(res.headers.get('x-hop'), null, 'a header the upstream names in Connection stays on its hop (RFC 9110 §7.6.1)')
  t.equal(res.headers.get('x-twice'), '1, 2')
  t.equal(res.headers.get('constructor'), 'c')
  t.same(res.headers.getSetCookie(), ['a=1'], 'the gateway’s own cookie is dropped from a list too')
})
