/**
 * Redis for tests. A suite that needs Redis calls one of these first thing in its test
 * (before any assertion or subtest) and returns early on undefined: without Redis the test
 * is skipped with the reason, or fails when GATEHOUSE_REQUIRE_REDIS=1 (CI, where a silently
 * skipped Redis suite would hide regressions).
 */
import { guardChild } from './orphan-guard.js'
import { spawn, type ChildProcess } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { mkdtemp, rm } from 'node:fs/promises'
import { connect } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { Redis } from 'ioredis'
import type { Test } from 'tap'
import type { RedisStoreConfig } from '../../src/config/schema.js'
import { reservePort } from './ports.js'

const requireRedis = process.env.GATEHOUSE_REQUIRE_REDIS === '1'
/**
 * How long the shared Redis has to answer a PING before its suites are skipped. Generous: a
 * Redis that is not running refuses the connection at once, so only a busy machine waits this
 * long, and a suite skipped because the machine was busy would drop its assertions by chance.
 */
const REACHABLE_WITHIN_MS = 3000

/** Skips the test with `<reason>: Redis suites skipped`, or fails it when Redis is required. */
export function redisUnavailable(t: Test, reason: string): void {
  if (requireRedis) t.fail(`Redis is required (GATEHOUSE_REQUIRE_REDIS=1) but ${reason}`)
  else t.plan(0, `${reason}: Redis suites skipped`)
}

export interface TestRedis {
  url: string
  /** Unique to this call (`gatehouse-test:<random>:`), so parallel suites never share keys. */
  keyPrefix: string
  /** A store configuration for this Redis and prefix, with test-sized timeouts. */
  storeConfig(overrides?: Partial<RedisStoreConfig>): RedisStoreConfig
  /** A client without the prefix, to look behind the store. Closed at teardown. */
  raw: Redis
  /** Deletes every key under keyPrefix. Also runs at teardown. */
  cleanup(): Promise<void>
}

/**
 * The shared test Redis (GATEHOUSE_TEST_REDIS_URL, default redis://127.0.0.1:6379) with a
 * fresh key prefix, or undefined when it does not answer a PING within REACHABLE_WITHIN_MS.
 */
export async function redisForTests(t: Test): Promise<TestRedis | undefined> {
  const url = process.env.GATEHOUSE_TEST_REDIS_URL ?? 'redis://127.0.0.1:6379'
  const raw = new Redis(url, {
    lazyConnect: true,
    connectTimeout: REACHABLE_WITHIN_MS,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
  })
  raw.on('error', () => {}) // reported through the reachability check below
  try {
    await withTimeout(
      raw.connect().then(() => raw.ping()),
      REACHABLE_WITHIN_MS,
    )
  } catch {
    raw.disconnect()
    redisUnavailable(t, `Redis not reachable at ${withoutPassword(url)}`)
    return undefined
  }

  const keyPrefix = `gatehouse-test:${randomBytes(6).toString('hex')}:`
  const cleanup = async (): Promise<void> => {
    let cursor = '0'
    do {
      const [next, keys] = await raw.scan(cursor, 'MATCH', `${keyPrefix}*`, 'COUNT', 500)
      if (keys.length > 0) await raw.del(...keys)
      cursor = next
    } while (cursor !== '0')
  }
  t.teardown(async () => {
    await cleanup()
    await raw.quit()
  })
  return {
    url,
    keyPrefix,
    raw,
    cleanup,
    storeConfig: (overrides = {}) => ({ url, keyPrefix, connectTimeoutMs: 1000, commandTimeoutMs: 1000, ...overrides }),
  }
}

export interface TestRedisServer {
  port: number
  /** redis://[:password@]127.0.0.1:port */
  url: string
  /** A client without a key prefix and without the gateway's fail-fast settings, for FLUSHALL and DEBUG. Closed at teardown. */
  admin(): Redis
  /** Kills the server (SIGKILL: an outage, not a shutdown) and waits until it is gone. With persistence, every acknowledged write is on disk (fsync always). */
  kill(): Promise<void>
  /** Starts it again on the same port (reserved for the test: nothing else took it meanwhile) and the same data directory. */
  start(): Promise<void>
  /** Freezes it (SIGSTOP): connections stay open but nothing is answered, like a partition or a hung Redis. */
  pause(): void
  /** Unfreezes it (SIGCONT). */
  resume(): void
}

