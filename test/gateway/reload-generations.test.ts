/**
 * App generations (issue 17): a request stays with the generation current at its arrival; a
 * retired generation closes once its last request has ended, not before; shutdown closes the
 * rest and the listener.
 */
import Fastify, { type FastifyInstance } from 'fastify'
import t from 'tap'
import { createLogger } from '../../src/log.js'
import { AppGenerations } from '../../src/reload/generations.js'

async function generation(name: string, closed: string[], slow?: Promise<void>): Promise<FastifyInstance> {
  const app = Fastify()
  app.get('/which', async () => name)
  app.get('/slow', async () => {
    await slow
    return `${name} slow`
  })
  app.addHook('onClose', async () => void closed.push(name))
  return app
}

t.test('requests stay with their generation; a retired one closes when its last request ends', async (t) => {
  const closed: string[] = []
  let finish = () => {}
  const slow = new Promise<void>((r) => (finish = r))
  const first = await generation('first', closed)
  await first.ready()
  const generations = new AppGenerations(first, createLogger('silent'))
  await generations.listen({ host: '127.0.0.1', port: 0 })
  t.teardown(() => generations.close())
  const { port } = generations.server.address() as { port: number }
  const get = (path: string) => fetch(`http://127.0.0.1:${port}${path}`).then((r) => r.text())

  t.equal(await get('/which'), 'first')
  const second = await generation('second', closed, slow)
  await second.ready()
  generations.swap(second)
  t.equal(generations.current, second)
  t.equal(await get('/which'), 'second', 'a new request goes to the new generation')
  for (let i = 0; i < 50 && !closed.includes('first'); i++) await new Promise((r) => setTimeout(r, 10))
  t.same(closed, ['first'], 'the first generation, with no request open, closed at once')
  const pending = get('/slow')
  await new Promise((r) => setTimeout(r, 100))

  const third = await generation('third', closed)
  await third.ready()
  generations.swap(third)
  t.equal(await get('/which'), 'third')
  await new Promise((r) => setTimeout(r, 100))
  t.same(closed, ['first'], 'the second generation stays open while its request runs')
  finish()
  t.equal(await pending, 'second slow', 'the running request finished in its own generation')
  const deadline = Date.now() + 2000
  while (closed.length === 1 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10))
  t.same(closed, ['first', 'second'], 'then it closed')

  await generations.close()
  t.same(closed, ['first', 'second', 'third'], 'shutdown closes the current generation')
  await t.rejects(get('/which'), 'and the listener')
})
