/**
 * The Redis store: shared by any number of replicas. Requires Redis >= 6.2 (GETDEL).
 *
 * When Redis is down nothing crashes and nothing waits: commands fail at once (no offline
 * queue) or after commandTimeoutMs, every failure becomes StoreUnavailableError (→ 503),
 * and the client reconnects by itself forever.
 */
import { readFileSync } from 'node:fs'
import type { ConnectionOptions } from 'node:tls'
import { Cluster, Redis, type ChainableCommander, type ClusterOptions, type RedisOptions } from 'ioredis'
import type { RedisStoreConfig } from '../config/schema.js'
import { ADD_MEMBER_SCRIPT, APPEND_SCRIPT, COMPARE_AND_SET_SCRIPT, INCREMENT_SCRIPT, type Scripted } from './redis-scripts.js'
import { connectEveryNode, firstConnectionAttempt, logConnectionTrouble, type StoreLog } from './redis-connection.js'
import { checkTtl, StoreUnavailableError, type LogEntry, type Store } from './store.js'

export type { StoreLog }

/** How the ioredis client is built: one server (direct or found through Sentinel), or a cluster. */
export type RedisClientPlan =
  | { kind: 'redis'; options: RedisOptions }
  | { kind: 'cluster'; nodes: { host: string; port: number }[]; options: ClusterOptions }

/** Reconnect forever, backing off to at most 2 s so a recovered Redis is found quickly. */
const backoff = (attempt: number): number => Math.min(attempt * 100, 2000)

/**
 * After a failover a connection may still point at the demoted primary; its writes fail with
 * READONLY. Reconnecting (which re-resolves the primary) lets the next command succeed.
 */
const reconnectOnReadOnly = (err: Error): boolean => err.message.startsWith('READONLY')

/** Maps the configuration to ioredis options. Reads the CA file, so a missing file fails startup. */
export function redisClientPlan(config: RedisStoreConfig): RedisClientPlan {
  const url = new URL(config.url)
  const db = url.pathname.length > 1 ? Number(url.pathname.slice(1)) : 0
  if (!Number.isInteger(db) || db < 0) {
    throw new TypeError('store.redis.url: the path must be a database number, e.g. /0')
  }
  const auth = {
    username: url.username ? decodeURIComponent(url.username) : undefined,
    password: url.password ? decodeURIComponent(url.password) : undefined,
  }
  const tls: ConnectionOptions | undefined =
    url.protocol === 'rediss:' || config.tls
      ? {
          ...(config.tls?.caFile && { ca: readFileSync(config.tls.caFile) }),
          ...(config.tls?.servername && { servername: config.tls.servername }),
        }
      : undefined
  // Every command is bounded (commandTimeout) and, below, never queued while disconnected
  // (enableOfflineQueue false): a request waiting on a dead Redis would hang, not get its 503.
  const perConnection = {
    ...auth,
    tls,
    connectTimeout: config.connectTimeoutMs,
    commandTimeout: config.commandTimeoutMs,
    maxRetriesPerRequest: 1,
    // A command whose connection dropped has already been reported failed (or timed out) to
    // its caller; replaying it after the reconnect would apply a write nobody waits for.
    autoResendUnfulfilledCommands: false,
    reconnectOnError: reconnectOnReadOnly,
  } satisfies RedisOptions

  if (config.clusterNodes) {
    if (db !== 0) throw new TypeError('store.redis.url: Redis Cluster has database 0 only')
    return {
      kind: 'cluster',
      nodes: config.clusterNodes,
      options: {
        keyPrefix: config.keyPrefix,
        enableOfflineQueue: false,
        clusterRetryStrategy: backoff,
        // ioredis re-sends a command whose node connection closed, or that got CLUSTERDOWN, from a
        // delay queue until maxRedirections runs out: past commandTimeout, after its caller already
        // got 503 (a late write nobody waits for), and while a master is dead every such command
        // hangs to the timeout. Fail them at once instead (503 + Retry-After); MOVED and ASK are
        // still followed at once, which is how the promoted replica is found (test/topology/cluster).
        retryDelayOnFailover: 0,
        retryDelayOnClusterDown: 0,
        // ioredis resolves node names to addresses by default, which breaks TLS host name
        // checks on clusters that announce names (e.g. ElastiCache); let TLS see the name.
        ...(tls && { dnsLookup: (address, callback) => callback(null, address) }),
        redisOptions: perConnection,
      },
    }
  }

  const common = {
    ...perConnection,
    db,
    keyPrefix: config.keyPrefix,
    enableOfflineQueue: false,
    retryStrategy: backoff,
  } satisfies RedisOptions
  if (config.sentinels) {
    if (!config.sentinelMasterName) throw new TypeError('store.redis: sentinels need sentinelMasterName')
    return {
      kind: 'redis',
      options: {
        ...common,
        sentinels: config.sentinels,
        name: config.sentinelMasterName,
        sentinelPassword: config.sentinelPassword,
        // TLS, when on, covers the sentinels too; the servername names the primary only.
        enableTLSForSentinelMode: tls !== undefined,
        sentinelTLS: tls && { ...tls, servername: undefined },
        sentinelCommandTimeout: config.commandTimeoutMs,
      },
    }
  }
  return {
    kind: 'redis',
    options: { ...common, host: url.hostname.replace(/^\[(.*)\]$/, '$1'), port: Number(url.port || 6379) },
  }
}

