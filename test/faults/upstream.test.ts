/**
 * The upstream MCP server misbehaving under a running gateway: killed and restarted, accepting
 * and never answering, answering with bytes that are not HTTP, resetting mid-stream, sending a
 * non-JSON body, a 500, a huge body, and many long-lived notification streams at once. The
 * gateway answers its own failures with 502/504 JSON-RPC errors, relays what the upstream really
 * said, never hangs, never crashes, leaks no sockets, and serves the next request.
 */
import { createServer as createHttpServer, type IncomingMessage, type ServerResponse } from 'node:http'
import { createServer as createTcpServer, type AddressInfo, type Server, type Socket } from 'node:net'
import t, { type Test } from 'tap'
import { Agent, request } from 'undici'
import { postJsonRpc, readSseEvents } from '../fixtures/mcp-clients.js'
import { startTestGateway, type TestGateway } from '../helpers/gateway.js'
import { reservePort } from '../helpers/ports.js'
import { watchStrayErrors } from '../helpers/stray-errors.js'
import { eventually, openFds, timed } from './fault-kit.js'

const ping = { jsonrpc: '2.0', id: 1, method: 'ping' }
const toolsList = { jsonrpc: '2.0', id: 5, method: 'tools/list' }
const OK_BODY = '{"jsonrpc":"2.0","id":1,"result":{}}'
const HEADERS_MS = 400

type Handler = (req: IncomingMessage, res: ServerResponse) => void

/**
 * An HTTP upstream whose behaviour the test switches at will. Its port is reserved for the test
 * (not port 0): stopped, it refuses connections and nothing else can take the port, so a
 * restart always gets it back.
 */
async function switchableUpstream(t: Test) {
  let handler: Handler = (req, res) => {
    req.resume()
    res.writeHead(200, { 'content-type': 'application/json' }).end(OK_BODY)
  }
  let server = createHttpServer((req, res) => handler(req, res))
  const port = await reservePort(t)
  const listen = () => new Promise<void>((r) => server.listen(port, '127.0.0.1', 1024, r))
  await listen()
  const stop = async () => {
    server.closeAllConnections()
    await new Promise<void>((r) => server.close(() => r()))
  }
  t.teardown(() => (server.listening ? stop() : undefined))
  return {
    url: `http://127.0.0.1:${port}/mcp`,
    set: (h: Handler) => void (handler = h),
    stop,
    restart: async () => {
      server = createHttpServer((req, res) => handler(req, res))
      await listen()
    },
    connections: () => new Promise<number>((r) => server.getConnections((_e, n) => r(n))),
  }
}