/**
 * A private `redis-server` child process with its own data directory, killed (and the directory
 * removed) at teardown. Its port is reserved for the test (./ports.ts), so a restart after a kill
 * always gets it back. `persist` turns on the append-only file with an
 * fsync per write, so a SIGKILL loses nothing that Redis acknowledged; without it nothing is
 * kept across a restart. DEBUG (for DEBUG SLEEP) is allowed from loopback. Undefined (test
 * skipped or failed as above) when the binary is not installed.
 */
export async function redisServerForTests(
  t: Test,
  { password, persist = false }: { password?: string; persist?: boolean } = {},
): Promise<TestRedisServer | undefined> {
  const port = await reservePort(t)
  const dir = await mkdtemp(join(tmpdir(), 'gatehouse-redis-'))
  const args = ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--dir', dir, '--enable-debug-command', 'local']
  args.push(...(persist ? ['--appendonly', 'yes', '--appendfsync', 'always'] : ['--appendonly', 'no']))
  if (password) args.push('--requirepass', password)
  let child: ChildProcess | undefined
  const admins: Redis[] = []
  const kill = async (): Promise<void> => {
    const running = child
    child = undefined
    if (!running || running.exitCode !== null || running.signalCode !== null) return
    const exited = new Promise((resolve) => running.once('exit', resolve))
    running.kill('SIGKILL')
    await exited
  }
  const start = async (): Promise<void> => {
    child = await launch(args, port, dir)
  }
  t.teardown(async () => {
    for (const a of admins) a.disconnect()
    await kill()
    await rm(dir, { recursive: true, force: true })
  })

  try {
    await start()
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err
    redisUnavailable(t, 'redis-server not found on PATH')
    return undefined
  }
  const auth = password ? `:${encodeURIComponent(password)}@` : ''
  return {
    port,
    url: `redis://${auth}127.0.0.1:${port}`,
    admin: () => {
      const a = new Redis({ host: '127.0.0.1', port, password, maxRetriesPerRequest: 1, lazyConnect: false })
      a.on('error', () => {})
      admins.push(a)
      return a
    },
    kill,
    start,
    pause: () => child?.kill('SIGSTOP'),
    resume: () => child?.kill('SIGCONT'),
  }
}

/** Spawns redis-server and resolves once its port accepts connections. Also used by ./redis-topology.ts. */
export async function launch(args: string[], port: number, cwd: string): Promise<ChildProcess> {
  const child = guardChild(spawn('redis-server', args, { cwd, stdio: ['ignore', 'ignore', 'pipe'] }))
  let stderr = ''
  child.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString()))
  const failed = new Promise<never>((_, reject) => {
    child.once('error', reject)
    child.once('exit', (code, signal) => reject(new Error(`redis-server exited (${code ?? signal}): ${stderr}`)))
  })
  failed.catch(() => {}) // observed through the race below; later exits are the test's doing
  const deadline = Date.now() + 5000
  while (!(await Promise.race([accepts(port), failed]))) {
    if (Date.now() > deadline) {
      child.kill('SIGKILL')
      throw new Error(`redis-server did not listen on port ${port} within 5 s: ${stderr}`)
    }
    await sleep(50)
  }
  return child
}

export function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1')
    socket.once('connect', () => {
      socket.destroy()
      resolve(true)
    })
    socket.once('error', () => resolve(false))
  })
}

async function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms)
  })
  try {
    return await Promise.race([promise, timeout])
  } finally {
    clearTimeout(timer)
  }
}

/** Test URLs may carry a password too; keep it out of test output. */
function withoutPassword(url: string): string {
  return url.replace(/\/\/[^@/]*@/, '//***@')
}
