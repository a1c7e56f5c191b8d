/**
 * What the other suites rely on when they reserve a port (./ports.ts): it refuses connections
 * until its owner listens on it, its owner can listen, stop and listen again, and the kernel
 * hands it to no other socket meanwhile. The last two are Linux semantics (see ports.ts).
 */
import { connect, createServer, type Server } from 'node:net'
import t from 'tap'
import { reservePort } from './ports.js'

const linuxOnly = process.platform !== 'linux' && 'a reservation holds its port on Linux only'

const listen = (server: Server, port: number) =>
  new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(port, '127.0.0.1', () => resolve())
  })
const close = (server: Server) => new Promise<void>((resolve) => server.close(() => resolve()))

/** 'connected' or the error code of a connection to 127.0.0.1:port. */
const connectTo = (port: number) =>
  new Promise<string>((resolve) => {
    const socket = connect(port, '127.0.0.1')
    socket.once('connect', () => {
      socket.destroy()
      resolve('connected')
    })
    socket.once('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? String(err)))
  })

t.test('a reserved port refuses connections until its owner listens, and can be listened on again', { skip: linuxOnly }, async (t) => {
  const port = await reservePort(t)
  t.equal(await connectTo(port), 'ECONNREFUSED', 'nothing listens yet: refused')
  const server = createServer((socket) => socket.end())
  await listen(server, port)
  t.equal(await connectTo(port), 'connected', 'the owner listens on it')
  await close(server)
  t.equal(await connectTo(port), 'ECONNREFUSED', 'stopped: refused again')
  const restarted = createServer((socket) => socket.end())
  await listen(restarted, port)
  t.equal(await connectTo(port), 'connected', 'and restarted on the same port')
  await close(restarted)
})

t.test('the kernel gives a reserved port to no listen(0) and no outgoing connection', { skip: linuxOnly }, async (t) => {
  // 200 reservations and 2000 of each: about 14 hits of each kind were the ports merely free.
  const reserved = new Set(await Promise.all(Array.from({ length: 200 }, () => reservePort(t))))
  t.equal(reserved.size, 200, 'every reservation has its own port')
  const target = createServer((socket) => socket.destroy())
  await listen(target, 0)
  t.teardown(() => close(target))
  const targetPort = (target.address() as { port: number }).port
  let listened = 0
  let connected = 0
  for (let i = 0; i < 2000; i++) {
    const server = createServer()
    await listen(server, 0)
    if (reserved.has((server.address() as { port: number }).port)) listened++
    await close(server)
    const socket = connect(targetPort, '127.0.0.1')
    await new Promise((resolve) => socket.once('connect', resolve))
    if (reserved.has(socket.localPort!)) connected++
    socket.destroy()
  }
  t.equal(listened, 0, 'no listen(0) got a reserved port')
  t.equal(connected, 0, 'no outgoing connection was bound to one')
})