type Commands = Redis | Cluster | ChainableCommander

export class RedisStore implements Store {
  readonly #client: Redis | Cluster
  readonly #firstAttempt: Promise<void>
  readonly #keyPrefix: string
  readonly #wait: RedisStoreConfig['waitForReplicas']

  constructor(config: RedisStoreConfig, log: StoreLog) {
    this.#keyPrefix = config.keyPrefix
    this.#wait = config.waitForReplicas
    if (this.#wait && this.#wait.timeoutMs >= config.commandTimeoutMs) {
      throw new TypeError('store.redis.waitForReplicas.timeoutMs must be shorter than commandTimeoutMs')
    }
    const plan = redisClientPlan(config)
    this.#client = plan.kind === 'cluster' ? new Cluster(plan.nodes, plan.options) : new Redis(plan.options)
    this.#client.defineCommand('gatehouseIncrement', { numberOfKeys: 1, lua: INCREMENT_SCRIPT })
    this.#client.defineCommand('gatehouseAppend', { numberOfKeys: 1, lua: APPEND_SCRIPT })
    this.#client.defineCommand('gatehouseCompareAndSet', { numberOfKeys: 1, lua: COMPARE_AND_SET_SCRIPT })
    this.#client.defineCommand('gatehouseAddMember', { numberOfKeys: 1, lua: ADD_MEMBER_SCRIPT })
    logConnectionTrouble(this.#client, log)
    if (this.#client instanceof Cluster) connectEveryNode(this.#client)
    this.#firstAttempt = firstConnectionAttempt(this.#client, config.connectTimeoutMs)
  }

  async get(key: string): Promise<string | undefined> {
    return (await this.#run('GET', (c) => c.get(key))) ?? undefined
  }

  async set(key: string, value: string, ttlMs: number): Promise<void> {
    checkTtl(ttlMs)
    await this.#write('SET', (c) => c.set(key, value, 'PX', Math.ceil(ttlMs)))
  }

  async setIfAbsent(key: string, value: string, ttlMs: number): Promise<boolean> {
    checkTtl(ttlMs)
    return (await this.#write('SET NX', (c) => c.set(key, value, 'PX', Math.ceil(ttlMs), 'NX'))) === 'OK'
  }

  /** GETDEL is one atomic command, so a code or state value is consumed once (O21, MCPS-05). */
  async take(key: string): Promise<string | undefined> {
    return ((await this.#write('GETDEL', (c) => c.getdel(key))) as string | null) ?? undefined
  }

  /** INCR and the PEXPIRE of a new counter run as one script, so no counter is left without a TTL. */
  async increment(key: string, ttlMs: number): Promise<{ count: number; ttlMs: number }> {
    checkTtl(ttlMs)
    const [count, left] = (await this.#run('INCR', (c) =>
      (c as unknown as Scripted).gatehouseIncrement(key, Math.ceil(ttlMs)),
    )) as [number, number]
    return { count, ttlMs: left }
  }

  /** GET, compare and SET in one script on one key: atomic, and Cluster-safe (one slot). */
  async compareAndSet(key: string, expected: string, value: string, ttlMs: number): Promise<boolean> {
    checkTtl(ttlMs)
    const set = await this.#write('CAS', (c) => (c as unknown as Scripted).gatehouseCompareAndSet(key, expected, value, Math.ceil(ttlMs)))
    return set === 1
  }

  async delete(key: string): Promise<void> {
    await this.#write('DEL', (c) => c.del(key))
  }

  /** SCAN ignores ioredis' keyPrefix, so the prefix is added to the pattern and removed from results. */
  async *keys(prefix: string): AsyncIterable<string> {
    await this.#firstAttempt
    const match = `${globEscape(this.#keyPrefix + prefix)}*`
    const nodes = this.#client instanceof Cluster ? this.#client.nodes('master') : [this.#client]
    try {
      for (const node of nodes) {
        for await (const batch of node.scanStream({ match, count: 500 }) as AsyncIterable<string[]>) {
          for (const key of batch) yield key.slice(this.#keyPrefix.length)
        }
      }
    } catch (err) {
      throw new StoreUnavailableError(`Redis SCAN failed: ${(err as Error).message}`, { cause: err })
    }
  }

  /** A Redis stream: XADD, trimming and the key's TTL run as one script on one key (any cluster slot). */
  async append(key: string, value: string, keepMs: number): Promise<string> {
    checkTtl(keepMs)
    return (await this.#write('XADD', (c) => (c as unknown as Scripted).gatehouseAppend(key, value, Math.ceil(keepMs)))) as string
  }

  /** XRANGE with an exclusive start (Redis >= 6.2). */
  async readLog(key: string, afterId: string, limit: number): Promise<LogEntry[]> {
    const entries = await this.#run('XRANGE', (c) => c.xrange(key, afterId === '' ? '-' : `(${afterId}`, '+', 'COUNT', limit))
    return entries.map(([id, fields]) => ({ id, value: fields[fields.indexOf('v') + 1] ?? '' }))
  }

  /** SADD and the TTL in one script on one key (any cluster slot). */
  async addMember(key: string, member: string, ttlMs: number): Promise<void> {
    checkTtl(ttlMs)
    await this.#write('SADD', (c) => (c as unknown as Scripted).gatehouseAddMember(key, member, Math.ceil(ttlMs)))
  }

  async members(key: string): Promise<string[]> {
    return this.#run('SMEMBERS', (c) => c.smembers(key))
  }

  async removeMember(key: string, member: string): Promise<void> {
    await this.#write('SREM', (c) => c.srem(key, member))
  }

  async ping(): Promise<void> {
    await this.#run('PING', (c) => c.ping())
  }

  async close(): Promise<void> {
    try {
      await this.#client.quit()
    } catch {
      // Not connected (QUIT cannot be sent without the offline queue): just stop reconnecting.
      this.#client.disconnect()
    }
  }

  /**
   * A write. With waitForReplicas, WAIT follows it on the same connection (pipelined: still one
   * round trip; in a cluster the pipeline goes to the key's master), and a write that too few
   * replicas acknowledged in time fails (503): it is on the primary, but a failover now could
   * lose it, so the caller must not act on it (a grant, a rotated refresh token, a taken code).
   * Counters (`increment`) never wait: losing a rate-limit count costs nothing.
   */
  async #write(command: string, send: (client: Commands) => unknown): Promise<unknown> {
    const wait = this.#wait
    if (!wait) return this.#run(command, (c) => send(c) as Promise<unknown>)
    return this.#run(command, async (c) => {
      const pipeline = c.pipeline()
      send(pipeline)
      const results = (await pipeline.wait(wait.replicas, wait.timeoutMs).exec()) ?? []
      const [err, value] = results[0] ?? [new Error('no answer')]
      const [waitErr, acked] = results[1] ?? [new Error('no answer to WAIT')]
      if (err ?? waitErr) throw err ?? waitErr
      if ((acked as number) < wait.replicas) {
        throw new Error(`written, but acknowledged by ${acked} of ${wait.replicas} replicas within ${wait.timeoutMs} ms`)
      }
      return value
    })
  }

  async #run<T>(command: string, send: (client: Redis | Cluster) => Promise<T>): Promise<T> {
    await this.#firstAttempt
    try {
      return await send(this.#client)
    } catch (err) {
      throw new StoreUnavailableError(`Redis ${command} failed: ${(err as Error).message}`, { cause: err })
    }
  }
}

/** Escapes Redis glob characters so a prefix matches only itself. */
function globEscape(text: string): string {
  return text.replace(/[*?[\]\\]/g, (c) => `\\${c}`)
}
