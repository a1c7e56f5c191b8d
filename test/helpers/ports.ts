/**
 * Loopback ports reserved for one test, for the servers that cannot listen on port 0 because
 * their configuration names their own port before they listen (a gateway's publicUrl, an IdP
 * redirect URI, a redis-server or child-process command line), or that stop and start again on
 * the same port, or that must stay closed so that connecting to them is refused.
 *
 * Listening on 0, reading the port and closing it again ("a free port") is a race: until the
 * server listens, any other socket on the machine may take that port (a parallel test's
 * listener, or the local end of any outgoing connection) and the test fails with EADDRINUSE.
 *
 * A reservation is a connected loopback socket whose local end is bound to the port with
 * SO_REUSEADDR (libuv sets it on every TCP bind) and never listens. On Linux:
 *  - the kernel never picks that port for anyone else: neither `listen(0)` / `bind(0)` (they
 *    skip a port in use) nor `connect()` (it skips a port that was explicitly bound);
 *  - a server that binds it explicitly with SO_REUSEADDR, as Node and redis-server do, may
 *    listen on it, because the reservation itself is not listening;
 *  - while nothing listens on it, a connection to it is refused.
 * So the port stays ours across stops and restarts until the reservation is released.
 *
 * Elsewhere (BSD semantics) a bound socket blocks even SO_REUSEADDR binds to the same address,
 * so there the port is released at once: the old best-effort free port.
 */
import { connect, createServer, type Server, type Socket } from 'node:net'

const HOST = '127.0.0.1'
const HOLDS_PORTS = process.platform === 'linux'

export interface PortOwner {
  teardown(fn: () => void | Promise<void>): void
}

/**
 * A loopback port (on 127.0.0.1) that no other socket can take until `owner` (a tap test)
 * ends, or until this process exits when there is no owner. Listen on it as usual.
 */
export async function reservePort(owner?: PortOwner): Promise<number> {
  const holder = await boundSocket()
  const port = holder.localPort!
  const release = () => void holder.destroy()
  if (!HOLDS_PORTS) release()
  else owner?.teardown(release)
  return port
}

/** The other end of every reservation: one per process, never keeping the process alive. */
let peer: Promise<Server> | undefined

function peerServer(): Promise<Server> {
  peer ??= new Promise<Server>((resolve, reject) => {
    const server = createServer((socket) => {
      socket.unref()
      socket.on('error', () => {})
    })
    server.once('error', reject)
    server.listen(0, HOST, () => {
      server.unref()
      resolve(server)
    })
  })
  return peer
}

/** A socket connected to the peer whose local end the kernel bound (port 0) with SO_REUSEADDR. */
async function boundSocket(): Promise<Socket> {
  const { port } = (await peerServer()).address() as { port: number }
  // localAddress makes Node bind the local end before connecting, rather than leave it to connect().
  const socket = connect({ host: HOST, port, localAddress: HOST, localPort: 0 })
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve)
    socket.once('error', reject)
  })
  socket.on('error', () => {}) // a reservation has nothing to report; it is only ever destroyed
  socket.unref()
  return socket
}
