/**
 * Red team: the metrics listener. It serves GET/HEAD of its one path and nothing else: no other
 * path or method, no request body, no proxying (absolute-form targets, CONNECT, Upgrade), no
 * logging of what a caller sends; it binds where metrics.listen says.
 */
import { createServer as createHttpServer } from 'node:http'
import { connect } from 'node:net'
import t from 'tap'
import { startTestGateway } from '../helpers/gateway.js'

const gw = await startTestGateway(t, {
  resources: [{ upstream: 'http://127.0.0.1:9/mcp' }],
  config: { metrics: { enabled: true, listen: { host: '127.0.0.1', port: 0 } } },
})
const address = gw.gateway.metricsAddress!
const { port } = new URL(address)

/** One raw HTTP/1.1 exchange; resolves with what came back before the socket closed. */
function raw(request: string): Promise<string> {
  return new Promise((resolve) => {
    const socket = connect(Number(port), '127.0.0.1')
    let answer = ''
    socket.on('data', (chunk: Buffer) => (answer += chunk.toString('latin1')))
    socket.on('close', () => resolve(answer))
    socket.on('error', () => resolve(answer))
    socket.write(request)
    setTimeout(() => socket.end(), 300)
    setTimeout(() => socket.destroy(), 2000)
  })
}
const status = (answer: string) => answer.split('\r\n')[0] ?? ''

t.test('it binds where metrics.listen says, apart from the main listener', async (t) => {
  t.match(address, /^http:\/\/127\.0\.0\.1:\d+$/)
  t.not(port, new URL(gw.origin).port)
  t.equal((await fetch(`${gw.origin}/metrics`)).status, 404, 'the main listener has no metrics')
})

t.test('only GET and HEAD of the configured path', async (t) => {
  t.equal((await fetch(`${address}/metrics`)).status, 200)
  t.equal((await fetch(`${address}/metrics?name[]=x`)).status, 200, 'a query string changes nothing')
  for (const path of ['/', '/metrics/', '//metrics', '/METRICS', '/%6detrics', '/x/../metrics', '/metrics/../healthz', '/metrics;x', '/oauth/token', '/mcp']) {
    t.match(status(await raw(`GET ${path} HTTP/1.1\r\nHost: x\r\n\r\n`)), /^HTTP\/1\.1 404 /, `${path}: 404`)
  }
  for (const method of ['POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS']) {
    const res = await fetch(`${address}/metrics`, { method })
    t.equal(res.status, 405, `${method}: 405`)
    t.equal(res.headers.get('allow'), 'GET, HEAD')
  }
  t.match(status(await raw('TRACE /metrics HTTP/1.1\r\nHost: x\r\n\r\n')), /^HTTP\/1\.1 405 /, 'TRACE: 405')
  t.match(status(await raw('OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n')), /^HTTP\/1\.1 404 /, 'OPTIONS *: 404')
})

t.test('no request body is accepted', async (t) => {
  const withLength = await raw('GET /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello')
  t.match(status(withLength), /^HTTP\/1\.1 400 /, 'Content-Length: 400')
  t.notMatch(withLength, /gatehouse_/, 'no metrics with it')
  t.match(status(await raw('GET /metrics HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n')), /^HTTP\/1\.1 400 /, 'chunked: 400')
  t.match(status(await raw('GET /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n')), /^HTTP\/1\.1 200 /, 'an empty body is no body')
})

t.test('it cannot be made to proxy: absolute-form targets, CONNECT, Upgrade', async (t) => {
  let reached = 0
  const target = createHttpServer((_req, res) => {
    reached++
    res.end('target')
  })
  await new Promise<void>((resolve) => target.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise<void>((resolve) => target.close(() => resolve())))
  const targetPort = (target.address() as { port: number }).port
  const absolute = await raw(`GET http://127.0.0.1:${targetPort}/metrics HTTP/1.1\r\nHost: 127.0.0.1:${targetPort}\r\n\r\n`)
  t.match(status(absolute), /^HTTP\/1\.1 404 /, 'absolute-form: 404')
  t.notMatch(absolute, /target/)
  const connectAnswer = await raw(`CONNECT 127.0.0.1:${targetPort} HTTP/1.1\r\nHost: 127.0.0.1:${targetPort}\r\n\r\n`)
  t.notMatch(status(connectAnswer), /^HTTP\/1\.1 2/, 'CONNECT is not tunnelled')
  const upgrade = await raw(`GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n`)
  t.notMatch(status(upgrade), /^HTTP\/1\.1 101 /, 'no protocol switch')
  t.equal(reached, 0, 'the target was never contacted')
})

t.test('nothing a caller sends is logged', async (t) => {
  const token = 'eyJhbGciOiJFUzI1NiJ9.metrics-probe-token.c2lnbmF0dXJl'
  await fetch(`${address}/metrics`, { headers: { authorization: `Bearer ${token}`, cookie: `session=${token}` } })
  await fetch(`${address}/nope`, { headers: { authorization: `Bearer ${token}` } })
  await fetch(`${address}/metrics`, { method: 'POST', headers: { authorization: `Basic ${token}` }, body: token })
  t.notMatch(gw.logText(), token)
  t.notMatch(gw.logText(), /metrics-probe-token/)
})
