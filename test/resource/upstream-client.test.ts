/**
 * The upstream client reply-from sends through (src/resource/upstream-client.ts), against a real
 * HTTP server on loopback: answers read whole or streamed, held back while unread, cancelled
 * when nobody will read them, and failures reported in undici's own error codes.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { once } from 'node:events'
import t, { type Test } from 'tap'
import { UpstreamClient, type UpstreamAnswer } from '../../src/resource/upstream-client.js'

type Route = (req: IncomingMessage, res: ServerResponse) => void

async function upstream(t: Test, route: Route, headersTimeoutMs = 5000): Promise<{ client: UpstreamClient; server: Server }> {
  const server = createServer(route)
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const client = new UpstreamClient(`http://127.0.0.1:${(server.address() as AddressInfo).port}`, { connectTimeoutMs: 2000, headersTimeoutMs })
  t.teardown(async () => {
    await client.destroy()
    server.closeAllConnections()
    server.close()
  })
  return { client, server }
}

function send(client: UpstreamClient, path = '/mcp', body: Buffer | null = null): Promise<UpstreamAnswer> {
  return new Promise((resolve, reject) => {
    let inDispatch = true
    client.request({ origin: 'ignored', path, method: body ? 'POST' : 'GET', headers: { 'content-type': 'application/json' }, body }, (err, answer) => {
      if (inDispatch) reject(new Error('callback called inside request()'))
      if (err) reject(err)
      else resolve(answer!)
    })
    inDispatch = false
  })
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

t.test('a small answer is read whole, with its headers in Node\'s shape', async (t) => {
  const { client } = await upstream(t, (req, res) => {
    let body = ''
    req.on('data', (c: Buffer) => (body += c.toString()))
    req.on('end', () => {
      res.setHeader('content-type', 'application/json')
      res.setHeader('set-cookie', 'only=one; Path=/')
      res.setHeader('x-repeated', ['a', 'b'])
      res.setHeader('constructor', 'not inherited')
      res.setHeader('__proto__', 'x')
      res.end(JSON.stringify({ echoed: body }))
    })
  })
  const answer = await send(client, '/mcp', Buffer.from('{"jsonrpc":"2.0"}'))
  t.equal(answer.statusCode, 200)
  t.same(answer.headers['set-cookie'], ['only=one; Path=/'], 'one Set-Cookie is still a list (as Node gives it)')
  t.equal(answer.headers['x-repeated'], 'a, b', 'a repeated header is one combined value (RFC 9110 §5.3)')
  t.equal(answer.headers['content-type'], 'application/json')
  t.equal(answer.headers.constructor, 'not inherited', 'a header named like an inherited property is a header')
  t.equal(Object.getPrototypeOf(answer.headers), Object.prototype, 'a header named __proto__ changes nothing')
  t.same(JSON.parse((await answer.body.whole()).toString()), { echoed: '{"jsonrpc":"2.0"}' }, 'the exact bytes, both ways')
})

t.test('an answer larger than one chunk is read whole in order, and one that streams keeps its order too', async (t) => {
  const big = Buffer.alloc(3 * 1024 * 1024)
  for (let i = 0; i < big.length; i++) big[i] = i % 251
  const { client } = await upstream(t, (_req, res) => res.end(big))
  t.ok((await (await send(client)).body.whole()).equals(big), 'whole')
  const chunks: Buffer[] = []
  for await (const chunk of (await send(client)).body.stream()) chunks.push(chunk as Buffer)
  t.ok(Buffer.concat(chunks).equals(big), 'streamed')
})

t.test('an answer nobody reads yet holds the upstream back, and nothing is lost when it is read', async (t) => {
  const total = 64 * 1024 * 1024
  let written = 0
  let finished = false
  const { client } = await upstream(t, (_req, res) => {
    res.writeHead(200, { 'content-length': String(total) })
    const chunk = Buffer.alloc(64 * 1024, 7)
    const pump = () => {
      while (written < total) {
        written += chunk.length
        if (!res.write(chunk)) return void res.once('drain', pump)
      }
      res.end(() => (finished = true))
    }
    pump()
  })
  const answer = await send(client)
  await sleep(300)
  t.notOk(finished, 'the upstream could not write it all')
  t.ok(written < total, `the upstream was held back after ${written} of ${total} bytes`)
  let received = 0
  for await (const chunk of answer.body.stream()) received += (chunk as Buffer).length
  t.equal(received, total)
})

t.test('an answer nobody will read ends its upstream request, read or unread', async (t) => {
  const closed: string[] = []
  const { client } = await upstream(t, (req, res) => {
    res.writeHead(200, { 'content-type': 'text/event-stream' })
    res.write('event: a\ndata: 1\n\n')
    res.on('close', () => closed.push(req.url!))
  })
  const unread = await send(client, '/unread')
  unread.body.destroy()
  const streamed = await send(client, '/streamed')
  const events = streamed.body.stream()
  for await (const chunk of events) {
    t.match(String(chunk), /data: 1/)
    break // leaving the loop destroys the stream
  }
  for (let i = 0; i < 50 && closed.length < 2; i++) await sleep(20)
  t.same(closed.sort(), ['/streamed', '/unread'], 'the upstream saw both requests end')
})

t.test('an answer cut off mid-body fails whichever way it is read', async (t) => {
  const { client } = await upstream(t, (_req, res) => {
    res.writeHead(200, { 'content-length': '1000', 'content-type': 'application/json' })
    res.write('{"partial":')
    setTimeout(() => res.socket!.destroy(), 20)
  })
  await t.rejects((await send(client)).body.whole(), { code: 'UND_ERR_SOCKET' }, 'whole')
  const stream = (await send(client)).body.stream()
  await t.rejects(
    (async () => {
      for await (const _ of stream) void _
    })(),
    { code: 'UND_ERR_SOCKET' },
    'streamed',
  )
  await sleep(50)
  t.rejects((await send(client)).body.whole(), { code: 'UND_ERR_SOCKET' }, 'whole, after the failure had already happened')
})

t.test('an early hint (103) is not an answer: the final one is', async (t) => {
  const { client } = await upstream(t, (_req, res) => {
    res.writeEarlyHints({ link: '</style.css>; rel=preload' })
    res.writeHead(202).end()
  })
  const answer = await send(client)
  t.equal(answer.statusCode, 202)
  t.equal((await answer.body.whole()).length, 0)
})

t.test('an upstream that is not there is an error given to the callback, never thrown', async (t) => {
  const server = createServer()
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const port = (server.address() as AddressInfo).port
  server.close()
  await once(server, 'close')
  const client = new UpstreamClient(`http://127.0.0.1:${port}`, { connectTimeoutMs: 2000, headersTimeoutMs: 5000 })
  t.teardown(() => client.destroy())
  await t.rejects(send(client), { code: 'ECONNREFUSED' })
})

t.test('an upstream that answers no headers in time is UND_ERR_HEADERS_TIMEOUT', async (t) => {
  const { client } = await upstream(t, () => {}, 200)
  await t.rejects(send(client), { code: 'UND_ERR_HEADERS_TIMEOUT' })
})