/** A TCP upstream: what it does with each connection is up to the test (garbage, silence). */
async function tcpUpstream(t: Test, onConnection: (socket: Socket) => void): Promise<{ url: string; server: Server }> {
  const sockets = new Set<Socket>()
  const server = createTcpServer((socket) => {
    sockets.add(socket)
    socket.on('close', () => sockets.delete(socket))
    socket.on('error', () => {})
    onConnection(socket)
  })
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  t.teardown(() => {
    for (const s of sockets) s.destroy()
    server.close()
  })
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/mcp`, server }
}

async function gateway(t: Test, url: string, resource: Record<string, unknown> = {}): Promise<TestGateway> {
  return startTestGateway(t, {
    resources: [{ upstream: url, timeouts: { responseHeadersMs: HEADERS_MS, connectMs: 300 }, ...resource }],
    config: { metrics: { enabled: true, listen: { host: '127.0.0.1', port: 0 } } },
  })
}

const call = async (gw: TestGateway, body: unknown = ping, headers: Record<string, string> = {}) =>
  postJsonRpc(gw.mcpUrl(), body, { authorization: `Bearer ${await gw.mint()}`, ...headers })

/** A gateway-made upstream error: the status, a JSON-RPC error body with code -32001, no upstream address. */
function assertUpstreamError(t: Test, res: Awaited<ReturnType<typeof postJsonRpc>>, status: 502 | 504, upstreamUrl: string, what: string) {
  t.equal(res.status, status, `${what}: ${status}`)
  t.match(res.headers.get('content-type'), /^application\/json/, `${what}: JSON`)
  t.match(JSON.parse(res.text), { jsonrpc: '2.0', error: { code: -32001, message: String } }, `${what}: a JSON-RPC error`)
  t.notMatch(res.text, new URL(upstreamUrl).port, `${what}: the upstream address is not revealed`)
}

async function openStreams(gw: TestGateway): Promise<number> {
  const text = await (await fetch(`${gw.gateway.metricsAddress}/metrics`)).text()
  return Number(/gatehouse_sse_streams_open\{[^}]*\} (\d+)/.exec(text)?.[1] ?? NaN)
}

t.test('upstream killed: 502 at once; restarted on its port: served again', async (t) => {
  const noStray = watchStrayErrors(t)
  const upstream = await switchableUpstream(t)
  const gw = await gateway(t, upstream.url)
  t.equal((await call(gw)).status, 200, 'served while up (a keep-alive connection now exists)')
  await upstream.stop()
  const down = await timed(() => call(gw))
  assertUpstreamError(t, down.value, 502, upstream.url, 'killed')
  t.ok(down.ms < 1000, `answered in ${down.ms} ms`)
  t.equal((await fetch(`${gw.origin}/readyz`)).status, 200, 'readiness is about the gateway, not one upstream')
  await upstream.restart()
  t.equal((await call(gw)).status, 200, 'the restarted upstream is used again')
  noStray()
})

t.test('an upstream that accepts and never answers: 504 after responseHeadersMs, for every waiting call', async (t) => {
  const noStray = watchStrayErrors(t)
  let waiting = 0
  let mostWaiting = 0
  const { url } = await tcpUpstream(t, (socket) => {
    socket.resume()
    mostWaiting = Math.max(mostWaiting, ++waiting)
    socket.once('close', () => waiting--)
  })
  const gw = await gateway(t, url)
  const many = await timed(() => Promise.all(Array.from({ length: 10 }, () => call(gw))))
  for (const res of many.value) assertUpstreamError(t, res, 504, url, 'silent')
  // Each call has its own upstream connection at once: none waits for another's timeout. (The
  // first connection closes about a second after it opened, ample time for the other nine.)
  t.equal(mostWaiting, 10, 'the ten calls waited on the upstream side by side')
  // undici's headers timer ticks every 499 ms and fires on the second tick after the delay is
  // set, so a 504 comes up to about 1 s after the request went upstream, later when the event
  // loop is busy; allow as much again for a machine running other tests. Ten calls one after
  // another would take ten times that; an ignored responseHeadersMs (undici's 300 s) far more.
  t.ok(many.ms < HEADERS_MS + 2000, `ten calls answered in ${many.ms} ms`)
  noStray()
})

t.test('an upstream that answers with bytes that are not HTTP: 502', async (t) => {
  const noStray = watchStrayErrors(t)
  const { url } = await tcpUpstream(t, (socket) => {
    socket.resume()
    socket.end('HELLO THIS IS NOT HTTP\r\n\r\n\x00\x01\x02')
  })
  const gw = await gateway(t, url)
  const res = await timed(() => call(gw))
  assertUpstreamError(t, res.value, 502, url, 'garbage')
  t.ok(res.ms < 1000, `answered in ${res.ms} ms`)
  noStray()
})

t.test('an upstream that resets the connection before answering: 502', async (t) => {
  const noStray = watchStrayErrors(t)
  const { url } = await tcpUpstream(t, (socket) => socket.once('data', () => socket.resetAndDestroy()))
  const gw = await gateway(t, url)
  assertUpstreamError(t, await call(gw), 502, url, 'reset')
  noStray()
})

t.test('an upstream resetting mid-SSE stream: the client sees its stream end, can reconnect, others go on', async (t) => {
  const noStray = watchStrayErrors(t)
  const upstream = await switchableUpstream(t)
  const live = new Set<ServerResponse>()
  upstream.set((req, res) => {
    req.resume()
    res.writeHead(200, { 'content-type': 'text/event-stream' })
    res.write('event: message\ndata: {"jsonrpc":"2.0","method":"notifications/message","params":{"n":1}}\n\n')
    live.add(res)
    res.on('close', () => live.delete(res))
  })
  const gw = await gateway(t, upstream.url)
  const token = await gw.mint()
  const open = () => fetch(gw.mcpUrl(), { headers: { authorization: `Bearer ${token}`, accept: 'text/event-stream' } })
  const victim = readSseEvents(await open())
  const bystander = readSseEvents(await open())
  t.match((await victim.next()).value, { json: { params: { n: 1 } } })
  t.match((await bystander.next()).value, { json: { params: { n: 1 } } })
  t.ok(await eventually(async () => live.size === 2, 2000))
  t.equal(await openStreams(gw), 2, 'two streams counted open')

  const [first, second] = [...live]
  first!.socket!.resetAndDestroy()
  const ended = await timed(() => victim.next().then(
    (r) => (r.done ? 'done' : 'event'),
    () => 'error',
  ))
  t.not(ended.value, 'event', `the cut stream ends for the client (${ended.value})`)
  t.ok(ended.ms < 2000, `promptly (${ended.ms} ms)`)

  second!.write('event: message\ndata: {"jsonrpc":"2.0","method":"notifications/message","params":{"n":2}}\n\n')
  t.match((await bystander.next()).value, { json: { params: { n: 2 } } }, 'the other stream carries on')
  const again = readSseEvents(await open())
  t.match((await again.next()).value, { json: { params: { n: 1 } } }, 'the cut client reconnects')
  t.ok(await eventually(async () => (await openStreams(gw)) === 2, 2000), 'the cut stream is no longer counted open')
  await again.return(undefined)
  await bystander.return(undefined)
  t.equal((await fetch(`${gw.origin}/healthz`)).status, 200, 'the gateway is up')
  noStray()
})

t.test('an upstream resetting mid-JSON body: the client sees a cut response, the next call works', async (t) => {
  const noStray = watchStrayErrors(t)
  const upstream = await switchableUpstream(t)
  const gw = await gateway(t, upstream.url)
  upstream.set((req, res) => {
    req.resume()
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': '5000' })
    res.write('{"jsonrpc":"2.0","id":1,"result":{"pad":"')
    setTimeout(() => res.socket?.resetAndDestroy(), 50)
  })
  const cut = await timed(() => call(gw).then(
    (r) => `complete ${r.status}`,
    () => 'cut',
  ))
  t.equal(cut.value, 'cut', 'the client does not get a silently truncated body as complete')
  t.ok(cut.ms < 2000, `in ${cut.ms} ms`)
  upstream.set((req, res) => {
    req.resume()
    res.writeHead(200, { 'content-type': 'application/json' }).end(OK_BODY)
  })
  t.equal((await call(gw)).status, 200, 'the next call works')
  noStray()
})

t.test('a list answer cut mid-body while lists are filtered: a 502 that does not blame the size', async (t) => {
  const noStray = watchStrayErrors(t)
  const upstream = await switchableUpstream(t)
  upstream.set((req, res) => {
    req.resume()
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': '5000' })
    res.write('{"jsonrpc":"2.0","id":5,"result":{"tools":[')
    setTimeout(() => res.socket?.resetAndDestroy(), 50)
  })
  const gw = await gateway(t, upstream.url, { policy: { filterLists: true } })
  const res = await call(gw, toolsList)
  assertUpstreamError(t, res, 502, upstream.url, 'cut list')
  t.notMatch(JSON.parse(res.text).error.message, /too large/, 'the message says what happened')
  noStray()
})

t.test('what the upstream really answered is relayed: a 500, a non-JSON body, a wrong content type', async (t) => {
  const noStray = watchStrayErrors(t)
  const upstream = await switchableUpstream(t)
  const gw = await gateway(t, upstream.url, { policy: { filterLists: true } })
  const cases: [string, number, string, string][] = [
    ['a 500 with a JSON-RPC error', 500, 'application/json', '{"jsonrpc":"2.0","id":1,"error":{"code":-32603,"message":"boom"}}'],
    ['invalid JSON', 200, 'application/json', '{"jsonrpc":"2.0", this is not json'],
    ['an HTML page', 200, 'text/html', '<html><body>proxy login</body></html>'],
  ]
  for (const [what, status, type, body] of cases) {
    upstream.set((req, res) => {
      req.resume()
      res.writeHead(status, { 'content-type': type }).end(body)
    })
    for (const request of [ping, toolsList]) {
      const res = await call(gw, request)
      t.equal(res.status, status, `${what} (${request.method}): status relayed`)
      t.equal(res.text, body, `${what} (${request.method}): body relayed unchanged`)
    }
  }
  t.notOk(gw.logs.some((l) => l.msg === 'unexpected error'), 'nothing unexpected for the gateway')
  t.equal((await fetch(`${gw.origin}/healthz`)).status, 200)
  noStray()
})

t.test('a huge answer streams through; a huge list to filter is refused with 502, not held', async (t) => {
  t.setTimeout(30_000)
  const noStray = watchStrayErrors(t)
  const upstream = await switchableUpstream(t)
  const MB = 1024 * 1024
  upstream.set((req, res) => {
    req.resume()
    res.writeHead(200, { 'content-type': 'application/json' })
    const chunk = Buffer.alloc(MB, 0x61)
    let sent = 0
    const more = () => {
      while (sent < 40) {
        sent += 1
        if (!res.write(chunk)) return void res.once('drain', more)
      }
      res.end()
    }
    more()
  })
  const plain = await gateway(t, upstream.url)
  const res = await fetch(plain.mcpUrl(), {
    method: 'POST',
    headers: { authorization: `Bearer ${await plain.mint()}`, 'content-type': 'application/json', accept: 'application/json' },
    body: JSON.stringify(ping),
  })
  let size = 0
  for await (const chunk of res.body!) size += (chunk as Uint8Array).length
  t.equal(size, 40 * MB, '40 MB relayed in full')

  const filtering = await gateway(t, upstream.url, { policy: { filterLists: true } })
  const list = await timed(() => call(filtering, toolsList))
  assertUpstreamError(t, list.value, 502, upstream.url, 'huge list')
  t.ok(list.ms < 5000, `refused in ${list.ms} ms`)
  t.equal((await call(filtering, ping)).status, 200, 'the next call works')
  noStray()
})

t.test('more listening clients than a connection pool would hold: calls still go through', async (t) => {
  t.setTimeout(60_000)
  const noStray = watchStrayErrors(t)
  const upstream = await switchableUpstream(t)
  upstream.set((req, res) => {
    req.resume()
    if (req.method === 'GET') {
      res.writeHead(200, { 'content-type': 'text/event-stream' })
      res.write(': listening\n\n')
      return
    }
    res.writeHead(200, { 'content-type': 'application/json' }).end(OK_BODY)
  })
  // The subject is the connection pool, not the headers timeout: this upstream sends its headers
  // at once, but fifty streams opening together on a busy machine can delay them past HEADERS_MS.
  const gw = await gateway(t, upstream.url, { timeouts: { responseHeadersMs: 3000, connectMs: 300 } })
  const token = await gw.mint()
  // Each listening client: its Response is held as long as the client (undici cancels the body of
  // a Response that is garbage collected, which would end that stream before the count below).
  const listeners: { controller: AbortController; response?: Response }[] = []
  t.teardown(() => listeners.forEach((l) => l.controller.abort()))
  const STREAMS = 300
  for (let i = 0; i < STREAMS; i += 50) {
    await Promise.all(
      Array.from({ length: 50 }, async () => {
        const controller = new AbortController()
        const listener: (typeof listeners)[number] = { controller }
        listeners.push(listener)
        // Bounded: behind a full connection pool a request waits with no timeout of its own. Only
        // until it is answered, though: aborting later would end a stream the count below expects.
        const giveUp = setTimeout(() => controller.abort(), 5000)
        const res = await fetch(gw.mcpUrl(), {
          headers: { authorization: `Bearer ${token}`, accept: 'text/event-stream' },
          signal: controller.signal,
        }).finally(() => clearTimeout(giveUp))
        listener.response = res
        if (res.status !== 200) throw new Error(`stream refused: ${res.status}`)
      }),
    )
  }
  t.equal(await openStreams(gw), STREAMS, `${STREAMS} notification streams open`)
  const res = await timed(() => call(gw))
  t.equal(res.value.status, 200, 'a call made while they listen is answered')
  // Queued behind a full pool, the call would never be answered (the streams never end), so the
  // bound only has to stand well clear of a busy machine's delays.
  t.ok(res.ms < 2000, `in ${res.ms} ms, not queued behind the streams`)
  for (const l of listeners) l.controller.abort()
  t.ok(await eventually(async () => (await upstream.connections()) <= 2, 5000), 'the upstream connections close when the clients leave')
  noStray()
})

t.test('no sockets leak across a hundred upstream failures of every kind', async (t) => {
  t.setTimeout(30_000)
  const noStray = watchStrayErrors(t)
  const silent = await tcpUpstream(t, (socket) => socket.resume())
  const garbage = await tcpUpstream(t, (socket) => {
    socket.resume() // else this test server never sees the gateway's FIN and keeps the socket
    socket.end('NOT HTTP\r\n\r\n')
  })
  const resets = await tcpUpstream(t, (socket) => socket.once('data', () => socket.resetAndDestroy()))
  const upstream = await switchableUpstream(t)
  upstream.set((req, res) => {
    req.resume()
    res.writeHead(200, { 'content-type': 'text/event-stream' })
    res.write('data: {}\n\n')
    setTimeout(() => res.socket?.resetAndDestroy(), 20)
  })
  // Reserved and never listened on: connecting is refused, and no other test can open it meanwhile.
  const refused = `http://127.0.0.1:${await reservePort(t)}/mcp`
  const gw = await startTestGateway(t, {
    resources: [silent.url, garbage.url, resets.url, upstream.url, refused].map((url) => ({
      upstream: url,
      timeouts: { responseHeadersMs: 150, connectMs: 300 },
    })),
  })
  const tokens = await Promise.all([0, 1, 2, 3, 4].map((i) => gw.mint({ resource: `r${i}` })))
  // A client of its own, closed before counting: its idle keep-alive sockets are not the gateway's.
  const client = new Agent()
  t.teardown(() => client.destroy())
  const once = async (i: number) => {
    try {
      const r = await request(gw.mcpUrl(`r${i}`), {
        method: 'POST',
        dispatcher: client,
        headers: { authorization: `Bearer ${tokens[i]}`, 'content-type': 'application/json', accept: 'application/json, text/event-stream' },
        body: JSON.stringify(ping),
      })
      await r.body.text()
      return String(r.statusCode)
    } catch {
      return 'cut'
    }
  }
  t.same(await Promise.all([0, 1, 2, 3, 4].map(once)), ['504', '502', '502', 'cut', '502'], 'each failure has its answer')
  await new Promise((r) => setTimeout(r, 200))
  const before = await openFds()
  // 100 failures, 20 of each kind at a time (the timeouts' clock ticks in about a second).
  for (let batch = 0; batch < 4; batch++) await Promise.all(Array.from({ length: 25 }, (_, k) => once(k % 5)))
  await client.close()
  const settled = await eventually(async () => (await openFds()) <= before + 5, 3000)
  t.ok(settled, `open file descriptors back to about ${before} (now ${await openFds()})`)
  t.equal((await fetch(`${gw.origin}/healthz`)).status, 200)
  noStray()
})
