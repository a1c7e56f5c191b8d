/**
 * The error handler tells a fault from a client that went away by the client's socket: a request
 * stream is destroyed as soon as its body has been read, so that test alone filed every fault
 * after a form or JSON body under "aborted", logged at debug level (SEC-36: still a generic 500).
 */
import formbody from '@fastify/formbody'
import Fastify from 'fastify'
import { Writable } from 'node:stream'
import t from 'tap'
import { registerErrorHandling } from '../../src/http/error-handler.js'

t.test('a fault after the body was read is logged as one and answered with a generic 500', async (t) => {
  const lines: { level: number; msg: string }[] = []
  const stream = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const line of chunk.toString('utf8').split('\n').filter(Boolean)) lines.push(JSON.parse(line))
      done()
    },
  })
  const app = Fastify({ logger: { level: 'debug', stream } })
  await app.register(formbody)
  registerErrorHandling(app)
  app.post('/form', async (request) => {
    if (!(request.body as Record<string, string>).grant_type) return 'no'
    throw new TypeError("Cannot read properties of undefined (reading 'secret')")
  })
  app.post('/json', async () => {
    throw new RangeError('internal detail 0xdeadbeef')
  })
  t.teardown(() => app.close())
  // A real socket, not inject(): what the handler looks at is the client's connection.
  const origin = await app.listen({ host: '127.0.0.1', port: 0 })

  for (const [url, payload, contentType] of [
    ['/form', 'grant_type=client_credentials', 'application/x-www-form-urlencoded'],
    ['/json', '{"a":1}', 'application/json'],
  ] as const) {
    const before = lines.length
    const res = await fetch(`${origin}${url}`, { method: 'POST', body: payload, headers: { 'content-type': contentType } })
    const body = await res.text()
    t.equal(res.status, 500, `${url}: 500`)
    t.same(JSON.parse(body), { error: 'server_error', error_description: 'the gateway failed to handle the request' }, `${url}: nothing internal`)
    t.notMatch(body, /secret|deadbeef/)
    const logged = lines.slice(before)
    t.ok(logged.some((l) => l.level === 50 && l.msg === 'unexpected error'), `${url}: logged as an error`)
    t.notOk(logged.some((l) => l.msg === 'client went away'), `${url}: not taken for a hang-up`)
  }
})
