/**
 * Red team: seeing tools the token may not call, with `filterLists: true`. Every list answer the
 * client can read must be filtered, however it travels: in a 2025-03-26 batch, compressed, as
 * SSE split at any byte, or replayed on a resumed GET stream.
 */
import { gzipSync } from 'node:zlib'
import t from 'tap'
import { postJsonRpc, readSseEvents } from '../fixtures/mcp-clients.js'
import { echoAnswer, echoUpstream, LISTED_TOOLS, redTeamGateway } from './mcp-kit.js'

const list = (id: unknown = 1) => ({ jsonrpc: '2.0', id, method: 'tools/list' })
/** What a token with only `mcp` may see: not the denied tool, not the admin one. */
const VISIBLE = ['echo']
const namesIn = (message: unknown) => ((message as { result: { tools: { name: string }[] } }).result.tools ?? []).map((x) => x.name)

t.test('list answers in a 2025-03-26 batch are filtered too', async (t) => {
  const up = await echoUpstream(t)
  const gw = await redTeamGateway(t, up.url)
  const auth = { authorization: `Bearer ${await gw.mint()}`, 'mcp-protocol-version': '2025-03-26' }
  const res = await postJsonRpc(gw.mcpUrl(), [list(1), { jsonrpc: '2.0', id: 2, method: 'ping' }, list('three')], auth)
  t.equal(res.status, 200)
  const answers = JSON.parse(res.text) as { id: unknown }[]
  t.equal(answers.length, 3)
  t.same(namesIn(answers[0]), VISIBLE)
  t.same(namesIn(answers[2]), VISIBLE)
  t.match(answers[1], { id: 2, result: { echoed: { method: 'ping' } } }, 'other answers untouched')
})

t.test('a compressed list answer is never passed on unfiltered', async (t) => {
  const up = await echoUpstream(t, (req, res, body) => {
    const answer = JSON.stringify(echoAnswer(JSON.parse(body.toString('utf8'))))
    if (/gzip/.test(req.headers['accept-encoding'] ?? '')) {
      res.writeHead(200, { 'content-type': 'application/json', 'content-encoding': 'gzip' }).end(gzipSync(answer))
    } else res.writeHead(200, { 'content-type': 'application/json' }).end(answer)
  })
  const gw = await redTeamGateway(t, up.url)
  const res = await fetch(gw.mcpUrl(), {
    method: 'POST',
    headers: { authorization: `Bearer ${await gw.mint()}`, 'content-type': 'application/json', accept: 'application/json, text/event-stream', 'accept-encoding': 'gzip' },
    body: JSON.stringify(list()),
  })
  t.equal(res.status, 200)
  t.same(namesIn(await res.json()), VISIBLE)
})

t.test('a compressed list answer that arrives anyway is refused (502), not relayed', async (t) => {
  const up = await echoUpstream(t, (_req, res, body) => {
    const answer = JSON.stringify(echoAnswer(JSON.parse(body.toString('utf8'))))
    res.writeHead(200, { 'content-type': 'application/json', 'content-encoding': 'gzip' }).end(gzipSync(answer))
  })
  const gw = await redTeamGateway(t, up.url)
  const res = await postJsonRpc(gw.mcpUrl(), list(), { authorization: `Bearer ${await gw.mint()}` })
  t.equal(res.status, 502)
  t.match(JSON.parse(res.text), { jsonrpc: '2.0', error: { code: -32001 } })
})

