/**
 * How the Redis store's ioredis client gets connected and reports trouble: the wait for the first
 * connection, the connections to every cluster node, and the rate-limited error log.
 */
import { Cluster, type Redis } from 'ioredis'

/** The part of a pino logger the store writes to. */
export interface StoreLog {
  warn(obj: object, msg: string): void
  error(obj: object, msg: string): void
}

/**
 * Without the offline queue, ioredis rejects every command until its first connection is
 * ready, so a command issued right at startup would fail although Redis is fine. Commands
 * therefore wait for the outcome of the first connection attempt (never longer than
 * connectTimeoutMs) and fail fast from then on.
 */
export function firstConnectionAttempt(client: Redis | Cluster, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs
  const first = new Promise<void>((resolve) => {
    const settle = (): void => {
      clearTimeout(timer)
      for (const event of ['ready', 'error', 'end']) client.off(event, settle)
      resolve()
    }
    const timer = setTimeout(settle, timeoutMs).unref()
    for (const event of ['ready', 'error', 'end']) client.once(event, settle)
  })
  return client instanceof Cluster ? first.then(() => mastersReady(client, deadline - Date.now())) : first
}

/**
 * The 'error' listener keeps ioredis from reporting unhandled errors, and tells operators why
 * requests get 503. Only the message is logged: the URL may carry a password. While Redis stays
 * down every reconnect attempt fails (often alternating between messages), so after the first
 * error of an outage further ones are logged at most once a minute, with the number skipped.
 */
export function logConnectionTrouble(client: Redis | Cluster, log: StoreLog): void {
  let loggedAt: number | undefined // set while an outage is being reported
  let skipped = 0
  const report = (err: Error): void => {
    const now = Date.now()
    if (loggedAt !== undefined && now - loggedAt < 60_000) {
      skipped += 1
      return
    }
    log.error({ error: err.message, ...(skipped > 0 && { skipped }) }, 'Redis connection failed; reconnecting')
    loggedAt = now
    skipped = 0
  }
  client.on('error', report)
  if (client instanceof Cluster) client.on('node error', report)
  client.on('ready', () => {
    if (loggedAt !== undefined) log.warn({}, 'Redis connection restored')
    loggedAt = undefined
    skipped = 0
  })
}

/**
 * ioredis creates the connection to each cluster node lazily, at the first command for one of its
 * slots, and without the offline queue it rejects ("Connection is closed.") every other command
 * for that node until the connection is ready: the first burst of requests after a start, or
 * after a failover brought in a promoted replica, got 503s from a healthy cluster
 * (test/topology/cluster.test.ts). So every node is connected as soon as it is known.
 */
export function connectEveryNode(cluster: Cluster): void {
  const connect = (node: Redis): void => {
    if (node.status === 'wait') node.connect().catch(() => {}) // failures are reported as node errors
  }
  cluster.on('+node', connect)
  cluster.on('ready', () => cluster.nodes('all').forEach(connect))
}

/** Resolves when every master's connection is ready (or ended), or after `ms`. */
function mastersReady(cluster: Cluster, ms: number): Promise<void> {
  const pending = cluster.nodes('master').filter((n) => n.status !== 'ready' && n.status !== 'end')
  if (pending.length === 0 || ms <= 0) return Promise.resolve()
  return new Promise((resolve) => {
    let left = pending.length
    const timer = setTimeout(resolve, ms).unref()
    const one = (): void => {
      left -= 1
      if (left === 0) {
        clearTimeout(timer)
        resolve()
      }
    }
    for (const node of pending) {
      let counted = false
      const once = (): void => {
        if (!counted) one()
        counted = true
      }
      node.once('ready', once)
      node.once('end', once)
    }
  })
}
