/**
 * A store that cannot be reached, in the words an operator acts on: which store (never its URL,
 * which may carry a password) and what went wrong (refused, no such host, timeout, password),
 * instead of the client library's internals ("Stream isn't writeable and enableOfflineQueue
 * options is false" is what ioredis says for every one of them).
 */
import type { StoreConfig } from '../config/schema.js'
import type { StoreLog } from '../store/create.js'

/** The exit status of a command whose store could not be reached (README, "Exit statuses"). */
export const STORE_UNREACHABLE = 3

/** Thrown by operator commands; the dispatcher prints `gatehouse: <message>` and exits STORE_UNREACHABLE. */
export class StoreUnreachableError extends Error {}

/** Host and port of each node, never the URL's user or password. */
export function describeStore(config: StoreConfig): string {
  const redis = config.redis
  if (config.type === 'memory' || !redis) return 'the memory store'
  const nodes = (list: { host: string; port: number }[]) => list.map((n) => `${n.host}:${n.port}`).join(', ')
  if (redis.sentinels) return `Redis Sentinel at ${nodes(redis.sentinels)}`
  if (redis.clusterNodes) return `Redis Cluster at ${nodes(redis.clusterNodes)}`
  try {
    const url = new URL(redis.url)
    return `Redis at ${url.hostname}:${url.port || (url.protocol === 'rediss:' ? '6380' : '6379')}`
  } catch {
    return 'Redis'
  }
}

/** The connection errors the store logs, kept so the failure can name its cause. */
export function connectionWatcher(): { log: StoreLog; cause(failure: Error): string } {
  let last: string | undefined
  const note = (fields: object) => {
    const error = (fields as { error?: unknown }).error
    if (typeof error === 'string') last = error
  }
  return {
    log: { error: note, warn: () => {} },
    // The connection's own error first (refused, no such host, password); else the failed
    // command's (a connected but silent Redis: a timeout).
    cause: (failure) => plainCause(last ?? failure.message),
  }
}

function plainCause(message: string | undefined): string {
  if (message === undefined) return 'it did not answer'
  if (/ECONNREFUSED/.test(message)) return 'connection refused'
  if (/ENOTFOUND|EAI_AGAIN/.test(message)) return 'no such host'
  // ioredis without its offline queue says "Stream isn't writeable" for a connection that was not
  // ready by the connect timeout and logged no error of its own: a Redis that accepts but is silent.
  if (/ETIMEDOUT|timed? ?out|isn't writeable/i.test(message)) return 'it did not answer in time'
  if (/WRONGPASS|NOAUTH|invalid (username-)?password/i.test(message)) return 'authentication failed (check the password)'
  if (/certificate|SSL|TLS|EPROTO/i.test(message)) return 'the TLS handshake failed'
  if (/ECONNRESET|EPIPE/.test(message)) return 'the connection was reset'
  return 'it did not answer'
}