t.test('SSE list answers: split at every byte, CR line ends, in a batch', async (t) => {
  let framing = '\n'
  const up = await echoUpstream(t, (_req, res, body) => {
    const parsed = JSON.parse(body.toString('utf8')) as unknown
    const answers = (Array.isArray(parsed) ? parsed : [parsed]).map(echoAnswer)
    res.writeHead(200, { 'content-type': 'text/event-stream' })
    const nl = framing
    const text = answers.map((a, i) => `id: e${i}${nl}event: message${nl}data: ${JSON.stringify(a)}${nl}${nl}`).join('')
    const bytes = Buffer.from(text)
    let i = 0
    const tick = () => {
      if (i >= bytes.length) return res.end()
      res.write(bytes.subarray(i, i + 7))
      i += 7
      setImmediate(tick)
    }
    tick()
  })
  const gw = await redTeamGateway(t, up.url)
  const token = await gw.mint()
  for (const nl of ['\n', '\r\n', '\r']) {
    framing = nl
    const res = await fetch(gw.mcpUrl(), {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', accept: 'application/json, text/event-stream', 'mcp-protocol-version': '2025-03-26' },
      body: JSON.stringify([list(1), list(2)]),
    })
    const events = []
    for await (const e of readSseEvents(res)) events.push(e)
    t.equal(events.length, 2, `${JSON.stringify(nl)}: both events`)
    for (const e of events) t.same(namesIn(e.json), VISIBLE, `${JSON.stringify(nl)}: ${e.id} filtered`)
  }
})

t.test('an endless SSE event while filtering is cut, not buffered without bound', async (t) => {
  let upstreamClosed = false
  const up = await echoUpstream(t, (_req, res, body) => {
    if (!body.includes('tools/list')) return void res.writeHead(200, { 'content-type': 'application/json' }).end('{"jsonrpc":"2.0","id":1,"result":{}}')
    res.writeHead(200, { 'content-type': 'text/event-stream' })
    const chunk = `data: ${'x'.repeat(64 * 1024)}`
    let sent = 0
    const pump = () => {
      while (!upstreamClosed && sent < 64 * 1024 * 1024) {
        sent += chunk.length
        if (!res.write(chunk)) return void res.once('drain', pump)
      }
    }
    res.on('close', () => {
      upstreamClosed = true
    })
    pump()
  })
  const gw = await redTeamGateway(t, up.url)
  const res = await fetch(gw.mcpUrl(), {
    method: 'POST',
    headers: { authorization: `Bearer ${await gw.mint()}`, 'content-type': 'application/json', accept: 'application/json, text/event-stream' },
    body: JSON.stringify(list()),
  })
  t.equal(res.status, 502, 'cut before its first byte: a 502')
  let received = 0
  try {
    for await (const c of res.body!) received += (c as Uint8Array).length
  } catch {
    // a cut stream is the expected outcome
  }
  t.ok(received < 1024 * 1024, 'no unfiltered bytes of the giant event reached the client')
  const deadline = Date.now() + 3000
  while (!upstreamClosed && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20))
  t.ok(upstreamClosed, 'the upstream stream was ended')
  t.equal((await postJsonRpc(gw.mcpUrl(), { jsonrpc: '2.0', id: 1, method: 'ping' }, { authorization: `Bearer ${await gw.mint()}` })).status, 200, 'the gateway still serves')
})

t.test('a list answer replayed on a resumed GET stream (Last-Event-ID) is filtered too', async (t) => {
  const up = await echoUpstream(t, (req, res) => {
    if (req.method !== 'GET') {
      res.writeHead(202).end()
      return
    }
    // What an SDK server with an event store does on resumption: replays the stored answer.
    res.writeHead(200, { 'content-type': 'text/event-stream' })
    res.write(`id: e1\nevent: message\ndata: ${JSON.stringify({ jsonrpc: '2.0', id: 5, result: { tools: LISTED_TOOLS } })}\n\n`)
    res.write(`id: e2\nevent: message\ndata: ${JSON.stringify({ jsonrpc: '2.0', method: 'notifications/tools/list_changed' })}\n\n`)
    res.end()
  })
  const gw = await redTeamGateway(t, up.url)
  const res = await fetch(gw.mcpUrl(), {
    headers: { authorization: `Bearer ${await gw.mint()}`, accept: 'text/event-stream', 'last-event-id': 'e0' },
  })
  t.equal(res.status, 200)
  const events = []
  for await (const e of readSseEvents(res)) events.push(e)
  t.equal(events.length, 2)
  t.same(namesIn(events[0]!.json), VISIBLE, 'the replayed list answer is filtered')
  t.match(events[1]!.json, { method: 'notifications/tools/list_changed' }, 'notifications pass')
  t.equal(up.seen.at(-1)!.headers['last-event-id'], 'e0', 'Last-Event-ID reaches the upstream (MCPT-03)')
})
